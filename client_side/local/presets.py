"""Presets: what rdev knows about a kind of password host (a lab cluster, a school's servers).

They are data: bootstrap/presets.toml ships with rdev, and a presets.toml in the user config
folder adds to it or replaces a preset of the same name.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

from client_side.errors import BadInput, RdevError
from client_side.local import paths

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


@dataclass(frozen=True)
class Preset:
    name: str
    ephemeral_host_keys: bool = False
    workdir: str = "~"
    unreachable: str = "Check your network and VPN."
    reminders: tuple[str, ...] = ()
    lifetime_hours: float | None = None  # how long a reservation lives, from its start (None: no known end)
    before_end: str = "copy what you keep to your laptop with 'rdev pull NAME PATH'"  # said before the end


def _parse(text: str, where: str) -> dict[str, Preset]:
    try:
        tables = tomllib.loads(text)
        known = {f.name for f in fields(Preset)}
        found = {}
        for name, table in tables.items():
            unknown = set(table) - known
            if unknown:
                raise TypeError(f"unknown key {min(unknown)!r}")
            if not isinstance(table.get("reminders", []), list):
                raise TypeError(f"reminders in [{name}] is not a list")
            preset = Preset(**{**table, "name": name, "reminders": tuple(table.get("reminders", ()))})
            hours = preset.lifetime_hours
            if not isinstance(preset.ephemeral_host_keys, bool) or not all(
                    isinstance(v, str) for v in (preset.workdir, preset.unreachable, preset.before_end,
                                                 *preset.reminders)) or not (
                    hours is None or (type(hours) in (int, float) and 0 < hours <= 8760)):
                raise TypeError(f"a value of the wrong type in [{name}]")
            found[name] = preset
        return found
    except (tomllib.TOMLDecodeError, TypeError, AttributeError) as err:
        raise RdevError(f"The presets in {where} cannot be used ({err})", "fix that file.") from None


def load() -> dict[str, Preset]:
    shipped = resources.files("bootstrap").joinpath("presets.toml").read_text(encoding="utf-8")
    found = _parse(shipped, "rdev's own presets.toml")
    user_file: Path = paths.user_presets()
    if user_file.exists():
        try:
            text = user_file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise RdevError(f"The presets in {user_file} are not UTF-8 text", "fix that file.") from None
        found.update(_parse(text, str(user_file)))
    return found


def hint(preset: Preset | None) -> str:
    """What to check when a host does not answer."""
    return (preset or Preset("")).unreachable


def get(name: str) -> Preset:
    found = load()
    if name not in found:
        raise BadInput(f"There is no preset {name!r}", f"choose one of {', '.join(sorted(found))}, "
                       f"or add it to {paths.user_presets()}.")
    return found[name]

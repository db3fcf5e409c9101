"""The Remote-SSH settings rdev keeps in editors' user settings.json, so a window opens without asking.

`remote.SSH.remotePlatform` maps each host rdev writes to `linux`, so the editor does not ask which
platform it runs. `remote.SSH.connectTimeout` (one value for all hosts, 15 s by default) is raised
for tunnel hosts and Colab runtimes behind Google's colab CLI, whose first connection waits on the
tunnel, on the CLI's start and Colab's proxy, or on two hops through a cluster's login node (rdev
itself starts a runtime or waits for a job's queue, in the foreground, before the editor connects). Both are taken out again by
`rdev remove`; a raised timeout goes back to what it was once no tunnel host is left.
Call these under `locking.changing_files()`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import tomli_w

from bootstrap.files import atomic_write, ensure_private_dir
from bootstrap.ticket import PUBLIC_TUNNELS
from client_side.editors import jsonc
from client_side.editors.editor import KINDS, Kind
from client_side.local import paths

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PLATFORM = "remote.SSH.remotePlatform"
TIMEOUT = "remote.SSH.connectTimeout"
TUNNEL_TIMEOUT = 60


def files(kinds: Iterable[Kind]) -> list[Path]:
    """The settings files of these editors on this OS, each once."""
    return list(dict.fromkeys(paths.editor_settings(kind.config_folder) for kind in kinds))


def slow_to_reach(tunnel: str) -> bool:
    """A host whose first connection waits on a tunnel, or on Google's colab CLI and its proxy."""
    return tunnel in (*PUBLIC_TUNNELS, "colab-cli", "slurm")


def wanted(name: str, tunnel: str) -> str:
    """The settings for `name` as a user would type them, for a file rdev must not edit."""
    lines = [f'"{PLATFORM}": {{"{name}": "linux"}}']
    if slow_to_reach(tunnel):
        lines.append(f'"{TIMEOUT}": {TUNNEL_TIMEOUT}')
    return ", ".join(lines)


def add(name: str, tunnel: str, kinds: Iterable[Kind], say: Callable[[str], None]) -> None:
    """Set `name`'s platform (and, for a tunnel host, a long enough connect timeout) in each editor's file.
    A file rdev cannot edit is left alone with a line saying what to add by hand: these settings only
    spare a question, so they never stop a connect."""
    record = _load_record()
    try:
        for path in files(kinds):
            try:
                text = _read(path)
                _write(path, text, _added(text, str(path), name, tunnel, record))
            except (jsonc.Unreadable, OSError) as err:
                say(f"{path} is not a file rdev can edit ({_why(err)}), so rdev left it alone: add "
                    f"{wanted(name, tunnel)} to it yourself, or the editor will ask which platform the host runs.")
    finally:
        _save_record(record)


def _added(text: str, key: str, name: str, tunnel: str, record: dict[str, dict[str, str]]) -> str:
    new = text
    if jsonc.get(new, (PLATFORM, name)) != "linux":
        new = jsonc.set_value(new, (PLATFORM, name), "linux")
    timeout = jsonc.get(new, (TIMEOUT,))
    if slow_to_reach(tunnel) and not (isinstance(timeout, (int, float)) and timeout >= TUNNEL_TIMEOUT):
        # Remember what it was (the first time only), so `rdev remove` can put it back.
        record.setdefault(key, {} if timeout is None else {"previous": json.dumps(timeout)})
        new = jsonc.set_value(new, (TIMEOUT,), TUNNEL_TIMEOUT)
    return new


def forget(name: str, tunnel_hosts_left: bool, say: Callable[[str], None]) -> bool:
    """Take `name` out of every editor's file (and a timeout rdev raised, when no tunnel host is left);
    True if a file changed."""
    record = _load_record()
    changed = False
    try:
        for path in [p for p in files(KINDS) if p.exists()]:
            try:
                text = _read(path)
                changed |= _write(path, text, _removed(text, str(path), name, tunnel_hosts_left, record))
            except (jsonc.Unreadable, OSError) as err:
                say(f"{path} is not a file rdev can edit ({_why(err)}), so rdev left it alone: "
                    f'take "{name}" out of "{PLATFORM}" yourself.')
    finally:
        _save_record(record)
    return changed


def _removed(text: str, key: str, name: str, tunnel_hosts_left: bool, record: dict[str, dict[str, str]]) -> str:
    new = jsonc.remove(text, (PLATFORM, name))
    if not tunnel_hosts_left and key in record:
        previous = record.pop(key).get("previous")
        # A timeout the user changed since is theirs now.
        if jsonc.get(new, (TIMEOUT,)) == TUNNEL_TIMEOUT:
            new = jsonc.set_value(new, (TIMEOUT,), json.loads(previous)) if previous else jsonc.remove(new, (TIMEOUT,))
    return new


def _why(err: Exception) -> str:
    return err.strerror or str(err) if isinstance(err, OSError) else str(err)


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise jsonc.Unreadable("it is not UTF-8 text") from None


def _write(path: Path, old: str, new: str) -> bool:
    """Write `new` over `path` if it differs; the first time, keep the original beside it."""
    if new == old:
        return False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = 0o600
    if path.exists():
        mode = path.stat().st_mode & 0o777
        backup = path.with_name(path.name + ".rdev-backup")
        if not backup.exists():
            shutil.copy2(path, backup)
            os.chmod(backup, 0o600)
    atomic_write(path, new.encode("utf-8"), mode)
    return True


def _load_record() -> dict[str, dict[str, str]]:
    try:
        data = tomllib.loads(paths.editor_settings_record().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}  # only a convenience for undoing: a damaged one means nothing is put back
    raised = data.get("raised_timeout", {})
    return {k: v for k, v in raised.items() if _well_formed(v)} if isinstance(raised, dict) else {}


def _well_formed(entry: object) -> bool:
    """A record entry as rdev writes it: {} or {"previous": <a JSON text>}; an edited one is dropped."""
    if not isinstance(entry, dict) or set(entry) - {"previous"}:
        return False
    previous = entry.get("previous", "null")
    if not isinstance(previous, str):
        return False
    try:
        json.loads(previous)
    except ValueError:
        return False
    return True


def _save_record(record: dict[str, dict[str, str]]) -> None:
    path = paths.editor_settings_record()
    if not record and not path.exists():
        return
    ensure_private_dir(path.parent)
    atomic_write(path, tomli_w.dumps({"raised_timeout": record}).encode())

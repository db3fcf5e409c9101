"""rdev's own known_hosts file: host keys pinned under `rdev-<name>`, never the user's known_hosts.

Tunnel hostnames and ports change on every start, so keys are stored under the alias that
the config's `HostKeyAlias` names, not under an address.
"""

from __future__ import annotations

from bootstrap.files import atomic_write
from client_side import paths


def alias(name: str) -> str:
    return f"rdev-{name}"


def _other_lines(name: str) -> list[str]:
    try:
        lines = paths.known_hosts().read_text().splitlines()
    except FileNotFoundError:
        return []
    return [line for line in lines if line.split(" ", 1)[0] != alias(name)]


def pinned(name: str) -> list[str]:
    """The keys pinned for `name`, as `type base64`."""
    try:
        lines = paths.known_hosts().read_text().splitlines()
    except FileNotFoundError:
        return []
    return [line.split(" ", 1)[1] for line in lines if line.split(" ", 1)[0] == alias(name) and " " in line]


def pin(name: str, host_keys: tuple[str, ...]) -> None:
    """Make `host_keys` the only keys accepted for `name`; call under `locking.changing_files()`."""
    lines = _other_lines(name) + [f"{alias(name)} {key}" for key in host_keys]
    atomic_write(paths.known_hosts(), "".join(line + "\n" for line in lines).encode())


def unpin(name: str) -> None:
    if paths.known_hosts().exists():
        atomic_write(paths.known_hosts(), "".join(line + "\n" for line in _other_lines(name)).encode())

"""rdev's own known_hosts file: host keys pinned under `rdev-<name>`, never the user's known_hosts.

Tunnel hostnames and ports change on every start, so keys are stored under the alias that
the config's `HostKeyAlias` names, not under an address. This module reads and renders the
file; `store` writes it, together with the config and the registry.
"""

from __future__ import annotations

from client_side.errors import RdevError
from client_side.local import paths


def alias(name: str) -> str:
    return f"rdev-{name}"


def _lines() -> list[str]:
    try:
        return paths.known_hosts().read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except UnicodeDecodeError:
        raise RdevError(f"{paths.known_hosts()} is not text rdev wrote",
                        "remove it; 'rdev connect NAME' pins each host's key again.") from None


def pinned(name: str) -> list[str]:
    """The keys pinned for `name`, as `type base64`."""
    return [line.split(" ", 1)[1] for line in _lines() if line.split(" ", 1)[0] == alias(name) and " " in line]


def with_keys(name: str, host_keys: tuple[str, ...]) -> bytes:
    """The file with `host_keys` as the only keys accepted for `name` (none: `name` unpinned)."""
    lines = [line for line in _lines() if line.split(" ", 1)[0] != alias(name)]
    lines += [f"{alias(name)} {key}" for key in host_keys]
    return "".join(line + "\n" for line in lines).encode()


def fingerprint(key: str) -> str:
    """`SHA256:...` of a `type base64` key, as ssh prints it."""
    import base64
    import hashlib

    digest = hashlib.sha256(base64.b64decode(key.split()[1])).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")

"""rdev's three records of a host, changed together: its block in rdev's SSH config (and the Include
that reaches it), its pinned host keys, and its registry entry.

They must always agree, so every change is all or nothing (`files.write_together`), under rdev's
lock: a full disk or a file that cannot be replaced leaves all of them as they were.
"""

from __future__ import annotations

from pathlib import Path

from bootstrap.files import NotPutBack, ensure_private_dir, write_together
from client_side.errors import RdevError
from client_side.local import paths, registry
from client_side.local.locking import changing_files
from client_side.local.registry import HostEntry
from client_side.ssh import config as sshconfig, known_hosts


def put(entry: HostEntry, host_keys: tuple[str, ...] | None = None) -> None:
    """Write `entry` everywhere; pin `host_keys` as its only keys (None: keep what is pinned)."""
    with changing_files():
        changes = {
            **sshconfig.include_changes(),
            paths.rdev_ssh_config(): sshconfig.with_entry(entry),
            paths.registry(): registry.rendered({**registry.load(), entry.name: entry}),
        }
        if host_keys is not None:
            changes[paths.known_hosts()] = known_hosts.with_keys(entry.name, host_keys)
        socket = paths.control_socket(entry.name)
        if socket is not None:
            ensure_private_dir(socket.parent)
        _write(changes)


def pin(name: str, host_keys: tuple[str, ...]) -> None:
    """Pin `host_keys` as `name`'s only keys; its config block and registry entry stay as they are."""
    with changing_files():
        _write({paths.known_hosts(): known_hosts.with_keys(name, host_keys)})


def drop(name: str) -> HostEntry | None:
    """Take `name` out of every record; its registry entry, or None if the registry had none."""
    with changing_files():
        entries = registry.load()
        removed = entries.pop(name, None)
        changes = {paths.known_hosts(): known_hosts.with_keys(name, ()), paths.registry(): registry.rendered(entries)}
        config = sshconfig.without_entry(name)
        if config is not None:
            changes[paths.rdev_ssh_config()] = config
        _write(changes)
    return removed


def reaches_differently(entry: HostEntry, host_keys: tuple[str, ...] | None) -> bool:
    """True when writing `entry` would change how ssh reaches a host rdev already wrote (its options or
    its pinned keys), so that a master connection opened before would answer for the wrong server.
    A name rdev has not written has no master of rdev's: a socket of that name would be the user's."""
    written = sshconfig.written_block(entry.name)
    if written is None:
        return False
    keys_change = host_keys is not None and sorted(host_keys) != sorted(known_hosts.pinned(entry.name))
    return written != sshconfig.block(entry) or keys_change


def _write(changes: dict[Path, bytes]) -> None:
    ensure_private_dir(paths.config_dir())
    try:
        write_together(changes)
    except NotPutBack as err:
        raise RdevError(f"Could not write {err.filename} ({err.strerror}), so rdev's files may now disagree",
                        "fix that, then run the same rdev command again.") from None
    except OSError as err:
        where = err.filename or "rdev's files"
        raise RdevError(f"Could not write {where} ({err.strerror or err}); nothing was changed",
                        "free some space or fix that file's permissions, then run again.") from None

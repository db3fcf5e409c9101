"""Password hosts (lab-cluster containers, school servers): `rdev add`, `rdev connect NAME`, `rdev password`.

The password is used once, through paramiko, to install rdev's key; from then on the real `ssh`
logs in with the key. It lives only in the system keyring, and only after it worked.
"""

from __future__ import annotations

import getpass
import sys
from dataclasses import replace
from typing import Callable

from bootstrap import validate
from client_side import (
    editor,
    editor_settings,
    keys,
    known_hosts,
    passwords,
    presets,
    probe,
    registry,
    remote,
    sshconfig,
)
from client_side.errors import BadInput, RdevError
from client_side.locking import changing_files
from client_side.registry import HostEntry


def add(name: str, host: str, user: str | None, port: int, jump: str | None, preset_name: str | None,
        path: str | None) -> str:
    """Register a password host and write its config block; nothing is contacted yet."""
    from client_side.connect import checked_name

    name = checked_name(name)
    preset = presets.get(preset_name) if preset_name else None
    try:
        entry = HostEntry(name=name, host=validate.host(host), port=validate.port(port),
                          user=validate.user(user or getpass.getuser()), tunnel="direct",
                          workdir=validate.remote_path(path or (preset.workdir if preset else "~")),
                          login=True, jump=validate.jump(jump) if jump else None, preset=preset_name)
    except validate.InvalidValue as err:
        raise BadInput(str(err)) from None
    if entry.jump == name:
        raise BadInput(f"{name} cannot be its own jump host: give another --jump.")
    with changing_files():
        entries = registry.load()
        before = entries.get(name)
        moved = before is not None and (before.host, before.port, before.user) != (entry.host, entry.port, entry.user)
        if moved:
            known_hosts.unpin(name)  # another machine or account: its key and password are not these
        sshconfig.write_entry(entry)
        registry.save({**entries, name: entry})
    if moved:
        passwords.forget(name)
    return f"Added {name} ({entry.user}@{entry.host}:{entry.port}). Next: rdev connect {name}"


def connect(entry: HostEntry, password_stdin: bool, accept_new_host_key: bool, open_editor: bool,
            path: str | None, editor_name: str | None, say: Callable[[str], None]) -> None:
    preset = presets.get(entry.preset) if entry.preset else None
    hint = presets.hint(preset)
    folder = _folder(path or entry.workdir)
    chosen_editor = editor.choose(editor_name, entry.editor) if open_editor or editor_name else None
    if editor_name:
        entry = replace(entry, editor=editor.remembered_value(editor_name))
    for reminder in preset.reminders if preset else ():
        say(reminder.replace("{name}", entry.name))
    public_key = keys.public_key()
    with changing_files():
        sshconfig.write_entry(entry)
        registry.save({**registry.load(), entry.name: entry})
        editor_settings.add(entry.name, entry.tunnel, editor.settings_kinds(chosen_editor), say)
    pinned = _checked_host_key(entry, preset, accept_new_host_key, hint, say)
    probe.close_master(entry.name)
    if not _key_works(entry.name, hint):
        password, typed = _password(entry, password_stdin)
        try:
            remote.install_key(entry, password, public_key, pinned, hint)
        except remote.PasswordRefused:
            if typed:
                raise
            # The kept password is stale (a new reservation has a new one): forget it, ask once.
            passwords.forget(entry.name)
            if not sys.stdin.isatty():
                raise
            say(f"The kept password for {entry.name} was refused.")
            password, typed = _read_password(entry, False), True
            remote.install_key(entry, password, public_key, pinned, hint)
        if typed:
            _keep(entry.name, password, say)
        say(f"{entry.name}: rdev's key is installed; the password is not needed from now on.")
    probe.check(entry.name)
    say(f"{entry.name}: ssh works ({entry.user}@{entry.host}:{entry.port}). Try: rdev ssh {entry.name}")
    if open_editor:
        say(editor.open_folder(entry.name, folder, chosen_editor))


def set_password(name: str, from_stdin: bool, delete: bool, say: Callable[[str], None]) -> None:
    """`rdev password NAME`: check the password by logging in, then keep it; or forget it."""
    entry = _login_entry(name)
    if delete:
        say(f"Forgot the password of {name}." if passwords.delete(name) else f"No password was kept for {name}.")
        return
    if not passwords.usable():
        raise RdevError(passwords.NO_BACKEND)
    password = _read_password(entry, from_stdin)
    hint = presets.hint(presets.get(entry.preset) if entry.preset else None)
    pinned = known_hosts.pinned(name)
    if not pinned:
        raise RdevError(f"{name}'s host key is not pinned yet: run 'rdev connect {name}' first.")
    remote.check_password(entry, password, pinned[0], hint)
    passwords.store(name, password)
    say(f"The password of {name} works and is kept in the system keyring.")


def _keep(name: str, password: str, say: Callable[[str], None]) -> None:
    """Store a password that worked; the key is installed either way, so a keyring problem is a note."""
    try:
        kept = passwords.store(name, password)
    except RdevError as err:
        say(f"The password was not stored: {err}")
        return
    if not kept:
        say(f"The password was not stored. {passwords.NO_BACKEND}")


def _folder(path: str) -> str:
    try:
        return validate.remote_path(path)
    except validate.InvalidValue as err:
        raise BadInput(str(err)) from None


def _login_entry(name: str) -> HostEntry:
    from client_side.connect import checked_name

    entry = registry.get(checked_name(name))
    if not entry.login:
        raise BadInput(f"{name} is reached with a ticket, not a password: 'rdev connect {name}' asks for one.")
    return entry


def _checked_host_key(entry: HostEntry, preset: presets.Preset | None, accept_new: bool, hint: str,
                      say: Callable[[str], None]) -> str:
    """Pin the server's key on first contact; on a change re-pin for an ephemeral preset (or when told to),
    else stop: someone may be in the way."""
    offered = remote.host_key(entry, hint)
    pinned = known_hosts.pinned(entry.name)
    if offered.line in pinned:
        return offered.line
    if pinned and not (accept_new or (preset and preset.ephemeral_host_keys)):
        raise RdevError(f"{entry.name}'s host key has changed since it was pinned (now {offered.fingerprint}): if the "
                        f"server was reinstalled, run 'rdev connect {entry.name} --accept-new-host-key'; otherwise "
                        "someone may be in the way.")
    with changing_files():
        known_hosts.pin(entry.name, (offered.line,))
    say(f"{entry.name} has a new host key (a new reservation?); pinned {offered.fingerprint}." if pinned
        else f"Pinned {entry.name}'s host key {offered.fingerprint}.")
    return offered.line


def _key_works(name: str, hint: str) -> bool:
    """True if the real ssh gets in with rdev's key; False if the server refuses the key."""
    result = probe.try_true(name, hint)
    if result.returncode == 0:
        return True
    if "Permission denied" in result.stderr:
        return False
    raise RdevError(probe.explain(name, result.stderr))


def _password(entry: HostEntry, from_stdin: bool) -> tuple[str, bool]:
    """(password, typed): from stdin or the prompt (typed, to be stored once it worked), else the keyring."""
    if not from_stdin:
        kept = passwords.get(entry.name)
        if kept:
            return kept, False
    return _read_password(entry, from_stdin), True


def _read_password(entry: HostEntry, from_stdin: bool) -> str:
    if from_stdin and not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():  # also for --password-stdin typed at a terminal: never echo it
        password = getpass.getpass(f"Password for {entry.user}@{entry.name} (used once, to install rdev's key): ")
    else:
        raise BadInput(f"{entry.name} needs its password once: run in a terminal, or pass it with --password-stdin.")
    if not password:
        raise BadInput("The password is empty: give the one for this host.")
    return password

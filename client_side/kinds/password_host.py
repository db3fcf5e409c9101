"""A password host (a lab-cluster container, a school server): `rdev add`, its prepare step, `rdev password`.

The password is used once, through paramiko, to install rdev's key; from then on the real `ssh`
logs in with the key. It lives only in the system keyring, and only after it worked. The host key
is pinned on first contact (read by paramiko, directly or through the jump host).
"""

from __future__ import annotations

import base64
import getpass
import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace

from bootstrap import validate
from client_side import inputs
from client_side.errors import BadInput, RdevError, printable
from client_side.inputs import checked
from client_side.kinds import time_left
from client_side.kinds.pipeline import Prepared
from client_side.local import passwords, presets, registry, store
from client_side.local.locking import changing_files, setting_up
from client_side.local.registry import HostEntry
from client_side.ssh import bridge, keys, known_hosts, own_keys, password_login, probe, shipped


def add(*, name: str, host: str, user: str | None, port: int, jump: str | None, preset_name: str | None,
        path: str | None, identity: str | None = None, python: str | None = None) -> str:
    """Register a password host and write its config block; nothing is contacted yet."""
    name = inputs.name(name)
    preset = presets.get(preset_name) if preset_name else None
    entry = HostEntry(name=name, host=checked(validate.host, host), port=checked(validate.port, port),
                      user=checked(validate.user, user or getpass.getuser()), tunnel="direct",
                      workdir=inputs.folder(path or (preset.workdir if preset else "~")),
                      login=True, jump=checked(validate.jump, jump) if jump else None, preset=preset_name,
                      identity=inputs.key_file(identity) if identity else None,
                      python=inputs.python(python) if python else None)
    if entry.jump == name:
        raise BadInput(f"{name} cannot be its own jump host", "give another --jump.")
    with setting_up(name), changing_files():
        before = registry.load().get(name)
        moved = before is not None and (before.host, before.port, before.user) != (entry.host, entry.port, entry.user)
        if store.reaches_differently(entry, None):
            probe.close_master(name)  # a master on the old route would answer for the new one
        # Another machine or account: its key and password are not these.
        store.put(entry, () if moved else None)
    if moved:
        passwords.forget(name)
    return f"Added {name} ({entry.user}@{entry.host}:{entry.port}). Next: rdev connect {name}"


@dataclass
class _Login:
    """What the admit step needs: the host, how to get its password, and the key it showed (or that is pinned)."""

    entry: HostEntry
    password_stdin: bool
    pinned: str
    hint: str
    say: Callable[[str], None]
    accept_new_host_key: bool = False
    # The fingerprint of a host key pinned in this run only because the preset's keys are ephemeral: whoever answers
    # at the host's address may show a new key, so no password goes to it until the user confirms it; without that,
    # the keys it replaced (`replaced`) are pinned again, so that the next run asks again.
    unconfirmed: str | None = None
    replaced: tuple[str, ...] = ()

    def admit(self) -> str | None:
        """Make sure rdev's key gets in: if the server refuses it, install it with one of the user's own keys, else
        by logging in once with the password; a host that takes keys only and none of the user's gets the key to
        add by hand. The remote home when rdev's key got in at once (that login was the probe)."""
        try:
            refused = _refusal(self.entry.name, self.hint)
        except _KeyChanged:
            self._repin()
            try:
                refused = _refusal(self.entry.name, self.hint)
            except _KeyChanged:
                raise RdevError(f"{self.entry.name}'s host key changed again while rdev read it",
                                f"run 'rdev connect {self.entry.name}' again; if it keeps changing, someone may be "
                                "in the way.") from None
        if isinstance(refused, _Home):
            return refused.home
        if own_keys.install(self.entry, keys.public_key()):
            self.say(f"{self.entry.name}: rdev's key is installed, with your own key; rdev's key logs in from now on.")
            return None
        if not _offers_password(refused):
            self._keys_only()
        if self.unconfirmed:
            self._confirm_new_key(self.unconfirmed)
        password, typed = _password(self.entry, self.password_stdin)
        try:
            self._install(password)
        except password_login.PasswordRefused:
            if typed:
                raise
            # The kept password is stale (a new reservation has a new one): forget it, ask once.
            passwords.forget(self.entry.name)
            if not sys.stdin.isatty():
                raise
            self.say(f"The kept password for {self.entry.name} was refused.")
            password, typed = _read_password(self.entry, False), True
            self._install(password)
        if typed:
            _keep(self.entry.name, password, self.say)
        self.say(f"{self.entry.name}: rdev's key is installed; the password is not needed from now on.")
        return None

    def _keys_only(self) -> None:
        name, identity = self.entry.name, self.entry.identity
        tried = f"rdev's and {identity}" if identity else "rdev's, your agent's and ~/.ssh/id_*"
        self.say(f"rdev's public key, for {name}:\n{keys.public_key()}")
        raise RdevError(f"{name} takes keys only, and none of yours got in ({tried})",
                        f"add rdev's public key above where your provider takes SSH keys ({own_keys.PROVIDERS}), or to "
                        f"~/.ssh/authorized_keys on {name}; then run 'rdev connect {name}' again.")

    def _confirm_new_key(self, fingerprint: str) -> None:
        """Ask at the terminal before a password goes to a host key nobody confirmed; refuse without a terminal."""
        name = self.entry.name
        if sys.stdin.isatty():
            answer = input(f"{name}'s new host key is {fingerprint}. Send your password to this server? [yes/no] ")
            if answer.strip().lower() == "yes":
                return
        store.pin(name, self.replaced)
        if sys.stdin.isatty():
            raise RdevError(f"No password was sent to {name}'s new host key {fingerprint}",
                            f"check the key with the host's admins, then run 'rdev connect {name}' again.")
        raise RdevError(f"{name} shows a new host key ({fingerprint}), and rdev sends no password to a key you have "
                        f"not confirmed", f"run 'rdev connect {name}' in a terminal to confirm it, or add "
                        "--accept-new-host-key if you know the key is new.")

    def _repin(self) -> None:
        """The host key no longer matches the pinned one: read the new one and pin it where that is allowed."""
        offered = password_login.host_key(self.entry, self.hint)
        if not _check_new_key(self.entry, offered, [self.pinned], self.accept_new_host_key, self.say):
            self.unconfirmed, self.replaced = offered.fingerprint, tuple(known_hosts.pinned(self.entry.name))
        self.entry = _new_reservation(self.entry)
        store.put(self.entry, (offered.line,))
        self.pinned = offered.line

    def _install(self, password: str) -> None:
        password_login.install_key(self.entry, password=password, public_key=keys.public_key(), pinned=self.pinned,
                           hint=self.hint)


def prepare(entry: HostEntry, *, password_stdin: bool, accept_new_host_key: bool,
            say: Callable[[str], None]) -> Prepared:
    """Show the preset's reminders, and pin the host key the server shows (or refuse a changed one)."""
    preset = _preset(entry)
    hint = presets.hint(preset)
    for reminder in preset.reminders if preset else ():
        say(reminder.replace("{name}", entry.name))
    pinned = known_hosts.pinned(entry.name)
    if pinned and not accept_new_host_key and (not entry.jump or entry.bridge):
        # A host met before: ssh checks the pinned key itself, in the one connection that the key check, the probe
        # and the editor then share. The key is read apart only when it no longer matches (admit's _repin).
        login = _Login(entry, password_stdin, pinned[0], hint, say)
        return Prepared(entry=entry, host_keys=None, admit=login.admit, prefetch=True, after=_Notifier(say))
    entry, offered = bridge.through(entry, lambda reached: password_login.host_key(reached, hint), say)
    confirmed = _check_new_key(entry, offered, pinned, accept_new_host_key, say)
    if offered.line not in pinned:  # first contact, or a new key: a new reservation
        entry = _new_reservation(entry)
    login = _Login(entry, password_stdin, offered.line, hint, say, accept_new_host_key,
                   unconfirmed=None if confirmed else offered.fingerprint, replaced=tuple(pinned))
    return Prepared(entry=entry, host_keys=(offered.line,), admit=login.admit, prefetch=True, after=_Notifier(say))


def _new_reservation(entry: HostEntry) -> HostEntry:
    """The host with its lifetime counted from now, where its preset gives one: the laptop cannot see a
    reservation, so its first connect (or a new host key, when the preset's keys change with each) stands for it."""
    preset = _preset(entry)
    if preset is None or preset.lifetime_hours is None:
        return entry
    started, expires = time_left.reservation(preset.lifetime_hours)
    return replace(entry, started=started, expires=expires)


@dataclass(frozen=True)
class _Notifier:
    """Starts the notices before a lab container's end on it (colab_side.long_runs.notices' `watch`): nothing else of
    rdev's runs there to send them. What fails is a note: the connection works all the same."""

    say: Callable[[str], None]

    def __call__(self, entry: HostEntry) -> None:
        preset = _preset(entry)
        if preset is None or preset.lifetime_hours is None or entry.expires is None:
            return
        spec = {"ends": entry.expires, "what": "this container", "advice": preset.before_end,
                "why": f"{preset.name}'s {preset.lifetime_hours:g}-hour lifetime, counted from this reservation's "
                       "first connect"}
        encoded = base64.urlsafe_b64encode(json.dumps(spec).encode()).decode().rstrip("=")
        try:
            result = shipped.run(entry.name, "long_runs.notices", "watch", encoded,
                                 python=shipped.python_word(entry.python))
            why = result.stderr.decode(errors="replace").strip()[-200:] if result.returncode else ""
        except (RdevError, subprocess.TimeoutExpired) as err:
            why = str(err) or "it did not answer"
        if why:
            self.say(f"{entry.name}: the warnings before its end could not be started there ({printable(why)}).")


def _check_new_key(entry: HostEntry, offered: password_login.HostKey, pinned: list[str], accept_new_host_key: bool,
                   say: Callable[[str], None]) -> bool:
    """Refuse a host key that replaces a pinned one, unless asked to or the preset's keys are ephemeral; say what
    gets pinned. False when the key replaces one only because the preset's keys are ephemeral: not confirmed yet."""
    if offered.line in pinned:
        return True
    preset = _preset(entry)
    if pinned and not (accept_new_host_key or (preset and preset.ephemeral_host_keys)):
        raise RdevError(f"{entry.name}'s host key has changed since it was pinned (now {offered.fingerprint})",
                        f"if the server was reinstalled, run 'rdev connect {entry.name} --accept-new-host-key'; "
                        "otherwise someone may be in the way.")
    say(f"{entry.name} has a new host key (a new reservation?); pinned {offered.fingerprint}." if pinned
        else f"Pinned {entry.name}'s host key {offered.fingerprint}.")
    return not pinned or accept_new_host_key


def set_password(name: str, *, from_stdin: bool, delete: bool, say: Callable[[str], None]) -> None:
    """`rdev password NAME`: check the password by logging in, then keep it; or forget it."""
    entry = registry.get(inputs.name(name))
    if not entry.login:
        raise BadInput(f"{name} is reached with a ticket, not a password", f"'rdev connect {name}' asks for one.")
    if delete:
        say(f"Forgot the password of {name}." if passwords.delete(name) else f"No password was kept for {name}.")
        return
    if not passwords.usable():
        raise passwords.no_backend()
    password = _read_password(entry, from_stdin)
    hint = presets.hint(_preset(entry))
    pinned = known_hosts.pinned(name)
    if not pinned:
        raise RdevError(f"{name}'s host key is not pinned yet", f"run 'rdev connect {name}' first.")
    password_login.check_password(entry, password=password, pinned=pinned[0], hint=hint)
    passwords.store(name, password)
    say(f"The password of {name} works and is kept in the system keyring.")


def _keep(name: str, password: str, say: Callable[[str], None]) -> None:
    """Store a password that worked; the key is installed either way, so a keyring problem is a note."""
    try:
        kept = passwords.store(name, password)
    except RdevError as err:
        say(f"The password was not stored ({err.problem}): {err.fix}")
        return
    if not kept:
        missing = passwords.no_backend()
        say(f"The password was not stored ({missing.problem}): {missing.fix}")


def _preset(entry: HostEntry) -> presets.Preset | None:
    return presets.get(entry.preset) if entry.preset else None


class _KeyChanged(Exception):
    """The server no longer shows the pinned host key."""


@dataclass(frozen=True)
class _Home:
    home: str  # the remote home rdev's key logged in to


def _refusal(name: str, hint: str) -> _Home | str:
    """The remote home if the real ssh gets in with rdev's key; ssh's words if the server refuses the key."""
    result = probe.try_login(name, hint)
    if result.returncode == 0:
        return _Home(probe.home_in(result.stdout))
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in result.stderr or "Host key verification failed" in result.stderr:
        raise _KeyChanged
    if "Permission denied" in result.stderr:
        return result.stderr
    raise probe.failure(name, result.stderr)


def _offers_password(refused: str) -> bool:
    """Whether the server's refusal lists a way to log in with a password: `Permission denied (publickey,password).`"""
    methods = re.search(r"Permission denied \(([a-z,-]+)\)", refused)
    return methods is None or bool({"password", "keyboard-interactive"} & set(methods.group(1).split(",")))


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
        raise BadInput(f"{entry.name} needs its password once",
                       "run in a terminal, or pass it with --password-stdin.")
    if not password:
        raise BadInput("The password is empty", "give the one for this host.")
    return password

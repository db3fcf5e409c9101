"""Password logins with paramiko: read the server's host key, install rdev's key, check a password.

The password goes to paramiko in this process only, after the server proved it holds the pinned
host key; it is never passed to a child process. A jump host is crossed with the real `ssh -W`
and the written config, so its own login works as it does for VS Code.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from client_side.errors import RdevError
from client_side.ssh import bridge, probe

if TYPE_CHECKING:
    import paramiko

    from client_side.local.registry import HostEntry

CONNECT_TIMEOUT = 15.0
# Appends the key read from stdin once, on a line of its own, with the modes sshd insists on.
INSTALL_KEY = ('umask 077; mkdir -p ~/.ssh && touch ~/.ssh/authorized_keys && read -r key && '
               '{ grep -qxF "$key" ~/.ssh/authorized_keys || { '
               '[ -s ~/.ssh/authorized_keys ] && [ -n "$(tail -c 1 ~/.ssh/authorized_keys)" ] && echo; '
               'printf "%s\\n" "$key"; } >> ~/.ssh/authorized_keys; } && '
               'chmod 700 ~/.ssh && chmod 600 ~/.ssh/authorized_keys')


class PasswordRefused(RdevError):
    """The server turned the password down."""


@dataclass
class HostKey:
    line: str  # `type base64`, as pinned in known_hosts
    fingerprint: str  # SHA256:..., as ssh prints it


def host_key(entry: HostEntry, hint: str) -> HostKey:
    """The key the server presents, read without logging in."""
    with _transport(entry, hint) as transport:
        return _key_of(transport)


def install_key(entry: HostEntry, password: str, public_key: str, pinned: str, hint: str) -> None:
    """Log in with `password` (only if the server still holds `pinned`) and add `public_key` to its
    ~/.ssh/authorized_keys, once."""
    import paramiko

    with _logged_in(entry, password, pinned, hint) as transport:
        try:
            channel = transport.open_session(timeout=CONNECT_TIMEOUT)
            channel.exec_command(f"sh -c {shlex.quote(INSTALL_KEY)}")
            channel.sendall((public_key.strip() + "\n").encode())
            channel.shutdown_write()
            # A login script that waits for input would otherwise hold rdev forever.
            if not channel.status_event.wait(CONNECT_TIMEOUT):
                raise RdevError(f"Installing rdev's key on {entry.name} did not finish within {CONNECT_TIMEOUT:.0f} s",
                                "check that your login scripts there do not wait for input.")
            status = channel.recv_exit_status()
            errors = channel.makefile_stderr("r").read().decode(errors="replace").strip()
            channel.close()
        except (paramiko.SSHException, OSError) as err:
            raise RdevError(f"Installing rdev's key on {entry.name} failed ({err})", "try again.") from None
    if status != 0:
        last = errors.splitlines()[-1] if errors else f"exit status {status}"
        raise RdevError(f"Installing rdev's key on {entry.name} failed ({last})",
                        "check that your home folder there is writable.")


def check_password(entry: HostEntry, password: str, pinned: str, hint: str) -> None:
    """Log in with `password` and out again; raise PasswordRefused if it does not work."""
    with _logged_in(entry, password, pinned, hint):
        pass


@contextmanager
def _logged_in(entry: HostEntry, password: str, pinned: str, hint: str) -> Iterator[paramiko.Transport]:
    """A transport logged in with `password`, opened only to a server that holds the `pinned` key."""
    with _transport(entry, hint) as transport:
        if _key_of(transport).line != pinned:
            raise RdevError(f"{entry.name}'s host key is not the one pinned for it",
                            f"run 'rdev connect {entry.name}' again.")
        _log_in(transport, entry, password)
        yield transport


def _log_in(transport: paramiko.Transport, entry: HostEntry, password: str) -> None:
    """Password authentication, or keyboard-interactive answered with the password (PAM servers)."""
    import paramiko

    other_prompts: list[str] = []

    def answer(_title: str, _text: str, prompts: list[tuple[str, bool]]) -> list[str]:
        # Only a hidden password prompt gets the password; a one-time code prompt gets nothing.
        other_prompts.extend(text for text, echo in prompts if "assword" not in text or echo)
        return [password if "assword" in text and not echo else "" for text, echo in prompts]

    try:
        try:
            # No fallback: paramiko's own keyboard-interactive handler would send the password to any
            # prompt, a one-time code prompt included; only `answer` may reply.
            remaining = transport.auth_password(entry.user, password, fallback=False)
        except paramiko.BadAuthenticationType as err:
            if "keyboard-interactive" not in err.allowed_types:
                raise RdevError(f"{entry.name} does not take passwords (it allows {', '.join(err.allowed_types)})",
                                "install rdev's key there another way ('rdev key' prints it).") from None
            remaining = transport.auth_interactive(entry.user, answer)
    except paramiko.AuthenticationException as err:
        if other_prompts:
            raise _more_than_a_password(entry, repr(other_prompts[0].strip())) from None
        if "EOF" in str(err) or "shut down" in str(err):
            raise RdevError(f"{entry.name} closed the connection while logging in", "try again.") from None
        raise PasswordRefused(f"The password for {entry.user}@{entry.name} was refused",
                              f"check it (a new reservation has a new one) and run 'rdev connect {entry.name}' "
                              "again.") from None
    except paramiko.SSHException as err:
        raise RdevError(f"Logging in to {entry.name} failed ({err})", "try again.") from None
    # The password was right but not enough: the server wants another step (a code, a key) as well.
    if not transport.is_authenticated():
        raise _more_than_a_password(entry, f"then {', '.join(remaining)}")


def _more_than_a_password(entry: HostEntry, what: str) -> RdevError:
    """A server that wants a step rdev does not take (a one-time code, a key): the user logs in once."""
    return RdevError(f"{entry.name} asks for more than a password ({what})",
                     f"log in once with 'ssh {entry.name}' and add the line 'rdev key' prints to "
                     "~/.ssh/authorized_keys there.")


def _key_of(transport: paramiko.Transport) -> HostKey:
    import base64
    import hashlib

    key = transport.get_remote_server_key()
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return HostKey(f"{key.get_name()} {key.get_base64()}", f"SHA256:{digest}")


@contextmanager
def _transport(entry: HostEntry, hint: str) -> Iterator[paramiko.Transport]:
    """A started (not yet authenticated) paramiko Transport to `entry`, closed afterwards."""
    import logging
    import socket  # here, with paramiko: a reconnect with rdev's key imports this module but logs in with ssh

    import paramiko

    # paramiko's transport thread logs what ends it with a traceback; without a handler of its own, logging's
    # last resort prints that to the terminal. rdev says what went wrong in one sentence instead.
    logging.getLogger("paramiko").addHandler(logging.NullHandler())

    via = f" via {entry.jump}" if entry.jump else ""
    try:
        if entry.jump:
            sock: paramiko.ProxyCommand | socket.socket = paramiko.ProxyCommand(shlex.join(_through_jump(entry)))
        else:
            sock = socket.create_connection((entry.host, entry.port), timeout=CONNECT_TIMEOUT)
        transport = paramiko.Transport(sock)
        transport.banner_timeout = CONNECT_TIMEOUT
        try:
            transport.start_client(timeout=CONNECT_TIMEOUT)
            if transport.remote_version is None or not transport.is_active():
                # A proxy that ended at once (a jump host that refused to forward) leaves no session behind.
                raise paramiko.SSHException("the connection closed before the server said who it is")
        except BaseException:
            transport.close()
            raise
    except (OSError, paramiko.SSHException, EOFError) as err:
        reason = "it did not answer in time" if isinstance(err, socket.timeout) else str(err) or type(err).__name__
        raise RdevError(f"Cannot reach {entry.name} ({entry.host}:{entry.port}{via}: {reason})", hint) from None
    try:
        yield transport
    finally:
        transport.close()


def _through_jump(entry: HostEntry) -> list[str]:
    """The real ssh to the jump host with the written config (its own login works as it does for VS Code):
    `-W` to forward, or rdev's bridge where the jump host refuses forwarding."""
    if entry.bridge:
        return bridge.argv(entry)
    return probe.ssh_argv(bridge.hop(entry.jump or ""), "-o", "BatchMode=yes", "-o",
                          f"ConnectTimeout={int(CONNECT_TIMEOUT)}", "-W", f"{entry.host}:{entry.port}")

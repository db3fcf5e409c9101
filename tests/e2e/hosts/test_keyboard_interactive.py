"""Keyboard-interactive logins (what a PAM server offers) through client_side.ssh.password_login.

Real OpenSSH needs PAM for keyboard-interactive, which this machine's test sshd does not use, so a
small paramiko server on loopback stands in for a PAM server: it asks the prompts it is given,
records every answer, and lets the login in only if each answer is right. The client side is rdev's
real code over a real TCP connection.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import paramiko
import pytest

from client_side.errors import RdevError
from client_side.local.registry import HostEntry
from client_side.ssh import password_login

PASSWORD = "pw-Kbd-4711"
CODE = "314159"
PASSWORD_PROMPT = ("Password: ", False)
CODE_PROMPT = ("Verification code: ", False)  # PAM asks for codes with echo off, like passwords
HINT = "Check that the test server runs."


class PamLike(paramiko.ServerInterface):
    """Keyboard-interactive only (unless `password_first`): asks `rounds` of prompts, one round
    after another, and records (prompt, answer) for each."""

    def __init__(self, rounds: list[list[tuple[str, bool]]], password_first: bool = False) -> None:
        self.rounds = rounds
        self.password_first = password_first
        self.received: list[tuple[str, str]] = []  # over all logins
        self.passwords: list[str] = []
        self._this_login: list[tuple[str, str]] = []
        self._left: list[list[tuple[str, bool]]] = []
        self._asked: list[tuple[str, bool]] = []

    def get_allowed_auths(self, username: str) -> str:
        return "password" if self.password_first and not self.passwords else "keyboard-interactive"

    def check_auth_password(self, username: str, password: str) -> int:
        self.passwords.append(password)
        if self.password_first and password == PASSWORD:
            return paramiko.AUTH_PARTIALLY_SUCCESSFUL  # right, but a code must follow
        return paramiko.AUTH_FAILED

    def check_auth_interactive(self, username: str, submethods: str) -> paramiko.InteractiveQuery | int:
        self._this_login = []
        self._left = list(self.rounds)
        return self._ask()

    def check_auth_interactive_response(self, responses: list[str]) -> paramiko.InteractiveQuery | int:
        answered = [(text, answer) for (text, _echo), answer in zip(self._asked, responses)]
        self.received += answered
        self._this_login += answered
        if self._left:
            return self._ask()
        right = {PASSWORD_PROMPT[0]: PASSWORD, CODE_PROMPT[0]: CODE}
        return paramiko.AUTH_SUCCESSFUL if all(right[t] == a for t, a in self._this_login) else paramiko.AUTH_FAILED

    def _ask(self) -> paramiko.InteractiveQuery:
        self._asked = self._left.pop(0)
        return paramiko.InteractiveQuery("", "", *self._asked)


@dataclass
class Served:
    entry: HostEntry  # user `ada` at the server's loopback port
    pinned: str  # its host key, as rdev pins it
    server: PamLike


@contextmanager
def serving(interface: PamLike) -> Iterator[Served]:
    """Serve `interface` on a loopback port, one connection after another, until the block ends."""
    host_key = paramiko.ECDSAKey.generate()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    transports: list[paramiko.Transport] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # the listener was closed: the test is over
            transport = paramiko.Transport(conn)
            transport.add_server_key(host_key)
            transports.append(transport)
            # With an event it returns at once; without one it may raise for a client that was quick to leave.
            transport.start_server(event=threading.Event(), server=interface)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    entry = HostEntry(name="pam", host="127.0.0.1", port=listener.getsockname()[1], user="ada", login=True)
    try:
        yield Served(entry=entry, pinned=f"{host_key.get_name()} {host_key.get_base64()}", server=interface)
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() that waits for a next connection
        listener.close()
        for transport in transports:
            transport.close()
        thread.join(5)


@pytest.fixture
def hidden_password_prompt() -> Iterator[Served]:
    with serving(PamLike([[PASSWORD_PROMPT]])) as served:
        yield served


def test_a_hidden_password_prompt_gets_the_password(hidden_password_prompt: Served) -> None:
    """A PAM server that allows keyboard-interactive only: rdev's own prompt handling logs in."""
    served = hidden_password_prompt
    password_login.check_password(served.entry, PASSWORD, served.pinned, HINT)
    assert served.server.received == [(PASSWORD_PROMPT[0], PASSWORD)]


def test_a_wrong_password_at_the_prompt_is_refused(hidden_password_prompt: Served) -> None:
    served = hidden_password_prompt
    with pytest.raises(password_login.PasswordRefused) as refused:
        password_login.check_password(served.entry, "not-it", served.pinned, HINT)
    assert refused.value.problem == "The password for ada@pam was refused"


@pytest.mark.parametrize("rounds", [[[PASSWORD_PROMPT], [CODE_PROMPT]], [[PASSWORD_PROMPT, CODE_PROMPT]]],
                         ids=["code-in-a-second-round", "code-in-the-same-round"])
def test_the_password_is_never_sent_as_a_one_time_code(rounds: list[list[tuple[str, bool]]]) -> None:
    """paramiko's own fallback answers any single prompt with the password; rdev answers only a
    hidden password prompt and tells the user the server wants more."""
    with serving(PamLike(rounds)) as served:
        entry, pinned = served.entry, served.pinned
        for attempt in (lambda: password_login.check_password(entry, PASSWORD, pinned, HINT),
                        lambda: password_login.install_key(entry, PASSWORD, "ssh-ed25519 AAAA rdev", pinned, HINT)):
            served.server.received.clear()
            with pytest.raises(RdevError) as failed:
                attempt()
            received = served.server.received
            assert PASSWORD not in [answer for text, answer in received if text == CODE_PROMPT[0]], received
            assert (PASSWORD_PROMPT[0], PASSWORD) in received and (CODE_PROMPT[0], "") in received
            assert not isinstance(failed.value, password_login.PasswordRefused)
            assert failed.value.problem == "pam asks for more than a password ('Verification code:')"
            assert failed.value.fix.startswith("log in once with 'ssh pam'")


def test_a_right_password_that_is_not_enough_is_not_a_login() -> None:
    """Password first, then a code (AuthenticationMethods password,keyboard-interactive): the password
    is right, yet nobody is logged in, and check_password must not say it worked."""
    with serving(PamLike([[CODE_PROMPT]], password_first=True)) as served:
        with pytest.raises(RdevError) as failed:
            password_login.check_password(served.entry, PASSWORD, served.pinned, HINT)
        assert failed.value.problem == "pam asks for more than a password (then keyboard-interactive)"
        assert served.server.passwords == [PASSWORD] and served.server.received == []

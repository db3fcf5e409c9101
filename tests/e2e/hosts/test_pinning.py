"""A ticket host's pinned key is what lets the real ssh in: with it gone from rdev's known_hosts,
or replaced by another key, ssh through the written config refuses the server outright (no
question asked, nothing added to known_hosts)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from client_side.ssh.known_hosts import alias
from tests.conftest import close_masters, ssh_through

NAME = "pinned"


@pytest.fixture
def known_hosts(home: Path, rdev: Callable, server: Callable[..., str]) -> Path:
    """`rdev connect` to a real sshd from its ticket, then no shared connection left: the next ssh
    must check the server's key itself. Returns rdev's known_hosts file."""
    result = rdev("connect", NAME, "--ticket", server(), "--no-open")
    assert result.returncode == 0, result.stderr
    assert ssh_through(home, NAME, "true").returncode == 0
    close_masters(home)
    return home / ".ssh" / "rdev" / "known_hosts"


def without_host(text: str) -> str:
    """known_hosts text with the lines pinned for NAME left out."""
    return "".join(line for line in text.splitlines(keepends=True) if line.split(" ", 1)[0] != alias(NAME))


def refused(home: Path, known_hosts: Path, said: str) -> None:
    """The real ssh through rdev's config refuses NAME with `said`, and writes nothing into known_hosts."""
    before = known_hosts.read_bytes()
    result = ssh_through(home, NAME, "true")
    assert result.returncode == 255
    assert said in result.stderr, result.stderr
    assert "Host key verification failed" in result.stderr
    assert known_hosts.read_bytes() == before


def test_a_missing_pinned_key_is_refused_not_asked(home: Path, known_hosts: Path) -> None:
    assert without_host(known_hosts.read_text()) != known_hosts.read_text()
    known_hosts.write_text(without_host(known_hosts.read_text()))
    # What StrictHostKeyChecking yes says; `ask` would have asked, `accept-new` would have let it in.
    refused(home, known_hosts, "you have requested strict checking")


def test_a_wrong_pinned_key_is_refused(home: Path, known_hosts: Path) -> None:
    other = home.parent / "other_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    wrong = " ".join(Path(f"{other}.pub").read_text().split()[:2])
    known_hosts.write_text(without_host(known_hosts.read_text()) + f"{alias(NAME)} {wrong}\n")
    refused(home, known_hosts, "REMOTE HOST IDENTIFICATION HAS CHANGED")

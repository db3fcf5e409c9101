"""rdev's key is installed once: client_side.ssh.password_login.install_key against a real sshd that takes
passwords (the test user and server of tests/e2e/hosts/test_login.py), run more than once, on an empty
home and on an authorized_keys that already holds other keys and lacks its last newline."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from client_side.local.registry import HostEntry
from client_side.ssh import password_login
from tests.stand_ins.login_host import PASSWORD, PasswordHost

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creating a test user needs root")

HINT = "Check that the test sshd runs."
# Someone else's keys, the last one without its newline, as an editor may leave a file.
OTHER_KEYS = (b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVpTxB3vKp4n0E5cDn2OF0t0F0nKcxWXgH2v3cM0f3V alice@laptop\n"
              b'from="10.0.0.0/8" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKt1c3QgYW5vdGhlciBrZXkgZm9yIHRlc3RzIG9ubHk= ci')


def install_twice(host: PasswordHost, public_key: str) -> None:
    """Log in with the password and install `public_key`, twice, as two `rdev connect` runs would."""
    entry = HostEntry(name="lab", host="127.0.0.1", port=host.port, user=host.user, login=True)
    pinned = password_login.host_key(entry, HINT).line
    for _ in range(2):
        password_login.install_key(entry, PASSWORD, public_key, pinned, HINT)


def assert_private(ssh_dir: Path) -> None:
    assert ssh_dir.stat().st_mode & 0o777 == 0o700
    assert (ssh_dir / "authorized_keys").stat().st_mode & 0o777 == 0o600


def test_installed_once_in_an_empty_home(host: PasswordHost, rdev: Callable) -> None:
    public_key = rdev("key").stdout.strip()
    install_twice(host, public_key)
    assert (host.home / ".ssh" / "authorized_keys").read_bytes() == public_key.encode() + b"\n"
    assert_private(host.home / ".ssh")


def test_installed_once_after_other_keys_without_a_last_newline(host: PasswordHost, rdev: Callable) -> None:
    ssh_dir = host.home / ".ssh"
    ssh_dir.mkdir(mode=0o755)
    (ssh_dir / "authorized_keys").write_bytes(OTHER_KEYS)
    (ssh_dir / "authorized_keys").chmod(0o644)
    for path in (ssh_dir, ssh_dir / "authorized_keys"):
        shutil.chown(path, host.user, host.user)
    public_key = rdev("key").stdout.strip()
    install_twice(host, public_key)
    # The other keys stay byte for byte; rdev's goes on a line of its own, once.
    assert (ssh_dir / "authorized_keys").read_bytes() == OTHER_KEYS + b"\n" + public_key.encode() + b"\n"
    assert_private(ssh_dir)

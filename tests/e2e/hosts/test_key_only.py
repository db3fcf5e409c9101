"""Hosts that take keys only (cloud GPUs where the provider put the user's key, servers with passwords off): rdev
installs its own key once with one of the user's (in an agent, a default file, or named by --identity), and where
none gets in it prints rdev's key and where it goes, exits 1, and connects once the key is there."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ssh_through
from tests.stand_ins.login_host import PasswordHost, login_host

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a test user needs root")


@pytest.fixture
def keys_only(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PasswordHost]:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with login_host(home, passwords=False) as server:
        yield server


def own_key(path: Path) -> str:
    """A key pair of the user's at `path`; its public line."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "users-own", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


def add(rdev, host: PasswordHost, *extra: str) -> None:
    result = rdev("add", "gpu", "--host", "127.0.0.1", "--port", str(host.port), "--user", host.user, *extra)
    assert result.returncode == 0, result.stderr


def rdevs_key_is_installed(rdev, home: Path, host: PasswordHost) -> None:
    assert rdev("key").stdout.strip() in host.authorized_keys()
    # From now on rdev's key alone: the config names only it (IdentitiesOnly), with no agent around.
    after = ssh_through(home, "-o", "IdentityAgent=none", "gpu", "true")
    assert after.returncode == 0, after.stderr
    again = rdev("connect", "gpu", "--no-open")
    assert again.returncode == 0 and "your own key" not in again.stdout, again.stderr


def test_a_default_key_file_installs_rdevs_key(home: Path, rdev, keys_only: PasswordHost) -> None:
    keys_only.authorize(own_key(home / ".ssh" / "id_ed25519"))
    add(rdev, keys_only)
    result = rdev("connect", "gpu", "--no-open")
    assert result.returncode == 0, result.stderr
    assert "rdev's key is installed, with your own key" in result.stdout
    assert "Password" not in result.stdout + result.stderr
    rdevs_key_is_installed(rdev, home, keys_only)


def test_a_key_named_with_identity_installs_rdevs_key(home: Path, rdev, keys_only: PasswordHost) -> None:
    keys_only.authorize(own_key(home.parent / "keys" / "lambda"))
    add(rdev, keys_only, "--identity", str(home.parent / "keys" / "lambda"))
    result = rdev("connect", "gpu", "--no-open")
    assert result.returncode == 0, result.stderr
    rdevs_key_is_installed(rdev, home, keys_only)


def test_a_key_in_the_agent_installs_rdevs_key(home: Path, rdev, keys_only: PasswordHost) -> None:
    key = home.parent / "agent-key"
    keys_only.authorize(own_key(key))
    socket = home.parent / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket)], stdout=subprocess.DEVNULL)
    try:
        env = {**os.environ, "SSH_AUTH_SOCK": str(socket)}
        for _ in range(100):
            if socket.exists():
                break
            subprocess.run(["sleep", "0.05"], check=True)
        subprocess.run(["ssh-add", "-q", str(key)], env=env, check=True, capture_output=True)
        key.unlink()  # only the agent holds it now
        add(rdev, keys_only)
        result = rdev("connect", "gpu", "--no-open", env=env)
        assert result.returncode == 0, result.stderr
        assert "with your own key" in result.stdout
    finally:
        agent.kill()
        agent.wait()
    rdevs_key_is_installed(rdev, home, keys_only)


def test_with_no_key_that_gets_in_rdev_says_where_its_key_goes(home: Path, rdev, keys_only: PasswordHost) -> None:
    own_key(home / ".ssh" / "id_ed25519")  # a key the host does not take
    add(rdev, keys_only)
    result = rdev("connect", "gpu", "--no-open")
    assert result.returncode == 1
    public = rdev("key").stdout.strip()
    assert public in result.stdout
    assert result.stderr.startswith("rdev: gpu takes keys only, and none of yours got in")
    assert "SSH keys" in result.stderr and "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert "password" not in result.stdout.lower()

    keys_only.authorize(public)  # added by hand, or where the provider takes keys
    again = rdev("connect", "gpu", "--no-open")
    assert again.returncode == 0, again.stderr


def test_an_identity_that_is_not_a_key_file_is_refused(home: Path, rdev, keys_only: PasswordHost) -> None:
    missing = rdev("add", "gpu", "--host", "127.0.0.1", "--user", keys_only.user, "--identity", "~/.ssh/nope")
    assert missing.returncode == 2 and "There is no key file ~/.ssh/nope" in missing.stderr
    public = home.parent / "k.pub"
    public.write_text("ssh-ed25519 AAAA x\n")
    assert rdev("add", "gpu", "--host", "127.0.0.1", "--identity", str(public)).returncode == 2
    assert "gpu" not in rdev("list").stdout

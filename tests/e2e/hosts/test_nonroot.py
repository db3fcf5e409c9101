"""The runtime side as an ordinary user: sshd runs as that user on a high port, and rdev connects."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap import ticket as tickets
from tests.conftest import REPO, run_module

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creating a test user needs root")

VALID_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVpTxB3vKp4n0E5cDn2OF0t0F0nKcxWXgH2v3cM0f3V"


@pytest.fixture
def account() -> Iterator[str]:
    name = f"rdt{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)
    yield name
    subprocess.run(["pkill", "-u", name], check=False, capture_output=True)
    subprocess.run(["userdel", "--remove", name], check=False, capture_output=True)


@pytest.fixture
def runtime_copy() -> Iterator[Path]:
    """A copy of the runtime side that any user can read: it needs only the standard library,
    and the checkout may sit in root's private home."""
    src = Path(tempfile.mkdtemp(prefix="rdsrc", dir="/tmp"))
    for package in ("bootstrap", "colab_side"):
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["chmod", "-R", "a+rX", str(src)], check=True)
    yield src
    shutil.rmtree(src, ignore_errors=True)


def as_user(user: str, *argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", user, "--", "env", "-i", f"HOME=/home/{user}", "PATH=/usr/bin:/bin",
                           "NOTEBOOK_VAR=from the user's serve", *argv], check=False, capture_output=True, text=True, cwd=cwd, timeout=120)


def user_python(user: str, cwd: Path) -> str:
    """A Python the test user may run: this one, unless it lives in root's private home."""
    for candidate in (sys.executable, shutil.which("python3", path="/usr/bin:/usr/local/bin") or ""):
        if candidate and as_user(user, candidate, "-c", "import sys; assert sys.version_info >= (3, 10)", cwd=cwd).returncode == 0:
            return candidate
    pytest.skip("no Python 3.10+ that an unprivileged user can run")


def running_sshd(user: str) -> list[str]:
    """The user's sshd processes that have not exited (an exited one may wait a moment to be reaped)."""
    ps = subprocess.run(["ps", "-u", user, "-o", "stat=,comm="], check=False, capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if line.split()[1:] == ["sshd"] and not line.startswith("Z")]


def test_serve_as_ordinary_user_and_connect(home: Path, rdev, account: str, runtime_copy: Path) -> None:
    python = user_python(account, runtime_copy)
    key = rdev("key").stdout.strip()
    served = as_user(account, python, "-m", "colab_side", "serve", "--authorized-key", key, "--no-keep-alive", cwd=runtime_copy)
    assert served.returncode == 0, served.stderr
    ticket_line = next(line for line in served.stdout.splitlines() if line.startswith("rdev1."))
    ticket = tickets.parse(ticket_line)
    assert ticket.user == account and ticket.port > 1024 and ticket.workdir == f"/home/{account}"
    assert running_sshd(account)

    result = rdev("connect", "mine", "--ticket", ticket_line, "--no-open")
    assert result.returncode == 0, result.stderr
    remote = subprocess.run(["ssh", "-F", str(home / ".ssh" / "config"), "mine", 'echo "$(whoami) $NOTEBOOK_VAR"'], check=False,
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert remote.stdout.strip() == f"{account} from the user's serve", remote.stderr

    assert as_user(account, python, "-m", "colab_side", "stop", cwd=runtime_copy).returncode == 0
    assert running_sshd(account) == []


def test_ordinary_user_cannot_serve_another(account: str, runtime_copy: Path) -> None:
    result = as_user(account, user_python(account, runtime_copy), "-m", "colab_side", "serve", "--user", "root",
                     "--authorized-key", VALID_KEY, "--no-keep-alive", cwd=runtime_copy)
    assert result.returncode == 2 and "Only root can serve another user" in result.stderr, result.stderr


def test_unknown_user_is_refused() -> None:
    result = run_module("colab_side", "serve", "--user", "nosuchuser-x", "--authorized-key", VALID_KEY, "--no-keep-alive")
    assert result.returncode == 2 and "There is no user" in result.stderr


def test_root_serves_another_user_with_a_key(home: Path, rdev, account: str) -> None:
    key = rdev("key").stdout.strip()
    state = home.parent / "server"
    args = ["serve", "--user", account, "--authorized-key", key, "--state-dir", str(state), "--no-keep-alive"]
    locked = run_module("colab_side", *args)
    assert locked.returncode == 2 and "is locked" in locked.stderr
    subprocess.run(["usermod", "-p", "*", account], check=True)
    unreachable = run_module("colab_side", *args)
    assert unreachable.returncode == 2 and "cannot reach its keys" in unreachable.stderr
    home.parent.chmod(0o711)  # the temporary root is private; the user may pass through it, not list it
    served = run_module("colab_side", *args)
    try:
        assert served.returncode == 0, served.stderr
        ticket_line = next(line for line in served.stdout.splitlines() if line.startswith("rdev1."))
        assert rdev("connect", "them", "--ticket", ticket_line, "--no-open").returncode == 0
        remote = subprocess.run(["ssh", "-F", str(home / ".ssh" / "config"), "them", "whoami"], check=False,
                                capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert remote.stdout.strip() == account, remote.stderr
    finally:
        run_module("colab_side", "stop", "--state-dir", str(state))

"""The password never shows in a process's argv or environment when rdev runs as an ordinary user:
`rdev connect --password-stdin` to a real password sshd, run by an unprivileged account with a home
of its own, while the test (root) reads /proc/*/cmdline and /proc/*/environ of every process."""

from __future__ import annotations

import os
import pwd
import subprocess
import sysconfig
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, close_masters, read_or_empty, snapshot
from tests.stand_ins.login_host import PASSWORD, PasswordHost

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creating a test user needs root")


@pytest.fixture
def account() -> Iterator[pwd.struct_passwd]:
    """An unprivileged user with a home it owns; its shared ssh connections end with the test."""
    name = f"rds{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True)
    user = pwd.getpwnam(name)
    yield user
    close_masters(Path(user.pw_dir))
    subprocess.run(["userdel", "--remove", name], check=False, capture_output=True)


def as_user(user: pwd.struct_passwd, *args: str) -> list[str]:
    """argv running `rdev ARGS...` as `user`, with nothing of root's environment. The checkout's
    Python may live under root's private home, so the system's runs this venv's packages."""
    packages = sysconfig.get_paths()["purelib"]
    return ["runuser", "-u", user.pw_name, "--", "env", "-i", f"HOME={user.pw_dir}", "PATH=/usr/bin:/bin",
            f"PYTHONPATH={REPO}:{packages}", "PYTHON_KEYRING_BACKEND=keyring.backends.null.Keyring",
            "/usr/bin/python3", "-m", "client_side", *args]


def rdev_works_as(user: pwd.struct_passwd) -> bool:
    return subprocess.run(as_user(user, "key"), check=False, capture_output=True, cwd=REPO, timeout=60).returncode == 0


def watch(process: subprocess.Popen, uid: int) -> tuple[list[str], set[str]]:
    """Until `process` ends, read every process's cmdline and environ: where the password shows, and
    the commands `uid` ran (to show the watch saw rdev's children)."""
    leaks: list[str] = []
    seen: set[str] = set()
    while True:
        ended = process.poll() is not None
        for proc in Path("/proc").glob("[0-9]*"):
            cmdline, environ = read_or_empty(proc / "cmdline"), read_or_empty(proc / "environ")
            leaks += [f"{proc}/{part}" for part, data in (("cmdline", cmdline), ("environ", environ))
                      if PASSWORD.encode() in data]
            try:
                if proc.stat().st_uid == uid and cmdline:
                    seen.add(Path(cmdline.split(b"\0")[0].decode(errors="replace")).name)
            except OSError:
                pass  # it ended meanwhile
        if ended:
            return leaks, seen


# `host` first, so that it is torn down last: the account's shared connection, which holds a session
# of the host's user, ends before that user is removed.
def test_password_stays_out_of_argv_and_environment_as_an_ordinary_user(host: PasswordHost,
                                                                         account: pwd.struct_passwd) -> None:
    if not os.access("/usr/bin/python3", os.X_OK) or not rdev_works_as(account):
        pytest.skip("the system's Python cannot run this venv's packages")
    added = subprocess.run(as_user(account, "add", "lab", "--host", "127.0.0.1", "--port", str(host.port),
                                   "--user", host.user), check=False, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert added.returncode == 0, added.stderr
    connect = subprocess.Popen(as_user(account, "connect", "lab", "--password-stdin", "--no-open"), cwd=REPO,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    connect.stdin.write(PASSWORD + "\n")
    connect.stdin.close()
    leaks, seen = watch(connect, account.pw_uid)
    out, err = connect.stdout.read(), connect.stderr.read()
    assert connect.wait() == 0, err
    assert "rdev's key is installed" in out
    assert {"python3", "ssh"} <= seen, seen  # the watch saw rdev and its ssh children run as the user
    assert leaks == []
    assert PASSWORD not in out + err
    assert not [p for p, data in snapshot(Path(account.pw_dir)).items() if PASSWORD.encode() in data]
    key = (Path(account.pw_dir) / ".ssh" / "rdev" / "id_ed25519.pub").read_text().split()[1]
    assert host.authorized_keys().count(key) == 1

"""The password never shows in a process's argv or environment when rdev runs as an ordinary user:
`rdev connect --password-stdin` to a real password sshd, run by an unprivileged account with a home
of its own, while the test (root) reads /proc/*/cmdline and /proc/*/environ of every process."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.conftest import REPO, close_masters, read_or_empty, snapshot
from tests.stand_ins.login_host import PASSWORD, PasswordHost

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: rdev depends on tomli there
    import tomli as tomllib

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creating a test user needs root")

SYSTEM_PYTHON = Path("/usr/bin/python3")


def unavailable(reason: str) -> None:
    """Skip, except in CI (CI=true), where a test that cannot run is a failure: it would prove nothing unseen."""
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(reason)
    pytest.skip(reason)


def needed_distributions() -> set[str]:
    """The distributions rdev's code needs, with theirs, as installed here: pyproject.toml's dependencies (the
    editable install's own metadata may be older than the checkout)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(line) for line in project["dependencies"]]
    found: set[str] = set()
    while wanted:
        requirement = wanted.pop()
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if name in found or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue  # an optional one not installed here
        found.add(name)
        wanted += [Requirement(line) for line in requires]
    return found


@pytest.fixture(scope="session")
def user_python() -> Iterator[Path]:
    """A Python any user can run, with rdev and what it needs: a venv of the system's Python holding copies of this
    checkout's packages and of the distributions they need from this venv. The checkout and this venv may live under
    root's private home (a fresh clone in CI); the copies live in /tmp. Made once per session."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        unavailable(f"no {SYSTEM_PYTHON} for the test user")
    probe = subprocess.run([str(SYSTEM_PYTHON), "-c", "import sys; print(*sys.version_info[:2])"], check=False,
                           capture_output=True, text=True)
    if probe.stdout.split() != [str(part) for part in sys.version_info[:2]]:
        unavailable(f"{SYSTEM_PYTHON} is not Python {sys.version_info[0]}.{sys.version_info[1]}, whose compiled "
                    "packages this venv has")
    root = Path(tempfile.mkdtemp(prefix="rdev-userpy-", dir="/tmp"))
    try:
        root.chmod(0o755)
        subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(root / "venv")], check=True)
        python = root / "venv" / "bin" / "python3"
        site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                   check=True, capture_output=True, text=True).stdout.strip())
        for package in ("bootstrap", "colab_side", "client_side"):
            shutil.copytree(REPO / package, site / package, ignore=shutil.ignore_patterns("__pycache__"))
        for name in needed_distributions():
            distribution = metadata.distribution(name)
            for file in distribution.files or []:
                source = Path(distribution.locate_file(file))
                if ".." not in file.parts and "__pycache__" not in file.parts and source.is_file():
                    (site / file).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, site / file)
        yield python
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def account() -> Iterator[pwd.struct_passwd]:
    """An unprivileged user with a home it owns; its shared ssh connections end with the test."""
    name = f"rds{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True)
    user = pwd.getpwnam(name)
    yield user
    close_masters(Path(user.pw_dir))
    subprocess.run(["userdel", "--remove", name], check=False, capture_output=True)


def as_user(user: pwd.struct_passwd, python: Path, *args: str) -> list[str]:
    """argv running `rdev ARGS...` as `user` with `python` (user_python), with nothing of root's environment."""
    return ["runuser", "-u", user.pw_name, "--", "env", "-i", f"HOME={user.pw_dir}", "PATH=/usr/bin:/bin",
            "PYTHON_KEYRING_BACKEND=keyring.backends.null.Keyring", str(python), "-m", "client_side", *args]


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
def test_password_stays_out_of_argv_and_environment_as_an_ordinary_user(host: PasswordHost, account: pwd.struct_passwd,
                                                                         user_python: Path) -> None:
    added = subprocess.run(as_user(account, user_python, "add", "lab", "--host", "127.0.0.1", "--port", str(host.port),
                                   "--user", host.user), check=False, capture_output=True, text=True,
                           cwd=account.pw_dir, timeout=60)
    assert added.returncode == 0, added.stderr
    connect = subprocess.Popen(as_user(account, user_python, "connect", "lab", "--password-stdin", "--no-open"),
                               cwd=account.pw_dir,
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

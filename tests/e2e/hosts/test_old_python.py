"""Hosts whose python3 is older than rdev's runtime side needs (RHEL/Rocky 8: 3.6): rdev runs its side with the
newest python3.X on the host's PATH, or the Python the host was added with, and otherwise says so in one sentence
before anything starts there. The Slurm route is tested in test_slurm.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.work.test_jupyter import alive, run_code, started
from tests.stand_ins.login_host import PASSWORD, PasswordHost, login_host
from tests.stand_ins.old_python import PYENV_36, put_first, python36

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="a test user needs root"),
              pytest.mark.skipif(not PYENV_36.exists(), reason="pyenv's Python 3.6 is not on this machine")]

TOO_OLD = ("lab's python3 is Python 3.6.15, older than the Python 3.8 rdev's runtime side needs, and no newer "
           "python3.X is on its PATH")


@pytest.fixture(scope="module")
def old_python() -> Iterator[Path]:
    with python36() as wrapper:
        yield wrapper


@pytest.fixture
def lab(home: Path, rdev) -> Iterator[PasswordHost]:
    with login_host(home, shell="/bin/bash") as host:
        assert rdev("add", "lab", "--host", "127.0.0.1", "--port", str(host.port), "--user", host.user).returncode == 0
        assert rdev("connect", "lab", "--password-stdin", "--no-open", input=PASSWORD + "\n").returncode == 0
        yield host


def test_jupyter_runs_with_the_newer_python_beside_an_old_python3(rdev, lab: PasswordHost, old_python: Path) -> None:
    put_first(lab.user, lab.home, old_python, newer_beside=True)
    assert rdev("ssh", "lab", "--", "python3", "--version").stdout.strip() == "Python 3.6.15"
    first = rdev("jupyter", "lab")
    served = started(first)
    assert "3.6" not in first.stdout
    assert run_code(served.local, served.token, "import sys; sys.version_info[:2] >= (3, 8)") == "True"
    assert rdev("jupyter", "lab", "--stop").returncode == 0 and not alive(served.pid)


def test_without_a_newer_python_it_is_one_sentence_and_nothing_starts(rdev, lab: PasswordHost,
                                                                      old_python: Path) -> None:
    put_first(lab.user, lab.home, old_python, newer_beside=False)
    result = rdev("jupyter", "lab")
    assert result.returncode == 1
    assert result.stderr.startswith(f"rdev: {TOO_OLD}: ") and result.stderr.count("\n") == 1, result.stderr
    assert "--python PATH" in result.stderr and "Traceback" not in result.stderr
    assert not (lab.home / ".rdev" / "jupyter").exists()


def test_the_python_the_host_was_added_with_is_used(rdev, lab: PasswordHost, old_python: Path) -> None:
    put_first(lab.user, lab.home, old_python, newer_beside=False)
    assert rdev("add", "lab", "--host", "127.0.0.1", "--port", str(lab.port), "--user", lab.user,
                "--python", "/usr/bin/python3.11").returncode == 0
    assert rdev("connect", "lab", "--no-open").returncode == 0
    served = started(rdev("jupyter", "lab"))
    assert run_code(served.local, served.token, "import sys; sys.executable.startswith('/usr/bin/python3.11') or "
                    "'/.rdev/' in sys.executable") == "True"
    assert rdev("jupyter", "lab", "--stop").returncode == 0

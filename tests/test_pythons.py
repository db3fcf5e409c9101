"""The laptop side on every Python this machine has from 3.10 on (pyenv's builds): the wheel, built once, installs
into a fresh virtual environment of each, `rdev --version` and `rdev demo` pass there, and so do the unit tests
(everything but tests/e2e, the linters and this file) run by that Python. A Python the machine lacks (3.14 here)
is not tested; the README says so."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

OLDEST_LAPTOP = (3, 10)
PYENV = Path(os.environ.get("PYENV_ROOT", "/root/.pyenv"))


def laptop_pythons() -> list[Path]:
    """pyenv's python3.X binaries for X from 3.10 on, one per minor version (the newest build of it)."""
    found: dict[int, Path] = {}
    for python in sorted(PYENV.glob("versions/3.*/bin/python3.*")):
        minor = re.fullmatch(r"python3\.(\d+)", python.name)
        if minor and (3, int(minor[1])) >= OLDEST_LAPTOP:
            found[int(minor[1])] = python
    return [found[minor] for minor in sorted(found)]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(REPO)],
                           check=False, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    [found] = out.glob("rdev-*.whl")
    return found


def run(argv: list[str | Path], timeout: float, **kwargs: object) -> str:
    done = subprocess.run([str(word) for word in argv], check=False, capture_output=True, text=True,
                          timeout=timeout, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{argv}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


@pytest.mark.skipif(not laptop_pythons(), reason="pyenv's Pythons are not on this machine")
@pytest.mark.parametrize("python", laptop_pythons(), ids=lambda path: path.name)
def test_the_wheel_installs_and_rdev_works_on_each_python(python: Path, wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run([python, "-m", "venv", venv], 300)
    bin_dir = venv / "bin"
    # setuptools too: the packaging test builds without isolation, and venvs of 3.12 and later come without it.
    run([bin_dir / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check", f"rdev[test] @ {wheel.as_uri()}",
         "setuptools>=64"], 1200)
    from importlib.metadata import version

    assert run([bin_dir / "rdev", "--version"], 60).strip() == f"rdev {version('rdev')}"
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    said = run([bin_dir / "rdev", "demo"], 600, env={**env, "PATH": f"{bin_dir}:{env['PATH']}"}, cwd=tmp_path)
    assert "Done: server stopped, throwaway HOME removed." in said, said[-2000:]
    run([bin_dir / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "tests",
         "--ignore=tests/e2e", "--ignore=tests/test_lint.py", "--ignore=tests/test_pythons.py"],
        1800, cwd=REPO, env=env)

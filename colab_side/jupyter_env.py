"""Which Python runs the host's Jupyter for `rdev jupyter`, with Jupyter installed for the user when missing.

The host's own python3 gets jupyter_server and ipykernel with `pip install --user` (into its
environment if it is a virtual one). Where pip cannot do that — the system manages that Python's
packages (PEP 668: Debian 12, Ubuntu 23.04 and later, what school servers increasingly run) or it has
no pip — they go into a virtual environment of rdev's in the host's state folder, made once and used
from then on. A Python the user named is never installed into: the user gets the command instead.
Standard library only, Python 3.8+.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Callable

# The server, and the Python kernel that Colab and VS Code start in it.
NEEDED = ("jupyter_server", "ipykernel")
INSTALL_TIMEOUT = 900.0


class Failure(Exception):
    """What went wrong on the host and what the user can do, sent to the laptop as one sentence."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


def python_for_jupyter(state: Path, install: bool, say: Callable[[str], None]) -> str:
    """The Python to run Jupyter with: this one if it has Jupyter, else rdev's environment in `state` if
    made before; else, when `install`, this one or a new environment of rdev's after installing Jupyter."""
    missing = [module for module in NEEDED if importlib.util.find_spec(module) is None]
    if not missing:
        return sys.executable
    wanted = " ".join(missing)
    if not install:
        raise Failure(f"{sys.executable} has no {' or '.join(missing)}",
                      f"install them there ('{sys.executable} -m pip install {wanted}') and run again.")
    env = state / "env"
    env_python = env / "bin" / "python"
    if env_python.exists() and _imports(str(env_python)):
        return str(env_python)
    in_venv = sys.prefix != sys.base_prefix  # a venv has no user space of its own: pip refuses --user there
    if importlib.util.find_spec("pip") is not None and (in_venv or not _system_managed()):
        where = "into its environment" if in_venv else "for your user (pip install --user)"
        say(f"{sys.executable} has no {' or '.join(missing)}; installing {wanted} {where}, once.")
        _pip(sys.executable, [*([] if in_venv else ["--user"])], missing)
        # A user site folder that did not exist when this Python started is not on its path: ask a new one.
        if not _imports(sys.executable):
            raise Failure(f"{wanted} were installed but {sys.executable} does not find them", _venv_fix())
        return sys.executable
    why = "the system manages its packages (PEP 668)" if importlib.util.find_spec("pip") else "it has no pip"
    say(f"{sys.executable} has no {' or '.join(missing)} and {why}: installing {' '.join(NEEDED)} into a virtual "
        f"environment of rdev's ({env}), once.")
    _make_env(env)
    _pip(str(env_python), [], list(NEEDED))
    return str(env_python)


def _imports(python: str) -> bool:
    check = subprocess.run([python, "-c", f"import {', '.join(NEEDED)}"], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=120)
    return check.returncode == 0


def _system_managed() -> bool:
    """True where the system's package manager owns this Python's packages (PEP 668's marker file)."""
    return Path(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED").exists()


def _venv_fix() -> str:
    return (f"make a venv there ('{sys.executable} -m venv ~/jupyter-env && ~/jupyter-env/bin/pip install "
            f"{' '.join(NEEDED)}') and pass --python ~/jupyter-env/bin/python.")


def _make_env(env: Path) -> None:
    shutil.rmtree(env, ignore_errors=True)  # a half-made one from an interrupted run
    made = subprocess.run([sys.executable, "-m", "venv", str(env)], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=INSTALL_TIMEOUT)
    if made.returncode != 0:
        shutil.rmtree(env, ignore_errors=True)
        raise Failure(f"{sys.executable} cannot make a virtual environment (on Debian and Ubuntu its python3-venv "
                      "package is missing)", "ask for python3-venv there, or pass --python with a Python that has "
                      f"{' and '.join(NEEDED)}.")


def _pip(python: str, options: list[str], packages: list[str]) -> None:
    wanted = " ".join(packages)
    command = [python, "-m", "pip", "install", "--disable-pip-version-check", "-q", *options, *packages]
    try:
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Failure(f"installing {wanted} did not finish within {INSTALL_TIMEOUT:.0f} s",
                      "check the host's internet access and run again.") from None
    if result.returncode != 0:
        said = (result.stderr + result.stdout).strip()
        last = said.splitlines()[-1] if said else f"pip exited with status {result.returncode}"
        raise Failure(f"installing {wanted} failed ({last})", _venv_fix())

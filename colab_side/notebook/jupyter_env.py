"""Which Python runs the host's Jupyter for `rdev jupyter`, with Jupyter installed for the user when missing.

The host's own python3 gets jupyter_server and ipykernel with `pip install --user` (into its
environment if it is a virtual one). Where pip cannot do that — the system manages that Python's
packages (PEP 668: Debian 12, Ubuntu 23.04 and later, what school servers increasingly run) or it has
no pip — they go into a virtual environment of rdev's, made once and used from then on. It sees the
system's packages (torch installed by the admins stays importable in the notebook), and it is one per
Python version and machine, not per host, so that cluster nodes sharing a home share it too. A
Python the user named is never installed into: the user gets the command instead.

Because another node may be running Jupyter from it, an environment is never changed once in use: each
one is built into a folder of its own (ENV.builds/STAMP) and taken into use by rewriting a small pointer
(ENV.current, naming that folder) in one step, once Jupyter is installed in it. A node whose check of
the environment fails builds a new one beside it; the old one stays, whole, for whoever runs from it
(rdev cannot see other nodes' processes, so it never removes a finished build: they are left for the user
to delete once no Jupyter of rdev's runs). A folder an older rdev made at ENV itself is used as long as it
imports Jupyter. Standard library only, Python 3.8+.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

from bootstrap.files import atomic_write
from colab_side.errors import Failure

# The server, and the Python kernel that Colab and VS Code start in it.
NEEDED = ("jupyter_server", "ipykernel")
# Each path through here, plus Jupyter's start (up to 3 x 60 s), ends within the laptop's wait for a
# start (client_side.commands.jupyter.START_TIMEOUT, 1200 s): an install the laptop gave up on must not go on
# holding the locks its retry needs.
VENV_TIMEOUT = 180.0
PIP_TIMEOUT = 480.0
IMPORT_TIMEOUT = 60.0
BUILD_WAIT = 660.0  # for another host of this home building the environment (its venv + pip, and more)
# Written into a build once Jupyter is installed in it: a build without it is a half-made one of a run that was
# killed, which no pointer ever named and nothing runs from.
COMPLETE = "rdev-complete"


def python_for_jupyter(root: Path, install: bool, say: Callable[[str], None]) -> str:
    """The Python to run Jupyter with: this one if it has Jupyter; else, when `install` (the host's own
    Python), this one after `pip install --user`, or rdev's environment under `root`, made if need be."""
    missing = [module for module in NEEDED if importlib.util.find_spec(module) is None]
    if not missing:
        return sys.executable
    wanted = " ".join(missing)
    if not install:
        raise Failure(f"{sys.executable} has no {' or '.join(missing)}",
                      f"install them there ('{sys.executable} -m pip install {wanted}') and run again.")
    env = env_folder(root)
    in_venv = sys.prefix != sys.base_prefix  # a venv has no user space of its own: pip refuses --user there
    has_pip = importlib.util.find_spec("pip") is not None
    if has_pip and (in_venv or not _system_managed()) and _current(env) is None:
        where = "into its environment" if in_venv else "for your user (pip install --user)"
        say(f"{sys.executable} has no {' or '.join(missing)}; installing {wanted} {where}, once.")
        try:
            _pip(sys.executable, [*([] if in_venv else ["--user"])], missing, _venv_fix())
        except _Managed:
            pass  # the system manages it after all, without PEP 668's marker where rdev looks: rdev's own, below
        else:
            # A user site folder that did not exist when this Python started is not on its path: ask a new one.
            if not _imports(sys.executable):
                raise Failure(f"{wanted} were installed but {sys.executable} does not find them", _venv_fix())
            return sys.executable
    return _own_environment(env, missing, has_pip, say)


def _own_environment(env: Path, missing: list[str], has_pip: bool, say: Callable[[str], None]) -> str:
    """rdev's environment `env` with Jupyter: the one in use if it has Jupyter, else a new build put into use.
    The one in use is never deleted or rebuilt: a node sharing this home may be running Jupyter from it."""
    with _building(env):  # hosts that share this home may get here at once
        current = _current(env)
        if current is not None and _imports(str(current / "bin" / "python")):
            return str(current / "bin" / "python")
        _sweep(env, current)
        _builds(env).mkdir(mode=0o700, exist_ok=True)
        build = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-"), dir=str(_builds(env))))
        why = "it has no pip" if not has_pip else "the system manages its packages (PEP 668)"
        say(f"{sys.executable} has no {' or '.join(missing)} and {why}: installing {' '.join(NEEDED)} into a "
            f"virtual environment of rdev's ({build}), once.")
        try:
            _make_env(build)
            _pip(str(build / "bin" / "python"), [], list(NEEDED), f"check the host's internet access and free space "
                 f"in {env.parent}, then run again; or pass --python with a Python that has them.")
            (build / COMPLETE).write_bytes(b"")
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)  # never named by the pointer: nothing runs from it
            raise
        # The switch, in one rename: a node reading the pointer meanwhile gets the old build or the new one, whole.
        atomic_write(_pointer(env), f"{build.name}\n".encode(), follow=False)
    return str(build / "bin" / "python")


def _builds(env: Path) -> Path:
    """The folder of `env`'s builds, one folder each."""
    return env.parent / f"{env.name}.builds"


def _pointer(env: Path) -> Path:
    """The file naming the build of `env` in use (a folder in _builds(env))."""
    return env.parent / f"{env.name}.current"


def _current(env: Path) -> Path | None:
    """The environment in use: the build the pointer names, else a folder an older rdev made at `env` itself;
    None when there is neither."""
    try:
        name = _pointer(env).read_text().strip()
    except (OSError, UnicodeDecodeError):
        name = ""
    if name and name == Path(name).name and not name.startswith("."):  # a folder's name, never a path elsewhere
        build = _builds(env) / name
        if (build / "bin" / "python").exists():
            return build
    return env if (env / "bin" / "python").exists() else None


def _sweep(env: Path, current: Path | None) -> None:
    """Remove the half-made builds that killed runs left: none was ever pointed at, so nothing runs from them, and
    with the build lock held none is under way. One changed within BUILD_WAIT is kept all the same: it may be
    another node's build under way where the file system's locks do not reach across nodes (NFS mounted with
    nolock). Finished builds stay: a node may use one."""
    builds = _builds(env)
    for build in builds.iterdir() if builds.is_dir() else ():
        try:
            idle = time.time() - build.lstat().st_mtime
        except OSError:
            continue
        if build != current and build.is_dir() and not build.is_symlink() and idle > BUILD_WAIT \
                and not (build / COMPLETE).exists():
            shutil.rmtree(build, ignore_errors=True)


def env_folder(root: Path) -> Path:
    """rdev's environment for this Python version on this kind of machine and C library: cluster nodes
    that share a home share it, and a node it cannot run on never takes it over. Its builds, pointer and lock
    are named after it (an older rdev made the environment at this very path)."""
    libc, libc_version = platform.libc_ver()
    return root / "-".join(["env", f"{sys.version_info[0]}.{sys.version_info[1]}", platform.machine() or "unknown",
                            *([f"{libc}{libc_version}"] if libc else [])])


class _Managed(Failure):
    """pip refused: the system manages this Python's packages."""


@contextlib.contextmanager
def _building(env: Path) -> Iterator[None]:
    fd = os.open(str(env.parent / f"{env.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + BUILD_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise Failure(f"another rdev has been installing Jupyter into {env} for {BUILD_WAIT:.0f} s",
                                  "run 'rdev jupyter' again once it is done.") from None
                time.sleep(1)
        yield
    finally:
        os.close(fd)


def _imports(python: str) -> bool:
    check = _run([python, "-c", f"import {', '.join(NEEDED)}"], IMPORT_TIMEOUT, f"checking {python}'s Jupyter")
    return check.returncode == 0


def _system_managed() -> bool:
    """True where the system's package manager owns this Python's packages (PEP 668's marker file)."""
    return Path(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED").exists()


def _venv_fix() -> str:
    return (f"make a venv there ('{sys.executable} -m venv ~/jupyter-env && ~/jupyter-env/bin/pip install "
            f"{' '.join(NEEDED)}') and pass --python ~/jupyter-env/bin/python.")


def _make_env(env: Path) -> None:
    """A virtual environment in the empty folder `env`, seeing the system's packages."""
    made = _run([sys.executable, "-m", "venv", "--system-site-packages", str(env)], VENV_TIMEOUT,
                "making rdev's virtual environment")
    if made.returncode != 0:
        if "ensurepip" in made.stdout + made.stderr:
            raise Failure(f"{sys.executable} cannot make a virtual environment (on Debian and Ubuntu its python3-venv "
                          "package is missing)", "ask for python3-venv there, or pass --python with a Python that has "
                          f"{' and '.join(NEEDED)}.")
        raise Failure(f"{sys.executable} could not make a virtual environment in {env} ({_last_line(made)})",
                      "fix that (free space? quota?) and run again, or pass --python with a Python that has "
                      f"{' and '.join(NEEDED)}.")


def _pip(python: str, options: list[str], packages: list[str], fix: str) -> None:
    wanted = " ".join(packages)
    result = _run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q", *options, *packages],
                  PIP_TIMEOUT, f"installing {wanted}")
    said = result.stdout + result.stderr
    if result.returncode != 0 and any(mark in said for mark in _OFFLINE):
        raise Failure(f"pip on this host cannot reach a package index to install {wanted} ({_last_line(result)})",
                      "point pip at a mirror there (PIP_INDEX_URL, or index-url in ~/.config/pip/pip.conf), or bring "
                      f"the wheels: 'pip download {wanted} -d wheels' on a machine with internet, copy the folder over "
                      "and set PIP_FIND_LINKS to it there; or pass --python with a Python that has them.")
    if result.returncode != 0:
        refused = _Managed if "externally-managed-environment" in said else Failure
        raise refused(f"installing {wanted} failed ({_last_line(result)})", fix)


# What pip says when no package index answers: no route, no name, nothing listening.
_OFFLINE = ("Failed to establish a new connection", "Temporary failure in name resolution", "Network is unreachable",
            "No route to host", "Name or service not known")


def _run(argv: list[str], timeout: float, doing: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Failure(f"{doing} did not finish within {timeout:.0f} s",
                      "check the host's internet access and load, then run again.") from None


def _last_line(result: subprocess.CompletedProcess) -> str:
    said = (result.stderr + result.stdout).strip()
    return said.splitlines()[-1] if said else f"exit status {result.returncode}"

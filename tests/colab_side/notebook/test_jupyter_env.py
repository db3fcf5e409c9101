"""Which Python runs the host's Jupyter: rdev's own environment is named for the Python, machine and C
library that can run it, a host waits for another one building it only so long, and a build never touches
the one another node of the same home may be running Jupyter from."""

from __future__ import annotations

import fcntl
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from colab_side.errors import Failure
from colab_side.notebook import jupyter_env
from colab_side.notebook.jupyter_env import env_folder


def test_the_environment_is_named_for_what_can_run_it(tmp_path: Path) -> None:
    libc, version = platform.libc_ver()
    expected = f"env-{sys.version_info[0]}.{sys.version_info[1]}-{platform.machine()}" + (f"-{libc}{version}" if libc
                                                                                         else "")
    assert env_folder(tmp_path) == tmp_path / expected


def test_a_host_waits_for_another_building_the_environment_only_so_long(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jupyter_env, "BUILD_WAIT", 1.0)
    env = env_folder(tmp_path)
    said: list[str] = []
    holder = os.open(str(tmp_path / f"{env.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)  # another node of this home, building
        with pytest.raises(Failure) as caught:
            jupyter_env._own_environment(env, ["jupyter_server"], True, said.append)
    finally:
        os.close(holder)
    assert caught.value.problem == f"another rdev has been installing Jupyter into {env} for 1 s"
    assert caught.value.fix == "run 'rdev jupyter' again once it is done."
    assert said == [] and not env.exists()


def test_a_python_that_has_jupyter_is_used_as_it_is(tmp_path: Path) -> None:
    said: list[str] = []
    assert jupyter_env.python_for_jupyter(tmp_path, install=True, say=said.append) == sys.executable  # .venv's
    assert said == [] and list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ builds shared by the nodes of one home


class Installs:
    """Stands in for `python -m venv`, pip and the import check (jupyter_env._run): a "venv" is a folder with
    bin/python, pip leaves a file `jupyter` in it, and a Python imports Jupyter while that file is there and its
    folder is not in `broken` (a check that fails on this node: a slow file system, a transient error)."""

    def __init__(self) -> None:
        self.broken: set[Path] = set()
        self.during_pip: list[Callable[[Path], None]] = []  # called with the build pip installs into

    def run(self, argv: list[str], timeout: float, doing: str) -> subprocess.CompletedProcess:
        if argv[1:4] == ["-m", "venv", "--system-site-packages"]:
            (Path(argv[4]) / "bin").mkdir(parents=True, exist_ok=True)
            (Path(argv[4]) / "bin" / "python").write_text("")
            return subprocess.CompletedProcess(argv, 0, "", "")
        env = Path(argv[0]).parent.parent
        if argv[1:4] == ["-m", "pip", "install"]:
            for call in self.during_pip:
                call(env)
            (env / "jupyter").write_text("")
            return subprocess.CompletedProcess(argv, 0, "", "")
        assert argv[1] == "-c" and argv[2].startswith("import "), argv
        return subprocess.CompletedProcess(argv, 0 if (env / "jupyter").exists() and env not in self.broken else 1,
                                           "", "")


@pytest.fixture
def installs(monkeypatch: pytest.MonkeyPatch) -> Installs:
    stand_in = Installs()
    monkeypatch.setattr(jupyter_env, "_run", stand_in.run)
    return stand_in


def own(env: Path) -> Path:
    """rdev's environment for `env`, as a host without pip gets it: the folder its Python is in."""
    return Path(jupyter_env._own_environment(env, ["jupyter_server"], False, lambda words: None)).parent.parent


def pointed(env: Path) -> str:
    return (env.parent / f"{env.name}.current").read_text().strip()


def read_or_empty(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_a_node_whose_check_fails_builds_anew_beside_the_environment_another_node_runs_from(
        tmp_path: Path, installs: Installs) -> None:
    """Node A runs Jupyter from the environment; node B's check of it fails. B never deletes it or rebuilds it in
    place: it builds another and moves the pointer to it in one step, once that one is complete."""
    env = env_folder(tmp_path)
    first = own(env)
    (first / "in-use").write_text("node A's Jupyter runs from here")
    seen: list[str] = []
    installs.during_pip.append(lambda build: seen.append(read_or_empty(tmp_path / f"{env.name}.current")))
    installs.broken.add(first)

    second = own(env)
    assert (first / "in-use").exists(), "node B deleted the environment node A runs from"
    assert (first / "bin" / "python").exists() and (first / "jupyter").exists()
    assert second != first and first.parent == second.parent == tmp_path / f"{env.name}.builds"
    assert seen == [f"{first.name}\n"], "the pointer named the new build before it was complete"
    assert pointed(env) == second.name and (second / jupyter_env.COMPLETE).exists()
    assert own(env) == second  # taken from now on, without another build


def test_the_pointer_is_replaced_in_one_rename_never_written_through(tmp_path: Path, installs: Installs) -> None:
    env = env_folder(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not rdev's")
    (tmp_path / f"{env.name}.current").symlink_to(elsewhere)
    built = own(env)
    pointer = tmp_path / f"{env.name}.current"
    assert not pointer.is_symlink() and pointer.read_text() == f"{built.name}\n"
    assert elsewhere.read_text() == "not rdev's"


def test_a_half_made_build_is_never_taken_and_is_cleared_by_a_later_build(tmp_path: Path, installs: Installs) -> None:
    """A run killed mid-build leaves a folder no pointer names (these would even import: pip had finished). One
    changed lately may be another node's build under way, where the locks do not reach across nodes: it stays."""
    env = env_folder(tmp_path)
    half, lately = (tmp_path / f"{env.name}.builds" / name for name in ("20240101-killed00", "20240101-building"))
    for build in (half, lately):
        (build / "bin").mkdir(parents=True)
        (build / "bin" / "python").write_text("")
        (build / "jupyter").write_text("")
    long_ago = time.time() - jupyter_env.BUILD_WAIT - 60
    os.utime(half, (long_ago, long_ago))
    built = own(env)
    assert built not in (half, lately) and pointed(env) == built.name
    assert not half.exists() and (lately / "jupyter").exists()


def test_a_build_that_fails_leaves_the_environment_in_use_as_it_was(tmp_path: Path, installs: Installs) -> None:
    env = env_folder(tmp_path)
    first = own(env)
    installs.broken.add(first)

    def interrupted(build: Path) -> None:
        raise KeyboardInterrupt  # the laptop's ssh went, mid-install

    installs.during_pip.append(interrupted)
    with pytest.raises(KeyboardInterrupt):
        own(env)
    assert pointed(env) == first.name and (first / "jupyter").exists()
    assert [build.name for build in first.parent.iterdir()] == [first.name]  # the half-made one went at once


def test_an_older_rdevs_environment_is_used_while_it_imports_and_left_alone_when_it_does_not(
        tmp_path: Path, installs: Installs) -> None:
    env = env_folder(tmp_path)
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").write_text("")
    (env / "jupyter").write_text("")
    assert own(env) == env and not (tmp_path / f"{env.name}.current").exists()

    installs.broken.add(env)
    built = own(env)
    assert built.parent == tmp_path / f"{env.name}.builds" and pointed(env) == built.name
    assert (env / "bin" / "python").exists() and (env / "jupyter").exists()  # a node may still run from it

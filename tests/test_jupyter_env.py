"""Which Python runs the host's Jupyter: rdev's own environment is named for the Python, machine and C
library that can run it, and a host waits for another one building it only so long."""

from __future__ import annotations

import fcntl
import os
import platform
import sys
from pathlib import Path

import pytest

from colab_side import jupyter_env
from colab_side.jupyter_env import Failure, env_folder


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

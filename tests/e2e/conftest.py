"""Fixtures of the end-to-end tests: for Colab's own SSH route, a stand-in runtime (a real sshd) and a
stand-in for Colab's runtime proxy in front of it, with Google's real CLI pointed at them; and a
real one-node Slurm (`slurm`) for the cluster tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.slurm_cluster import slurm  # noqa: F401 (a fixture: one private Slurm for the test session)
from tests.stand_ins.colab_runtime import SESSION, ColabProxy, Runtime, colab_binary, quiet_settings, write_session
from tests.stand_ins.login_host import PasswordHost, login_host


@pytest.fixture
def runtime(home: Path) -> Iterator[Runtime]:
    vm = Runtime(home.parent / "runtime", "gpu-t4-s-first")
    vm.start()
    yield vm
    vm.stop()


@pytest.fixture
def proxy(home: Path, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[ColabProxy]:
    """The proxy, and the CLI's session SESSION naming it, as `colab new` leaves it; rdev finds the real CLI."""
    server = ColabProxy(runtime)
    quiet_settings(home)
    write_session(home, SESSION, server, runtime.endpoint)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("RDEV_COLAB", str(colab_binary()))
    yield server
    server.close()


@pytest.fixture
def host(home: Path) -> Iterator[PasswordHost]:
    """A password host: a new local user with a password behind a real sshd that takes passwords."""
    with login_host(home) as server:
        yield server


@pytest.fixture
def recorded(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put a recording `ssh` first on PATH: every child ssh's argv and environment land in a folder
    outside HOME before the real ssh runs."""
    records = home.parent / "ssh-calls"
    records.mkdir()
    wrapper = home.parent / "recbin" / "ssh"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nn=$$; printf "%s\\n" "$@" > "{records}/$n.argv"; env > "{records}/$n.env"\n'
                       'exec /usr/bin/ssh "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}:{os.environ['PATH']}")
    return records

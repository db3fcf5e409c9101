"""One state folder, one owner: a later serve, from this process or another, takes the folder over,
and whatever the earlier serve left (its supervisor, its wait loop, its handle) leaves the new server alone."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from colab_side import processes, serve
from tests.conftest import REPO, run_module
from tests.e2e.runtime.test_runtime_lifecycle import keypair, supervisor_threads
from tests.e2e.runtime.test_runtime_stop import serve_cli
from tests.e2e.runtime.test_supervisor import wait_for


def test_a_cli_serve_takes_over_from_a_python_serve(home: Path) -> None:
    _, key = keypair(home)
    state = home.parent / "server"
    said: list[str] = []
    old = serve(authorized_keys=[key], state_dir=state, keep_alive=False, out=said.append)
    try:
        serve_cli(state, key)
        assert wait_for(lambda: supervisor_threads() == 0), said
        new_sshd = processes.read_pid(state / "sshd.pid")
        assert old.stop() is False
        assert processes.alive(new_sshd) and processes.read_recorded(state / "supervisor.pid") is not None
    finally:
        run_module("colab_side", "stop", "--state-dir", str(state))


def test_a_waiting_cli_serve_ends_quietly_when_another_takes_over(home: Path) -> None:
    _, key = keypair(home)
    state = home.parent / "server"
    first = subprocess.Popen([sys.executable, "-m", "colab_side", "serve", "--authorized-key", key,
                              "--state-dir", str(state)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    try:
        assert wait_for(lambda: (state / "ticket").exists(), timeout=30)
        serve_cli(state, key)
        recorded = (state / "supervisor.pid").read_text()
        output, _ = first.communicate(timeout=15)
        assert first.returncode == 0 and "replaced" in output and "background process" not in output, output
        time.sleep(1)
        assert (state / "supervisor.pid").read_text() == recorded
    finally:
        first.kill()
        first.wait()
        run_module("colab_side", "stop", "--state-dir", str(state))

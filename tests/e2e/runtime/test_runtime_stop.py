"""`stop` ends everything of its server and nothing else: connections without a command that outlived
their listener, but not the processes of another server started from inside a session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from bootstrap import ticket as tickets
from colab_side import processes
from tests.conftest import REPO, run_module
from tests.e2e.runtime.test_runtime_lifecycle import keypair
from tests.e2e.runtime.test_supervisor import wait_for


def serve_cli(state: Path, key: str, *args: str, env: dict | None = None) -> str:
    result = run_module("colab_side", "serve", "--authorized-key", key, "--state-dir", str(state), "--no-keep-alive",
                        *args, env=env)
    assert result.returncode == 0, result.stderr
    return next(line for line in result.stdout.splitlines() if line.startswith("rdev1."))


def ssh_args(private: Path, port: int, control: Path) -> list[str]:
    return ["ssh", "-F", "none", "-i", str(private), "-p", str(port), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", f"ControlPath={control}"]


def test_stop_ends_a_master_connection_older_than_the_listener(home: Path) -> None:
    private, key = keypair(home)
    state = home.parent / "server"
    control = home.parent / "ctl"
    port = tickets.parse(serve_cli(state, key)).port
    try:
        opened = subprocess.run([*ssh_args(private, port, control), "-o", "ControlMaster=auto",
                                 "-o", "ControlPersist=60", "127.0.0.1", "true"], check=False,
                                stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        assert opened.returncode == 0, opened.stderr
        listener = processes.read_pid(state / "sshd.pid")
        os.kill(listener, signal.SIGKILL)
        assert wait_for(lambda: processes.read_pid(state / "sshd.pid") not in (None, listener))

        assert run_module("colab_side", "stop", "--state-dir", str(state)).stdout.strip() == "Stopped."
        reused = subprocess.run([*ssh_args(private, port, control), "127.0.0.1", "echo hi"], check=False,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert reused.stdout.strip() != "hi"
    finally:
        subprocess.run([*ssh_args(private, port, control), "-O", "exit", "127.0.0.1"], check=False, capture_output=True, timeout=30)
        run_module("colab_side", "stop", "--state-dir", str(state))


def test_stop_of_a_session_leaves_a_server_started_inside_it(home: Path, cloudflared_standin: Path) -> None:
    """A serve run in an rdev session inherits that server's marker; its supervisor and tunnel must not."""
    _, key = keypair(home)
    inside, outer = home.parent / "inner", home.parent / "outer"
    outer.mkdir()
    env = {**os.environ, "RDEV_STATE": str(outer)}
    serve_cli(inside, key, "--tunnel", "cloudflared", "--cloudflared", str(cloudflared_standin), env=env)
    try:
        supervisor = processes.read_recorded(inside / "supervisor.pid")
        tunnel = processes.read_pid(inside / "tunnel.pid")
        run_module("colab_side", "stop", "--state-dir", str(outer))
        assert processes.alive(supervisor) and processes.alive(tunnel)
    finally:
        run_module("colab_side", "stop", "--state-dir", str(inside))


def test_stop_typed_in_a_session_of_the_server_finishes(home: Path) -> None:
    """`stop` run over SSH on the server it stops ends sshd and the other sessions, not itself halfway:
    it says "Stopped." and its own session ends when it is left."""
    private, key = keypair(home)
    state = home.parent / "server"
    port = tickets.parse(serve_cli(state, key)).port
    control = home.parent / "ctl"
    other = subprocess.Popen([*ssh_args(private, port, control), "127.0.0.1", "echo up; sleep 60"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "up"
        command = f"cd {REPO} && {sys.executable} -m colab_side stop --state-dir {state}; echo after-stop"
        inside = subprocess.run([*ssh_args(private, port, control), "127.0.0.1", command], check=False,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert inside.stdout.split() == ["Stopped.", "after-stop"], inside.stderr
        assert other.wait(timeout=30) is not None  # the other session was ended
        assert processes.read_pid(state / "sshd.pid") is None
    finally:
        other.kill()
        run_module("colab_side", "stop", "--state-dir", str(state))

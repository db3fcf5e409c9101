"""The idle stop end to end: a served runtime that stops itself once nobody uses it (`serve(idle_stop=...)`), and
rdev's Slurm job that ends itself on the real one-node Slurm (tests/slurm_cluster.py) so that its GPU goes back,
unless a session holds it. Checks come every 2 s or less here (RDEV_IDLE_CHECK_SECONDS, for tests only)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap import ticket as tickets
from colab_side import processes, serve
from colab_side.long_runs import idle
from tests.conftest import run_module, snapshot
from tests.e2e.runtime.test_runtime_lifecycle import keypair
from tests.e2e.runtime.test_supervisor import wait_for
from tests.e2e.slurm.test_slurm import OPTIONS, connect, queue
from tests.slurm_cluster import SlurmCluster
from tests.stand_ins.login_host import PasswordHost, login_host

NOTICE = "rdev: no session, run or GPU process for 1 min: ending the job to give the GPU back"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="a private Slurm and a test user need root")


def ssh_to(private: Path, port: int, *args: str) -> subprocess.Popen:
    return subprocess.Popen(["ssh", "-F", "none", "-i", str(private), "-p", str(port), "-o", "BatchMode=yes",
                             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_served_runtime_stops_itself_once_idle_but_not_while_a_connection_is_open(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(idle.CHECK_VARIABLE, "0.2")
    private, key = keypair(home)
    state = home.parent / "server"
    said: list[str] = []
    server = serve(authorized_keys=[key], state_dir=state, keep_alive=False, out=said.append, idle_stop=0.05)  # 3 s
    client = None
    try:
        # A connection without a command (a master connection, a forward) is a session too.
        client = ssh_to(private, tickets.parse(server.ticket).port, "-N", "127.0.0.1")
        time.sleep(8)
        assert not server.state.stopped() and server.sshd.alive(), said
        client.kill()
        client.wait()
        assert wait_for(server.state.stopped, timeout=15)
        assert "rdev: no session, run or GPU process for 0.05 min: stopping the server" in said
        assert wait_for(lambda: not server.sshd.alive()) and processes.read_pid(state / "sshd.pid") is None
    finally:
        if client:
            client.kill()
        server.stop()


def test_what_a_session_left_running_keeps_a_served_runtime(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(idle.CHECK_VARIABLE, "0.2")
    private, key = keypair(home)
    state = home.parent / "server"
    server = serve(authorized_keys=[key], state_dir=state, keep_alive=False, out=lambda _: None, idle_stop=0.05)
    try:
        left = ssh_to(private, tickets.parse(server.ticket).port, "127.0.0.1",
                      "nohup sleep 9.5 >/dev/null 2>&1 </dev/null & echo started")
        assert left.wait(30) == 0
        time.sleep(6)  # the connection is gone; the run it left is not
        assert not server.state.stopped()
        assert wait_for(server.state.stopped, timeout=20)  # 3 s after the run ended
    finally:
        server.stop()


@pytest.mark.parametrize("minutes", ["-1", "1.5", "soon"])
def test_a_bad_idle_stop_for_serve_is_one_sentence_and_exit_2(home: Path, minutes: str) -> None:
    _, key = keypair(home)
    result = run_module("colab_side", "serve", "--authorized-key", key, "--state-dir", str(home.parent / "server"),
                        "--no-keep-alive", f"--idle-stop={minutes}")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("rdev: The idle stop") and result.stderr.count("\n") == 1
    assert not (home.parent / "server").exists()


# -- rdev's Slurm job -----------------------------------------------------------------------------------------------


@pytest.fixture
def login(home: Path, slurm: SlurmCluster) -> Iterator[PasswordHost]:
    """The cluster's login node; what is submitted there checks for idleness every 2 s (sbatch passes the session's
    environment on to the job)."""
    with login_host(home, shell="/bin/bash",
                    setenv={"SLURM_CONF": str(slurm.conf), idle.CHECK_VARIABLE: "2"}) as server:
        try:
            yield server
        finally:
            slurm.run("scancel", f"--user={server.user}", check=False)
            deadline = time.monotonic() + 15
            while queue(slurm, server) and time.monotonic() < deadline:
                time.sleep(0.1)


def add(rdev, login: PasswordHost, *args: str) -> subprocess.CompletedProcess:
    return rdev("add", "hpc", "--host", "127.0.0.1", "--port", str(login.port), "--user", login.user,
                "--slurm", OPTIONS, *args)


def end_master(home: Path) -> None:
    """End the laptop's shared connection to the node, which rdev keeps for 10 minutes after its last use."""
    subprocess.run(["ssh", "-F", str(home / ".ssh" / "config"), "-O", "exit", "hpc"], check=False,
                   capture_output=True, timeout=30)


def gone(slurm: SlurmCluster, login: PasswordHost, timeout: float) -> float | None:
    """Seconds until the user's job left the queue, or None if it was still there after `timeout`."""
    started = time.monotonic()
    while queue(slurm, login):
        if time.monotonic() - started > timeout:
            return None
        time.sleep(1)
    return time.monotonic() - started


@needs_root
def test_a_job_nobody_uses_ends_itself_and_says_why(home: Path, rdev, slurm: SlurmCluster, login: PasswordHost) -> None:
    added = add(rdev, login, "--idle-stop", "1")
    assert added.returncode == 0, added.stderr
    assert "a job ends itself after 1 min without a session, run or GPU process" in added.stdout
    result = connect(rdev)
    assert result.returncode == 0, result.stderr
    assert "and it ends itself after 1 min without a session, run or GPU process." in result.stdout
    [job] = queue(slurm, login)
    end_master(home)
    waited = gone(slurm, login, timeout=100)
    assert waited is not None, "the job was still there 100 s after its last session ended"
    assert waited > 50, f"the job ended {waited:.0f} s after its last session, before its idle minute"
    log = (login.home / ".rdev" / "slurm" / f"hpc-{job}.log").read_text()
    assert NOTICE in log, log
    assert wait_for(lambda: slurm.job_processes(job) == [], timeout=20)


@needs_root
def test_a_job_with_an_open_session_does_not_end(home: Path, rdev, slurm: SlurmCluster, login: PasswordHost) -> None:
    assert add(rdev, login).returncode == 0  # the default, 60 min ...
    assert connect(rdev).returncode == 0
    [job] = queue(slurm, login)
    # ... and a later connect's minutes reach the running job.
    again = connect(rdev, "--idle-stop", "1")
    assert again.returncode == 0, again.stderr
    assert "submitted" not in again.stdout and queue(slurm, login) == [job]
    assert (login.home / ".rdev" / "slurm" / f"hpc-{job}" / idle.SETTING).read_text() == "1\n"
    end_master(home)
    session = subprocess.Popen(["ssh", "-F", str(home / ".ssh" / "config"), "-o", "BatchMode=yes", "hpc", "sleep 120"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(90)  # past the idle minute, and a few checks beyond it
        assert session.poll() is None, session.stderr.read() if session.stderr else ""
        assert queue(slurm, login) == [job]
        assert NOTICE not in (login.home / ".rdev" / "slurm" / f"hpc-{job}.log").read_text()
    finally:
        session.kill()
        session.wait()


@needs_root
@pytest.mark.parametrize("minutes", ["-1", "1.5", "never"])
def test_a_bad_idle_stop_is_one_sentence_and_exit_2(home: Path, rdev, login: PasswordHost, minutes: str) -> None:
    result = add(rdev, login, "--idle-stop", minutes)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("rdev: ") and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "--idle-stop" in result.stderr or "idle stop" in result.stderr
    assert snapshot(home) == {}
    assert add(rdev, login).returncode == 0
    before = snapshot(home)
    again = rdev("connect", "hpc", "--no-open", "--idle-stop", minutes)
    assert again.returncode == 2 and again.stderr.count("\n") == 1, again.stderr
    assert snapshot(home) == before

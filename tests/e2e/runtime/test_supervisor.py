"""Faults: the supervisor brings back a killed tunnel (with a new ticket) and a killed sshd."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from colab_side import processes, serve, stop
from tests.conftest import run_module, ssh_through


def wait_for(condition: Callable[[], bool], timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def ssh(home: Path, name: str) -> subprocess.CompletedProcess:
    # No shared connection: each check must reach the (new) server itself.
    return ssh_through(home, "-o", "ControlPath=none", name, "echo alive")


def test_killed_tunnel_and_sshd_come_back(home: Path, rdev, cloudflared_standin: Path) -> None:
    key = rdev("key").stdout.strip()
    state = home.parent / "server"
    ticket_file = home.parent / "drive" / "ticket"
    ticket_file.parent.mkdir()
    said: list[str] = []
    server = serve(tunnel="cloudflared", authorized_keys=[key], state_dir=state, ticket_file=ticket_file,
                   cloudflared=str(cloudflared_standin), keep_alive=False, out=said.append)
    try:
        first = server.ticket
        assert rdev("connect", "colab", "--ticket", first, "--no-open", "--cloudflared", str(cloudflared_standin)).returncode == 0

        os.kill(processes.read_pid(state / "tunnel.pid"), signal.SIGKILL)
        assert wait_for(lambda: ticket_file.read_text().strip() != first), said
        second = ticket_file.read_text().strip()
        # The restart publishes the new ticket; the supervisor says "restarted" once the restart returns.
        assert wait_for(lambda: "tunnel died and was restarted." in said), said
        assert second in said
        assert rdev("connect", "colab", "--ticket", second, "--no-open", "--cloudflared", str(cloudflared_standin)).returncode == 0
        assert ssh(home, "colab").stdout.strip() == "alive"

        old_sshd = processes.read_pid(state / "sshd.pid")
        os.kill(old_sshd, signal.SIGKILL)
        assert wait_for(lambda: processes.read_pid(state / "sshd.pid") not in (None, old_sshd) and server.sshd.alive())
        assert ssh(home, "colab").stdout.strip() == "alive"
        assert ticket_file.read_text().strip() == second, "sshd's restart must not change the ticket"
    finally:
        server.stop()
    assert not processes.alive(processes.read_pid(state / "sshd.pid") or 0)


def test_stop_from_another_process_is_not_undone(home: Path, rdev) -> None:
    key = rdev("key").stdout.strip()
    state = home.parent / "server"
    server = serve(authorized_keys=[key], state_dir=state, keep_alive=False, out=lambda _: None)
    try:
        assert run_module("colab_side", "stop", "--state-dir", str(state)).returncode == 0
        time.sleep(2)  # several supervisor rounds
        assert not server.sshd.alive()
    finally:
        stop(state)

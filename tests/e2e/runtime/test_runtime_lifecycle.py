"""A server's life after its start: a restarted tunnel's ticket is recognisably newer, serving again in
one process replaces the earlier server wholly, and `stop` ends sessions older than the listener."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from bootstrap import ticket as tickets
from colab_side import processes, serve, stop
from tests.conftest import read_or_empty, run_module
from tests.e2e.runtime.test_supervisor import wait_for


def running(marker: str) -> list[int]:
    """Processes (not zombies) whose command line holds `marker`."""
    return [int(p.parent.name) for p in Path("/proc").glob("[0-9]*/cmdline")
            if marker.encode() in read_or_empty(p) and processes.alive(int(p.parent.name))]


def sleeping(seconds: str) -> list[int]:
    """The processes running exactly `sleep SECONDS` (the client's command line holds the same words)."""
    wanted = f"sleep\0{seconds}\0".encode()
    return [int(p.parent.name) for p in Path("/proc").glob("[0-9]*/cmdline")
            if read_or_empty(p) == wanted and processes.alive(int(p.parent.name))]


def supervisor_threads() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == "rdev-supervisor" and thread.is_alive())


def keypair(home: Path) -> tuple[Path, str]:
    """A client key of the test's own, so these tests need nothing from the laptop side."""
    private = home.parent / "id_test"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(private)], check=True)
    return private, Path(f"{private}.pub").read_text().strip()


def started(ticket: str) -> datetime:
    return datetime.fromisoformat(tickets.parse(ticket).started.replace("Z", "+00:00"))


def test_restarted_tunnel_publishes_a_later_ticket(home: Path, cloudflared_standin: Path) -> None:
    _, key = keypair(home)
    state = home.parent / "server"
    server = serve(tunnel="cloudflared", authorized_keys=[key], state_dir=state, cloudflared=str(cloudflared_standin),
                   keep_alive=False, out=lambda _: None)
    try:
        first = server.ticket
        # Tickets name whole seconds: let one pass, so "later" is visible in the new ticket.
        assert wait_for(lambda: datetime.now(timezone.utc).replace(microsecond=0) > started(first))
        os.kill(processes.read_pid(state / "tunnel.pid"), signal.SIGKILL)
        assert wait_for(lambda: (state / "ticket").read_text().strip() != first)
        second = (state / "ticket").read_text().strip()
        assert started(second) > started(first)
        assert tickets.parse(second).expires == tickets.parse(first).expires
    finally:
        server.stop()


def test_a_ticket_published_within_the_same_second_is_still_later(home: Path) -> None:
    _, key = keypair(home)
    server = serve(authorized_keys=[key], state_dir=home.parent / "server", keep_alive=False, out=lambda _: None)
    try:
        first = server.ticket
        second = server.publish(server.endpoint)
        assert started(second) > started(first)
    finally:
        server.stop()


def test_quick_serves_in_one_process_leave_one_server(home: Path, cloudflared_standin: Path) -> None:
    _, key = keypair(home)
    state = home.parent / "server"
    try:
        for _ in range(6):
            server = serve(tunnel="cloudflared", authorized_keys=[key], state_dir=state,
                           cloudflared=str(cloudflared_standin), keep_alive=False, out=lambda _: None)
        time.sleep(3)  # several supervisor rounds, in which an earlier supervisor would restart its parts
        assert len(running(str(state / "sshd_config"))) == 1
        assert len(running(f"{cloudflared_standin.name}.py\0tunnel")) == 1
        assert supervisor_threads() == 1
        assert len(list((home.parent / "edge").glob("*.trycloudflare.com"))) == 1
        assert server.sshd.alive() and server.tunnel.alive()
    finally:
        stop(state)
    assert wait_for(lambda: supervisor_threads() == 0)
    assert running(str(state)) == []


def test_stop_ends_a_session_older_than_the_listener(home: Path) -> None:
    private, key = keypair(home)
    state = home.parent / "server"
    server = serve(authorized_keys=[key], state_dir=state, keep_alive=False, out=lambda _: None)
    client = None
    try:
        port = tickets.parse(server.ticket).port
        marker = f"299.{uuid.uuid4().int % 10**6}"
        client = subprocess.Popen(["ssh", "-F", "none", "-i", str(private), "-p", str(port), "-o", "BatchMode=yes",
                                   "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                                   "127.0.0.1", f"exec sleep {marker}"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(lambda: len(sleeping(marker)) == 1)
        session = sleeping(marker)[0]

        listener = processes.read_pid(state / "sshd.pid")
        os.kill(listener, signal.SIGKILL)
        assert wait_for(lambda: processes.read_pid(state / "sshd.pid") not in (None, listener) and server.sshd.alive())
        assert processes.alive(session) and client.poll() is None

        assert run_module("colab_side", "stop", "--state-dir", str(state)).returncode == 0
        assert not processes.alive(session)
        assert client.wait(timeout=30) is not None
    finally:
        if client:
            client.kill()
        server.stop()


def test_a_ticket_file_that_cannot_be_written_is_tried_again(home: Path, cloudflared_standin: Path) -> None:
    """After a tunnel restart the ticket file cannot be written for a while (a Drive folder that is not
    mounted; here a folder stands in the file's place): the supervisor keeps trying, and the new ticket
    lands there once it can. The path is made absolute at serve time, so a later chdir does not move it."""
    _, key = keypair(home)
    state = home.parent / "server"
    (home.parent / "drive").mkdir()
    os.chdir(home.parent)
    said: list[str] = []
    server = serve(tunnel="cloudflared", authorized_keys=[key], state_dir=state, cloudflared=str(cloudflared_standin),
                   ticket_file="drive/ticket", keep_alive=False, out=said.append)
    ticket_file = home.parent / "drive" / "ticket"
    try:
        os.chdir("/")
        first = server.ticket
        ticket_file.unlink()
        ticket_file.mkdir()
        os.kill(processes.read_pid(state / "tunnel.pid"), signal.SIGKILL)
        assert wait_for(lambda: (state / "ticket").read_text().strip() != first)
        assert wait_for(lambda: any("Could not write the ticket" in line for line in said))
        ticket_file.rmdir()
        assert wait_for(lambda: ticket_file.is_file() and ticket_file.read_text().strip() == server.ticket)
        assert server.ticket != first
    finally:
        server.stop()

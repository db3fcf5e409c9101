"""The runtime side's own behaviour: keep-alive that an interrupt ends without stopping the server,
a ticket file, and password login when a password is given."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bootstrap import ticket as tickets
from colab_side import processes
from tests.conftest import REPO, popen_answering_ctrl_c, run_module
from tests.e2e.runtime.test_runtime_lifecycle import keypair, running
from tests.e2e.runtime.test_supervisor import wait_for


def test_interrupt_ends_keep_alive_but_not_the_server(home: Path, rdev) -> None:
    key = rdev("key").stdout.strip()
    state = home.parent / "server"
    ticket_file = home.parent / "drive" / "ticket.txt"
    ticket_file.parent.mkdir()
    serving = popen_answering_ctrl_c([sys.executable, "-m", "colab_side", "serve", "--authorized-key", key, "--state-dir", str(state),
                                "--ticket-file", str(ticket_file)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        while not line.startswith("rdev1."):
            line = serving.stdout.readline()
            assert line, serving.stderr.read()
        assert ticket_file.read_text().strip() == line.strip()
        assert serving.poll() is None, "serve must stay in the foreground to keep the runtime busy"
        serving.send_signal(signal.SIGINT)
        out, err = serving.communicate(timeout=30)
        assert serving.returncode == 0, err
        assert "the server goes on" in out
        assert rdev("connect", "box", "--ticket", line.strip(), "--no-open").returncode == 0
    finally:
        serving.kill()
        run_module("colab_side", "stop", "--state-dir", str(state))
    assert processes.read_pid(state / "sshd.pid") is None


def test_second_serve_replaces_the_first(home: Path, server) -> None:
    server()
    first = processes.read_pid(home.parent / "server" / "sshd.pid")
    server()
    second = processes.read_pid(home.parent / "server" / "sshd.pid")
    assert first != second and not processes.alive(first) and processes.alive(second)


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a test user needs root")
def test_password_login_when_a_password_is_given(home: Path) -> None:
    import paramiko

    from colab_side import serve, stop

    user = f"rdtpw{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--create-home", user], check=True)
    state = home.parent / "pwserver"
    try:
        server = serve(user=user, password="s3cret pass", state_dir=state, keep_alive=False, out=lambda _: None)
        ticket = tickets.parse(server.ticket)
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect("127.0.0.1", port=ticket.port, username=user, password="s3cret pass",
                       allow_agent=False, look_for_keys=False, timeout=10)
        _, stdout, _ = client.exec_command("whoami")
        assert stdout.read().decode().strip() == user
        client.close()
        assert "s3cret" not in "".join(p.read_text(errors="replace") for p in state.rglob("*") if p.is_file())
    finally:
        stop(state)
        subprocess.run(["userdel", "--remove", user], check=False, capture_output=True)


@pytest.mark.parametrize("key", [
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----",
    "/home/me/.ssh/id_ed25519.pub",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJTdnlNi8B altered",
])
def test_authorized_key_that_is_not_a_public_key_is_refused(home: Path, key: str) -> None:
    result = run_module("colab_side", "serve", "--authorized-key", key, "--state-dir", str(home.parent / "server"),
                        "--no-keep-alive")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "rdev key" in result.stderr
    assert "b3BlbnNzaC1rZXktdjEA" not in result.stderr
    assert not (home.parent / "server").exists()


def serve_command(state: Path, key: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "colab_side", "serve", "--authorized-key", key, "--state-dir", str(state), *args]


def test_interrupt_hands_supervision_to_a_background_process(home: Path, cloudflared_standin: Path) -> None:
    _, key = keypair(home)
    state = home.parent / "server"
    serving = popen_answering_ctrl_c(serve_command(state, key, "--tunnel", "cloudflared", "--cloudflared", str(cloudflared_standin)),
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line, before = "", ""
        while not line.startswith("rdev1."):
            before += line
            line = serving.stdout.readline()
            assert line, serving.stderr.read()
        assert "cloudflared binary" in before
        serving.send_signal(signal.SIGINT)
        out, err = serving.communicate(timeout=30)
        assert serving.returncode == 0, err
        assert "the server goes on" in out and "background" in out and "python -m colab_side stop" in out

        # The command has exited; the supervision it handed over still brings a killed tunnel back.
        os.kill(processes.read_pid(state / "tunnel.pid"), signal.SIGKILL)
        assert wait_for(lambda: (state / "ticket").read_text().strip() != line.strip())
        new_host = tickets.parse((state / "ticket").read_text()).host
        assert (home.parent / "edge" / new_host).exists(), "the stand-in records each tunnel it keeps open"

        assert run_module("colab_side", "stop", "--state-dir", str(state)).returncode == 0
        assert running(str(state)) == [], "stop must end the background supervisor too"
    finally:
        serving.kill()
        run_module("colab_side", "stop", "--state-dir", str(state))


def test_no_keep_alive_returns_and_the_server_stays_supervised(home: Path) -> None:
    _, key = keypair(home)
    state = home.parent / "server"
    try:
        # capture_output: the background supervisor must not hold the caller's pipes open.
        result = subprocess.run(serve_command(state, key, "--no-keep-alive"), check=False, cwd=REPO, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr
        assert "background" in result.stdout and "direct binary" not in result.stdout
        listener = processes.read_pid(state / "sshd.pid")
        os.kill(listener, signal.SIGKILL)
        assert wait_for(lambda: processes.read_pid(state / "sshd.pid") not in (None, listener)
                        and processes.alive(processes.read_pid(state / "sshd.pid") or 0))
    finally:
        assert run_module("colab_side", "stop", "--state-dir", str(state)).returncode == 0
    assert running(str(state)) == []


def test_port_answered_by_another_ssh_server_is_refused(home: Path) -> None:
    _, key = keypair(home)
    other, state = home.parent / "other", home.parent / "server"
    try:
        first = run_module(*serve_command(other, key, "--no-keep-alive")[2:])
        assert first.returncode == 0, first.stderr
        port = tickets.parse(next(x for x in first.stdout.splitlines() if x.startswith("rdev1."))).port
        result = run_module(*serve_command(state, key, "--port", str(port), "--no-keep-alive")[2:])
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
        assert str(port) in result.stderr and "--port" in result.stderr
        assert "rdev1." not in result.stdout
        assert running(str(state)) == [] and processes.read_pid(state / "sshd.pid") is None
    finally:
        run_module("colab_side", "stop", "--state-dir", str(other))
        run_module("colab_side", "stop", "--state-dir", str(state))

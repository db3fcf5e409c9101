"""ngrok end to end: the runtime serves through the stand-in agent (its log lines and local API, read
the way pyngrok reads them); the laptop's ssh goes straight to the host and port ngrok handed out."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from bootstrap import ticket as tickets
from colab_side import processes, serve
from tests.conftest import read_or_empty, run_module, ssh_through
from tests.e2e.runtime.test_supervisor import ssh, wait_for

TOKEN = "tok-2SECRETngrok9"


def serve_ngrok(home: Path, ngrok: Path, token: str | None) -> tuple[int, str, str]:
    key = run_module("client_side", "key").stdout.strip()
    env = {k: v for k, v in os.environ.items() if k != "NGROK_AUTHTOKEN"}
    if token:
        env["NGROK_AUTHTOKEN"] = token
    result = run_module("colab_side", "serve", "--tunnel", "ngrok", "--ngrok", str(ngrok), "--authorized-key", key,
                        "--state-dir", str(home.parent / "server"), "--no-keep-alive", env=env)
    return result.returncode, result.stdout, result.stderr


def state_files(home: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in (home.parent / "server").rglob("*") if p.is_file()}


def test_ngrok_end_to_end(home: Path, rdev, ngrok_standin: Path) -> None:
    try:
        code, out, err = serve_ngrok(home, ngrok_standin, TOKEN)
        assert code == 0, err
        line = next(ln for ln in out.splitlines() if ln.startswith("rdev1."))
        ticket = tickets.parse(line)
        assert (ticket.tunnel, ticket.host) == ("ngrok", "127.0.0.1")
        assert rdev("connect", "colab", "--ticket", line, "--no-open").returncode == 0
        shown = ssh_through(home, "-G", "colab").stdout.splitlines()
        assert f"port {ticket.port}" in shown and "hostname 127.0.0.1" in shown
        assert not any(option.startswith("proxycommand") for option in shown)
        assert ssh_through(home, "colab", "echo through ngrok").stdout.strip() == "through ngrok"

        # The token: in the agent's environment only; in no argv, no other environment, no file, no output.
        agent = processes.read_pid(home.parent / "server" / "tunnel.pid")
        assert f"NGROK_AUTHTOKEN={TOKEN}".encode() in Path(f"/proc/{agent}/environ").read_bytes()
        assert b"--authtoken" not in Path(f"/proc/{agent}/cmdline").read_bytes()
        assert not any(TOKEN.encode() in read_or_empty(p) for p in Path("/proc").glob("[0-9]*/cmdline"))
        sshd = processes.read_pid(home.parent / "server" / "sshd.pid")
        assert TOKEN.encode() not in Path(f"/proc/{sshd}/environ").read_bytes()
        assert not [p for p, data in state_files(home).items() if TOKEN.encode() in data]
        assert TOKEN not in out + err
        assert TOKEN not in ssh_through(home, "colab", "env").stdout
    finally:
        run_module("colab_side", "stop", "--state-dir", str(home.parent / "server"))
    assert not processes.alive(agent)


def test_no_token_is_one_sentence_before_anything_starts(home: Path, ngrok_standin: Path) -> None:
    code, _, err = serve_ngrok(home, ngrok_standin, None)
    assert code == 2 and err.count("\n") == 1 and "NGROK_AUTHTOKEN" in err and "Traceback" not in err
    assert not (home.parent / "server" / "sshd.pid").exists()


def test_rejected_token_never_shows(home: Path, ngrok_standin: Path) -> None:
    # The stand-in repeats a malformed token in its error, as ngrok's ERR_NGROK_105/106 do.
    token = "malformed-SECRET77"
    code, out, err = serve_ngrok(home, ngrok_standin, token)
    assert code == 1 and "not a token" in err and err.count("\n") == 1
    assert token not in out + err
    assert not [p for p, data in state_files(home).items() if token.encode() in data]
    assert "[your token]" in (home.parent / "server" / "tunnel.log").read_text()
    assert not (home.parent / "server" / "tunnel.pid").exists() and not (home.parent / "server" / "sshd.pid").exists()


def test_free_plan_without_card_is_explained_and_nothing_runs(home: Path, ngrok_standin: Path) -> None:
    code, _, err = serve_ngrok(home, ngrok_standin, "nocard-SECRET5")
    assert code == 1 and "card" in err and "--tunnel cloudflared" in err and err.count("\n") == 1
    assert not any(b"stand_ins/ngrok.py" in read_or_empty(p) and str(home.parent).encode() in read_or_empty(p)
                   for p in Path("/proc").glob("[0-9]*/cmdline"))


def test_killed_agent_comes_back_with_a_new_ticket(home: Path, rdev, ngrok_standin: Path, monkeypatch) -> None:
    monkeypatch.setenv("NGROK_AUTHTOKEN", TOKEN)
    key = rdev("key").stdout.strip()
    state = home.parent / "server"
    said: list[str] = []
    server = serve(tunnel="ngrok", authorized_keys=[key], state_dir=state, ngrok=str(ngrok_standin),
                   keep_alive=False, out=said.append)
    try:
        first = server.ticket
        os.kill(processes.read_pid(state / "tunnel.pid"), signal.SIGKILL)
        assert wait_for(lambda: server.ticket != first), said
        # The new ticket is published by the restart, and the supervisor says "restarted" once that returns.
        assert wait_for(lambda: "tunnel died and was restarted." in said), said
        assert server.ticket in said
        assert tickets.parse(server.ticket).port != tickets.parse(first).port
        assert rdev("connect", "colab", "--ticket", server.ticket, "--no-open").returncode == 0
        assert ssh(home, "colab").stdout.strip() == "alive"
    finally:
        server.stop()
    assert not processes.alive(processes.read_pid(state / "tunnel.pid") or 0)

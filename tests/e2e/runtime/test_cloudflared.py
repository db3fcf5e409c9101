"""cloudflared end to end: the runtime serves through the stand-in's quick tunnel, the laptop's
ssh goes through `ProxyCommand <cloudflared> access ssh --hostname %h` to the real sshd."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bootstrap import ticket as tickets
from colab_side import processes
from tests.conftest import read_or_empty, run_module, ssh_through


def test_quick_tunnel_end_to_end(home: Path, rdev, server, cloudflared_standin: Path) -> None:
    ticket_line = server("--tunnel", "cloudflared", "--cloudflared", str(cloudflared_standin))
    ticket = tickets.parse(ticket_line)
    assert ticket.tunnel == "cloudflared" and ticket.host.endswith(".trycloudflare.com")

    # The laptop's copy sits in a folder with a space, which the ProxyCommand must quote.
    laptop = home.parent / "my tools" / "cloudflared"
    laptop.parent.mkdir()
    shutil.copy(cloudflared_standin, laptop)
    result = rdev("connect", "colab", "--ticket", ticket_line, "--no-open", "--cloudflared", str(laptop))
    assert result.returncode == 0, result.stderr
    shown = ssh_through(home, "-G", "colab").stdout.splitlines()
    assert f'proxycommand "{laptop}" access ssh --hostname %h' in shown
    assert f"hostname {ticket.host}" in shown
    assert ssh_through(home, "colab", "echo through the tunnel").stdout.strip() == "through the tunnel"


def test_cloudflared_from_environment_variable(home: Path, rdev, server, cloudflared_standin: Path,
                                               monkeypatch) -> None:
    monkeypatch.setenv("RDEV_CLOUDFLARED", str(cloudflared_standin))
    ticket_line = server("--tunnel", "cloudflared")
    assert rdev("connect", "colab", "--ticket", ticket_line, "--no-open").returncode == 0
    assert ssh_through(home, "colab", "true").returncode == 0


def test_stop_ends_the_tunnel_too(home: Path, server, cloudflared_standin: Path) -> None:
    server("--tunnel", "cloudflared", "--cloudflared", str(cloudflared_standin))
    state = home.parent / "server"
    pid = processes.read_pid(state / "tunnel.pid")
    assert run_module("colab_side", "stop", "--state-dir", str(state)).returncode == 0
    assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    assert not list((home.parent / "edge").iterdir()), "the stand-in's tunnel record outlived it"


def test_named_tunnel_token_stays_out_of_argv(home: Path, rdev, server, cloudflared_standin: Path, monkeypatch) -> None:
    monkeypatch.setenv("RDEV_STANDIN_HOSTNAME", "ssh.lab.example.org")
    env = {**os.environ, "TUNNEL_TOKEN": "tok-SECRET-123", "NOTE": "from-serve"}
    line = server("--tunnel", "cloudflared", "--cloudflared", str(cloudflared_standin), "--hostname",
                  "ssh.lab.example.org", env=env)
    assert tickets.parse(line).host == "ssh.lab.example.org"
    argvs = [argv for p in Path("/proc").glob("[0-9]*/cmdline") if (argv := read_or_empty(p))]
    assert any(b"tunnel\0--no-autoupdate" in argv for argv in argvs)
    assert not any(b"tok-SECRET-123" in argv for argv in argvs)
    # A session's environment, not sshd's /proc/PID/environ, which sshd overwrites when it retitles itself.
    connected = rdev("connect", "colab", "--ticket", line, "--no-open", "--cloudflared", str(cloudflared_standin))
    assert connected.returncode == 0, connected.stderr
    session = ssh_through(home, "colab", "env")
    assert session.returncode == 0, session.stderr
    assert "NOTE=from-serve" in session.stdout.splitlines()  # serve's environment does reach it
    assert "tok-SECRET-123" not in session.stdout
    state = home.parent / "server"
    for path in state.rglob("*"):
        if path.is_file():
            assert b"tok-SECRET-123" not in path.read_bytes(), path


def test_missing_binary_is_one_sentence(home: Path, rdev) -> None:
    key = rdev("key").stdout.strip()
    result = run_module("colab_side", "serve", "--tunnel", "cloudflared", "--cloudflared", "/nonexistent/cloudflared",
                        "--authorized-key", key, "--state-dir", str(home.parent / "server"), "--no-keep-alive")
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "not an executable" in result.stderr


def test_a_remembered_cloudflared_is_used_on_the_next_connect(home: Path, rdev, server, cloudflared_standin: Path) -> None:
    """--cloudflared is remembered for the host: a later connect (a new ticket, no --cloudflared, none on
    PATH) uses it instead of trying a download."""
    laptop = home.parent / "tools" / "cloudflared"
    laptop.parent.mkdir()
    shutil.copy(cloudflared_standin, laptop)
    first = server("--tunnel", "cloudflared", "--cloudflared", str(cloudflared_standin))
    assert rdev("connect", "colab", "--ticket", first, "--no-open", "--cloudflared", str(laptop)).returncode == 0
    run_module("colab_side", "stop", "--state-dir", str(home.parent / "server"))
    second = server("--tunnel", "cloudflared", "--cloudflared", str(cloudflared_standin))
    bare = {k: v for k, v in os.environ.items() if k != "RDEV_CLOUDFLARED"} | {"PATH": "/usr/bin:/bin"}
    result = rdev("connect", "colab", "--ticket", second, "--no-open", env=bare)
    assert result.returncode == 0, result.stderr
    assert f"proxycommand {laptop} access ssh --hostname %h" in ssh_through(home, "-G", "colab").stdout.splitlines()

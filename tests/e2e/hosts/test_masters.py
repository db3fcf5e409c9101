"""Master connections end to end: one per rdev host, never cut by another host's connect or remove,
closed (with its ProxyCommand) when its host moves, and no race among concurrent connects."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from bootstrap import ticket as tickets
from tests.conftest import read_or_empty, run_module, ssh_through


def master_alive(home: Path, name: str) -> bool:
    return ssh_through(home, "-O", "check", name).returncode == 0


def processes_with(*parts: bytes) -> list[int]:
    """The pids whose command line holds every one of `parts`."""
    return [int(p.parent.name) for p in Path("/proc").glob("[0-9]*/cmdline")
            if (argv := read_or_empty(p)) and all(part in argv for part in parts)]


@contextmanager
def live_session(home: Path, name: str) -> Iterator[subprocess.Popen]:
    """An ssh session to `name` through rdev's config, running until the block ends."""
    session = subprocess.Popen(["ssh", "-F", str(home / ".ssh" / "config"), name, "echo started; sleep 60"],
                               stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert session.stdout.readline().strip() == "started"
        yield session
    finally:
        session.kill()
        session.wait()


def test_two_names_on_one_endpoint_keep_their_own_session(home: Path, rdev, server) -> None:
    ticket = server()
    assert rdev("connect", "a", "--ticket", ticket, "--no-open").returncode == 0
    with live_session(home, "a") as session:
        assert rdev("connect", "b", "--ticket", ticket, "--no-open").returncode == 0
        assert rdev("remove", "b").returncode == 0
        assert session.poll() is None, "a's live session was cut by b's connect or remove"
        assert master_alive(home, "a")
        assert ssh_through(home, "a", "echo still here").stdout.strip() == "still here"


def test_reconnecting_the_same_ticket_keeps_the_live_session(home: Path, rdev, server) -> None:
    ticket = server()
    assert rdev("connect", "box", "--ticket", ticket, "--no-open").returncode == 0
    with live_session(home, "box") as session:
        assert rdev("connect", "box", "--ticket", ticket, "--no-open").returncode == 0
        assert session.poll() is None


def test_ten_concurrent_connects_to_one_runtime_all_succeed(home: Path, rdev, server) -> None:
    ticket = server()

    def connect(name: str) -> subprocess.CompletedProcess:
        return rdev("connect", name, "--ticket", ticket, "--no-open")

    for names in (["box"] * 10, [f"box{i}" for i in range(10)]):
        with ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(connect, names))
        assert [r.returncode for r in results] == [0] * 10, [r.stderr for r in results if r.returncode]
        for name in set(names):
            assert ssh_through(home, name, "true").returncode == 0


def test_a_moved_host_loses_its_old_master_and_proxy(home: Path, rdev, server, cloudflared_standin: Path) -> None:
    """A restarted quick tunnel has a new address: before the config is rewritten, the master to the old
    one and its `cloudflared access` process end (they would otherwise live on for ControlPersist)."""
    state = home.parent / "server"
    first = server("--tunnel", "cloudflared", "--cloudflared", str(cloudflared_standin))
    connect = ("--no-open", "--cloudflared", str(cloudflared_standin))
    assert rdev("connect", "colab", "--ticket", first, *connect).returncode == 0
    old_host = tickets.parse(first).host.encode()
    assert master_alive(home, "colab") and processes_with(b"access", old_host)
    for _ in range(3):
        run_module("colab_side", "stop", "--state-dir", str(state))
        again = server("--tunnel", "cloudflared", "--cloudflared", str(cloudflared_standin))
        assert tickets.parse(again).host.encode() != old_host
        assert rdev("connect", "colab", "--ticket", again, *connect).returncode == 0
        deadline = time.monotonic() + 10
        while processes_with(b"access", old_host) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not processes_with(b"access", old_host), "the old endpoint's cloudflared access process lives on"
        old_host = tickets.parse(again).host.encode()
    assert len(processes_with(str(home / ".ssh" / "rdev" / "cm" / "colab").encode(), b"[mux]")) == 1
    assert len(processes_with(b"access", b"--hostname")) == 1

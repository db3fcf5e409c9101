"""`rdev stop` of a Colab host against its ProxyCommand guards (the real guard, in front of a stand-in CLI):
from before the stop closes the master connection, guards refuse, and no CLI that one let through earlier is
left when the CLI's own stop removes the session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from client_side.commands import jupyter, stop as stopping
from client_side.errors import RdevError
from client_side.kinds import colab_host
from client_side.local import locking, registry
from client_side.local.registry import HostEntry
from client_side.ssh import probe
from tests.conftest import REPO

HOSTS = {name: HostEntry(name=name, host="colab-runtime", port=22, user="root", tunnel="colab-cli", colab_session=session)
         for name, session in (("a", "s1"), ("b", "s1"), ("c", "s2"))}


@pytest.fixture
def hosts(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Hosts a and b on Colab session s1, c on s2; the CLI's session file; a stand-in CLI that bridges
    (reads its stdin) until the connection ends, as the real one does."""
    monkeypatch.setattr(registry, "load", lambda: dict(HOSTS))
    monkeypatch.setattr(registry, "get", HOSTS.__getitem__)
    monkeypatch.setattr(jupyter, "end_with_host", lambda name: None)
    folder = home / ".config" / "colab-cli"
    folder.mkdir(parents=True)
    soon = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    (folder / "sessions.json").write_text(json.dumps({s: {"name": s, "token": "t", "url": "u", "endpoint": "ep-1",
                                                          "token_expires_at": soon} for s in ("s1", "s2")}))
    colab = home.parent / "colab"
    colab.write_text(f"#!{sys.executable}\nimport sys\nprint('bridging', flush=True)\nsys.stdin.read()\n")
    colab.chmod(0o755)
    return colab


def guard(colab: Path, name: str) -> subprocess.Popen:
    """Host `name`'s ProxyCommand: the real guard, which becomes `colab` if it lets the connection through."""
    session = HOSTS[name].colab_session or ""
    return subprocess.Popen([sys.executable, "-I", "-m", "client_side.colab_proxy", name, "ep-1", "--", str(colab), "ssh",
                             "--proxy-mode", "-s", session, "-i", "/k/id_ed25519"], cwd=REPO, env=os.environ.copy(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def let_through(colab: Path, name: str) -> subprocess.Popen:
    """A connection to `name` that its guard let through: the stand-in CLI, bridging."""
    cli = guard(colab, name)
    assert cli.stdout.readline() == b"bridging\n", cli.stderr.read()
    return cli


def test_guards_are_refused_and_earlier_clis_ended_before_the_session_is_removed(
        hosts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cli = let_through(hosts, "b")  # the editor's connection to b, on the same session as a
    closed: list[str] = []

    def close_master(name: str) -> None:  # ending a master connection ends its ProxyCommand, the CLI
        closed.append(name)
        if name == "b" and not cli.stdin.closed:
            cli.stdin.close()

    seen: dict[str, object] = {}

    def the_clis_stop(entry: HostEntry, say: Callable[[str], None]) -> None:
        seen["closed"] = list(closed)
        refused = guard(hosts, "a")  # the editor reconnecting to a while the session is being ended
        seen["refused"] = refused.communicate(timeout=30)[1].decode()
        seen["returncode"] = refused.returncode

    monkeypatch.setattr(probe, "close_master", close_master)
    monkeypatch.setattr(colab_host, "stop", the_clis_stop)
    stopping.stop("a", print)
    assert "b" in seen["closed"] and "c" not in closed  # every host on s1, not those on s2
    assert seen["returncode"] == 1
    assert seen["refused"] == ("rdev: 'rdev stop' is ending Colab session s1, so rdev does not connect a to it: once "
                               "the stop has finished, 'rdev connect a' starts a new runtime.\n")
    assert cli.wait(10) == 0


def test_a_cli_that_does_not_end_stops_the_stop_with_a_sentence(hosts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cli = let_through(hosts, "b")  # say, an ssh to b started with -S none: no master to close
    monkeypatch.setattr(locking, "COLAB_DRAIN_TIMEOUT", 1.5)
    monkeypatch.setattr(probe, "close_master", lambda name: None)
    monkeypatch.setattr(colab_host, "stop", lambda entry, say: pytest.fail("the session was removed"))
    try:
        with pytest.raises(RdevError) as caught:
            stopping.stop("a", print)
        assert str(caught.value) == ("A connection to Colab session s1 through Google's colab CLI did not end: close it "
                                     "(an ssh that does not share its host's master connection, e.g. one with -S none) "
                                     "and run again; 'colab stop -s s1' ends the runtime regardless.")
    finally:
        cli.stdin.close()
        cli.wait(10)


def test_a_stop_waits_for_a_guard_that_is_still_checking(hosts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A guard renewing the session's token holds its check open; the stop may not close anything meanwhile.
    code = ("import time\nfrom client_side.local import locking\nassert locking.enter_colab_session('s1')\n"
            "print('checking', flush=True)\ntime.sleep(1)\n")
    checking = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=os.environ.copy(), stdout=subprocess.PIPE,
                                text=True)
    assert checking.stdout.readline() == "checking\n"
    started = time.monotonic()
    closing: list[float] = []
    monkeypatch.setattr(probe, "close_master", lambda name: closing.append(time.monotonic() - started))
    monkeypatch.setattr(colab_host, "stop", lambda entry, say: closing.append(time.monotonic() - started))
    stopping.stop("a", print)
    assert checking.wait(10) == 0
    assert closing and min(closing) > 0.7

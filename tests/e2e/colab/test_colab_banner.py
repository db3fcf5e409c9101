"""Google's colab CLI prints its update banner on STDOUT, which in `--proxy-mode` is the SSH stream, before it
bridges (docs/google-colab-cli.md §2): on every start while its settings cache a newer `latest_version` than the
installed one and the daily check is not due. rdev's route must survive that: OpenSSH takes lines before the
server's identification as a pre-banner and goes on.

Google's real CLI (.venv-colab) against the stand-in runtime proxy and a real sshd, as in test_colab_cli.py. The
banner comes from the CLI's cache alone (`auto_update.maybe_show_cached_banner`), never from the network: the
update URL is a loopback address that counts every connection, and must count none.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import ssh_through
from tests.stand_ins.colab_runtime import SESSION, ColabProxy, Runtime, cli_env, colab_binary

# Colab's user is root; the stand-in runtime's sshd serves the user the tests run as.
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="Colab runtimes log in as root")

NEWER = "99.0.0"


class Tripwire:
    """A loopback TCP address that only counts the connections made to it."""

    def __init__(self) -> None:
        self.connections = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}/pypi/google-colab-cli/json"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._server.close()
        self._thread.join(5)


@pytest.fixture
def tripwire() -> Iterator[Tripwire]:
    wire = Tripwire()
    yield wire
    wire.close()


def banner_settings(home: Path, update_url: str) -> Path:
    """The CLI's settings with a newer version cached and the daily check done an hour ago: it prints the banner
    from the cache on every start, and checks nothing (`_is_throttled`: less than a day since `last_check`)."""
    settings = home / ".config" / "colab-cli" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    last_check = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    settings.write_text(json.dumps({"enable_update_check": True, "latest_version": NEWER, "last_check": last_check,
                                    "update_url": update_url}, indent=2))
    return settings


def slot_free(proxy: ColabProxy) -> None:
    """Wait until the proxy has let go of the connection that last held the runtime's one SSH slot (it does so
    when it sees the WebSocket close, a moment after the CLI at the other end has gone)."""
    deadline = time.monotonic() + 20
    while proxy._holder is not None:  # the stand-in's own record of the slot's holder
        assert time.monotonic() < deadline, "the stand-in proxy kept the SSH slot"
        time.sleep(0.05)


def banner_by_hand(home: Path, proxy: ColabProxy) -> list[str]:
    """What the CLI, run as the ProxyCommand runs it but by hand, prints on stdout before the server's
    identification: its banner's lines. Its stdin stays open and it is ended with SIGTERM once the
    identification is read, as OpenSSH ends a ProxyCommand: an immediate EOF on stdin makes the CLI's two threads
    read the WebSocket at once (websocket-client's close() beside recv_data), which can leave it blocked for good."""
    key = home.parent / "hand-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    process = subprocess.Popen([str(colab_binary()), "ssh", "--proxy-mode", "-s", SESSION, "-i", str(key)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=cli_env(home))
    timer = threading.Timer(60, process.kill)  # a CLI that never bridges fails the asserts below, not hangs
    timer.start()
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for raw in iter(process.stdout.readline, b""):
            line = raw.decode().rstrip("\r\n")
            if line.startswith("SSH-"):
                break
            lines.append(line)
    finally:
        timer.cancel()
        process.terminate()
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
    slot_free(proxy)
    assert lines[:2] == ["", f"[colab] A new version of Colab CLI is available: {NEWER} (current: 0.7.5)"], \
        (lines, stderr)
    assert lines[-1] == "" and any('"enable_update_check": false' in line for line in lines), lines
    return lines


def test_the_update_banner_on_the_ssh_stream_does_not_break_the_route(home: Path, rdev, proxy: ColabProxy,
                                                                     runtime: Runtime, tripwire: Tripwire) -> None:
    settings = banner_settings(home, tripwire.url)
    before = settings.read_bytes()
    banner = banner_by_hand(home, proxy)  # the CLI does print it in this setup: the test below is not vacuous

    result = rdev("connect", "colab", "--colab-session", SESSION, "--no-open")
    assert result.returncode == 0, result.stderr
    assert "ssh works through Colab's proxy (session s1)" in result.stdout
    through = ssh_through(home, "colab", "echo through the banner")
    assert (through.returncode, through.stdout) == (0, "through the banner\n"), through.stderr

    # A new connection through the same config, watched (on its own, not as a master that would stay in the
    # background with -v's stderr): ssh itself reads the banner's lines before the server's identification.
    subprocess.run(["ssh", "-F", str(home / ".ssh" / "config"), "-O", "exit", "colab"], check=False, capture_output=True,
                   timeout=30)
    slot_free(proxy)
    watched = ssh_through(home, "-v", "-o", "ControlMaster=no", "-o", "ControlPath=none", "colab", "echo again")
    assert (watched.returncode, watched.stdout) == (0, "again\n"), watched.stderr
    seen = [line.split("banner line ", 1)[1].split(": ", 1)[1].rstrip("\r")
            for line in watched.stderr.splitlines() if "kex_exchange_identification: banner line " in line]
    assert [line for line in seen if line] == [line for line in banner if line], watched.stderr

    # From the cache alone: no update check reached the network (it would have saved a new last_check).
    assert tripwire.connections == 0
    assert settings.read_bytes() == before

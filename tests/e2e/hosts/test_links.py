"""Links that drop: a laptop and a far host in network namespaces of their own, joined by one veth link that the
test cuts (`ip link set down`) and restores, and a master connection stopped as a sleeping laptop stops it. After
the link's return, `ssh NAME true` and `rdev connect NAME` work within 3 s: nothing waits on a master whose peer is
gone. The keep-alive limits are made short here (the master's ServerAlive options on the ssh that starts it, the
server's ClientAlive options); bench/link_recovery.py measures the real defaults."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.stand_ins.login_host import PASSWORD, PasswordHost, login_host
from tests.stand_ins.zoo import Namespace, zoo

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and a test user need root")

INTERVAL, COUNT = 1, 3  # the master's ServerAlive: a silent server is given up after about 3 s
RECOVERY = 3.0  # seconds from the link's return to a working ssh


@dataclass
class Link:
    home: Path
    laptop: Namespace
    far: Namespace
    far_end: str  # the far host's end of the link, which the test takes down
    host: PasswordHost

    def ssh(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """The real ssh, from the laptop's namespace, with the config rdev wrote."""
        return subprocess.run(self.laptop.argv("ssh", "-F", str(self.home / ".ssh" / "config"), "-o", "BatchMode=yes",
                                               *args), check=False, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def rdev(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(self.laptop.argv(sys.executable, "-m", "client_side", *args), check=False, input=stdin,
                              capture_output=True, text=True, timeout=120, cwd=REPO)

    def start_master(self) -> int:
        """A master connection with short keep-alive limits (as the editor's first ssh would start it); its pid."""
        self.ssh("-O", "exit", "lab")
        assert self.ssh("-o", f"ServerAliveInterval={INTERVAL}", "-o", f"ServerAliveCountMax={COUNT}", "lab",
                        "true").returncode == 0
        checked = self.ssh("-O", "check", "lab")
        return int(re.search(r"pid=(\d+)", checked.stderr)[1])

    def cut(self, seconds: float) -> None:
        self.far.run("ip", "link", "set", self.far_end, "down")
        time.sleep(seconds)
        self.far.run("ip", "link", "set", self.far_end, "up")

    def seconds_to_a_working_ssh(self) -> float:
        """From now until `ssh lab true` succeeds (tried again at once when it fails)."""
        start = time.monotonic()
        while self.ssh("lab", "true", timeout=RECOVERY * 10).returncode != 0:
            assert time.monotonic() - start < RECOVERY * 10, "ssh does not work again"
        return time.monotonic() - start


@pytest.fixture
def link(home: Path) -> Iterator[Link]:
    """`lab`, a password host in its own namespace, connected from the laptop's namespace; its sshd gives up a
    silent client after about 3 s too."""
    with zoo() as hosts:
        laptop, far = hosts.namespace("laptop"), hosts.namespace("far")
        _, far_address = hosts.link(laptop, far)
        far_end = far.run("ip", "-o", "link", "show", "type", "veth").stdout.split(":")[1].strip().split("@")[0]
        with login_host(home, netns=far, address=far_address,
                        extra=f"ClientAliveInterval {INTERVAL}\nClientAliveCountMax {COUNT}\n") as host:
            made = Link(home, laptop, far, far_end, host)
            assert made.rdev("add", "lab", "--host", far_address, "--user", host.user).returncode == 0
            connected = made.rdev("connect", "lab", "--password-stdin", "--no-open", stdin=PASSWORD + "\n")
            assert connected.returncode == 0, connected.stderr
            try:
                yield made
            finally:
                made.ssh("-O", "exit", "lab", timeout=10)


def test_after_a_cut_longer_than_the_keep_alive_limits_ssh_and_connect_work_at_once(link: Link) -> None:
    link.start_master()
    link.cut(INTERVAL * COUNT + 4)
    assert link.seconds_to_a_working_ssh() < RECOVERY
    start = time.monotonic()
    again = link.rdev("connect", "lab", "--no-open")
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - start < RECOVERY


def test_a_live_session_survives_a_cut_shorter_than_the_limits(link: Link) -> None:
    link.ssh("-O", "exit", "lab")
    session = subprocess.Popen(link.laptop.argv("ssh", "-F", str(link.home / ".ssh" / "config"), "-o",
                                                "ServerAliveInterval=1", "-o", "ServerAliveCountMax=20", "lab",
                                                "echo up; sleep 8; echo still here"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert session.stdout is not None and session.stdout.readline().strip() == "up"
    link.far.run("ip", "link", "set", link.far_end, "down")  # the server's limit is 3 s: keep this cut shorter
    time.sleep(2)
    link.far.run("ip", "link", "set", link.far_end, "up")
    assert link.seconds_to_a_working_ssh() < RECOVERY
    out, err = session.communicate(timeout=30)
    assert session.returncode == 0 and out.strip() == "still here", err


def test_a_master_stopped_with_a_sleeping_laptop_does_not_hold_up_ssh_afterwards(link: Link) -> None:
    master = link.start_master()
    os.kill(master, signal.SIGSTOP)
    time.sleep(INTERVAL * COUNT + 4)  # the server gives the silent client up meanwhile
    os.kill(master, signal.SIGCONT)
    assert link.seconds_to_a_working_ssh() < RECOVERY


def test_connect_ends_a_master_that_no_longer_answers(link: Link) -> None:
    master = link.start_master()
    os.kill(master, signal.SIGSTOP)  # and never resumed: it does not answer on its socket
    try:
        start = time.monotonic()
        again = link.rdev("connect", "lab", "--no-open")
        assert again.returncode == 0, again.stderr
        assert time.monotonic() - start < RECOVERY + 3  # the master is given MASTER_TIMEOUT (3 s) to answer
        for _ in range(50):
            if not Path(f"/proc/{master}").exists():
                break
            time.sleep(0.1)
        assert not Path(f"/proc/{master}").exists(), "the stuck master still runs"
        assert link.ssh("lab", "true", timeout=10).returncode == 0
    finally:
        if Path(f"/proc/{master}").exists():
            os.kill(master, signal.SIGKILL)

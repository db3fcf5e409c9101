"""Far hosts as they are: network namespaces with their own sshd, which the laptop (this test process, in the
root namespace) reaches only the way a real laptop would.

A namespace gets only its own loopback and the veth links the test asks for, with addresses inside the test's
namespaces alone (10.203.N.0/30): nothing is added to the root namespace. The laptop reaches a namespace's
sshd through a *portal*: a port on 127.0.0.1 here whose every connection is relayed, by rdev's own byte bridge
started inside the namespace, to an address there. A host behind another one (a compute node behind a login
node) has no portal: only the host in front of it can reach it. Everything is torn down at the end, also when
the test fails.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import REPO

_SUBNETS = itertools.count(1)


@dataclass(frozen=True)
class Namespace:
    name: str

    def argv(self, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *command]

    def enter(self, *command: str) -> list[str]:
        """Like argv, but /sys stays the machine's (`ip netns exec` mounts the namespace's own, without cgroups,
        which slurmd needs); the namespace's /etc/hosts, if the zoo wrote one, is bound in a mount namespace of
        the command's own."""
        entered = ["nsenter", f"--net=/run/netns/{self.name}", *command]
        hosts = Path("/etc/netns") / self.name / "hosts"
        if not hosts.exists():
            return entered
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount --bind "$1" /etc/hosts && shift && exec "$@"', "sh", str(hosts), *entered]

    def run(self, *command: str) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*command), check=True, capture_output=True, text=True, timeout=30)


@dataclass
class Zoo:
    namespaces: list[Namespace] = field(default_factory=list)
    portals: list[socket.socket] = field(default_factory=list)
    relays: list[subprocess.Popen] = field(default_factory=list)
    etc: list[Path] = field(default_factory=list)

    def namespace(self, role: str) -> Namespace:
        ns = Namespace(f"rdev-{role}-{uuid.uuid4().hex[:6]}")
        subprocess.run(["ip", "netns", "add", ns.name], check=True, capture_output=True, timeout=30)
        self.namespaces.append(ns)
        ns.run("ip", "link", "set", "lo", "up")
        return ns

    def link(self, a: Namespace, b: Namespace) -> tuple[str, str]:
        """A veth pair between two of the test's namespaces; the address of each end."""
        subnet = next(_SUBNETS)
        ends = (f"rv{uuid.uuid4().hex[:8]}", f"rv{uuid.uuid4().hex[:8]}")
        subprocess.run(["ip", "link", "add", ends[0], "netns", a.name, "type", "veth", "peer", "name", ends[1],
                        "netns", b.name], check=True, capture_output=True, timeout=30)
        addresses = (f"10.203.{subnet}.1", f"10.203.{subnet}.2")
        for ns, end, address in zip((a, b), ends, addresses):
            ns.run("ip", "addr", "add", f"{address}/30", "dev", end)
            ns.run("ip", "link", "set", end, "up")
        return addresses

    def names(self, ns: Namespace, names: dict[str, str]) -> None:
        """What names resolve to inside `ns`: `ip netns exec` puts /etc/netns/NS/hosts over /etc/hosts for what it
        starts from now on."""
        folder = Path("/etc/netns") / ns.name
        folder.mkdir(parents=True)
        self.etc.append(folder)
        lines = ["127.0.0.1 localhost", *(f"{address} {name}" for name, address in names.items())]
        (folder / "hosts").write_text("\n".join(lines) + "\n")

    def portal(self, ns: Namespace, address: str, port: int) -> int:
        """A port on 127.0.0.1 of the root namespace whose connections reach `address:port` inside `ns`."""
        listener = socket.create_server(("127.0.0.1", 0))
        self.portals.append(listener)

        def serve() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return  # closed at the end of the test
                with conn:
                    self.relays.append(subprocess.Popen(
                        ns.argv(sys.executable, "-m", "colab_side.bridge", address, str(port)),
                        stdin=conn.fileno(), stdout=conn.fileno(), stderr=subprocess.DEVNULL, cwd=REPO))

        threading.Thread(target=serve, daemon=True, name=f"portal to {ns.name}").start()
        return listener.getsockname()[1]

    def close(self) -> None:
        for listener in self.portals:
            listener.close()
        for relay in self.relays:
            relay.kill()
            relay.wait()
        for ns in reversed(self.namespaces):
            pids = subprocess.run(["ip", "netns", "pids", ns.name], capture_output=True, text=True, check=False)
            for pid in pids.stdout.split():
                with suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", ns.name], check=False, capture_output=True, timeout=30)
        for folder in self.etc:
            shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def zoo() -> Iterator[Zoo]:
    made = Zoo()
    try:
        yield made
    finally:
        made.close()

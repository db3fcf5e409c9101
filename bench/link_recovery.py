"""Seconds from a link's return to a working `ssh NAME true` through rdev's config (its master connection, with
the real keep-alive defaults), against a fresh `ssh` with `ControlMaster no` started at the same moment; for cuts
of 5 s, 60 s and 600 s and for a master stopped for 60 s (a sleeping laptop) and then resumed.

The laptop and a password host live in network namespaces of their own, joined by one veth link; the cut takes the
host's end down (`ip link set down`), this kernel having no netem. Each command is tried again at once while it
fails. Needs root (namespaces, a test user). Target: <= 1.2x the fresh ssh in every row.

    .venv/bin/python bench/link_recovery.py [--cuts 5,60,600] [--stop 60]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._setup import REPO, arguments, needs_root, sandbox, verdict
from tests.stand_ins.login_host import PASSWORD, login_host
from tests.stand_ins.zoo import Namespace, zoo

TARGET = 1.2


class Laptop:
    def __init__(self, ns: Namespace, home: Path, env: dict[str, str]) -> None:
        self.ns, self.home, self.env = ns, home, env

    def ssh(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        argv = self.ns.argv("ssh", "-F", str(self.home / ".ssh" / "config"), "-o", "BatchMode=yes", *args)
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout, check=False)

    def until_it_works(self, *options: str) -> float:
        start = time.monotonic()
        while self.ssh(*options, "lab", "true").returncode != 0:
            time.sleep(0.01)
        return time.monotonic() - start

    def race(self) -> tuple[float, float]:
        """(rdev's config, a fresh ssh), started together now."""
        fresh: list[float] = []
        other = threading.Thread(target=lambda: fresh.append(
            self.until_it_works("-o", "ControlMaster=no", "-o", "ControlPath=none")))
        other.start()
        ours = self.until_it_works()
        other.join()
        return ours, fresh[0]

    def master(self) -> int:
        self.ssh("-O", "exit", "lab")
        assert self.ssh("lab", "true").returncode == 0
        return int(re.search(r"pid=(\d+)", self.ssh("-O", "check", "lab").stderr)[1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cuts", default="5,60,600")
    parser.add_argument("--stop", type=float, default=60)
    args = arguments(__doc__, None, parser)
    if not needs_root("namespaces, a test user"):
        return 1
    _, home, env = sandbox("rl")
    worst = 0.0
    with zoo() as hosts:
        laptop_ns, far = hosts.namespace("laptop"), hosts.namespace("far")
        _, address = hosts.link(laptop_ns, far)
        end = far.run("ip", "-o", "link", "show", "type", "veth").stdout.split(":")[1].strip().split("@")[0]
        with login_host(home, netns=far, address=address) as host:
            rdev = [*laptop_ns.argv(sys.executable, "-m", "client_side")]
            subprocess.run([*rdev, "add", "lab", "--host", address, "--user", host.user], env=env, cwd=REPO, check=True,
                           capture_output=True)
            subprocess.run([*rdev, "connect", "lab", "--password-stdin", "--no-open"], env=env, cwd=REPO, check=True,
                           capture_output=True, input=PASSWORD + "\n", text=True)
            laptop = Laptop(laptop_ns, home, env)
            rows: list[tuple[str, float]] = [(f"link cut {float(s):.0f} s", float(s)) for s in args.cuts.split(",")]
            rows.append((f"master stopped {args.stop:.0f} s", -args.stop))
            for label, seconds in rows:
                pid = laptop.master()
                if seconds > 0:
                    far.run("ip", "link", "set", end, "down")
                    time.sleep(seconds)
                    far.run("ip", "link", "set", end, "up")
                else:
                    os.kill(pid, signal.SIGSTOP)
                    time.sleep(-seconds)
                    os.kill(pid, signal.SIGCONT)
                ours, fresh = laptop.race()
                ratio = ours / fresh
                worst = max(worst, ratio)
                print(f"{label:24} rdev's config {ours:6.2f} s  fresh ssh {fresh:6.2f} s  ratio {ratio:.2f}x", flush=True)
            laptop.ssh("-O", "exit", "lab")
    return verdict(worst, TARGET, "worst ratio")


if __name__ == "__main__":
    sys.exit(main())

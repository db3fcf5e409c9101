"""Time from serve() to ticket, against a bare apt install and a colab-ssh-style serial start.

Run as root on a Debian machine whose apt mirrors answer (it removes and reinstalls
openssh-server, and leaves it installed):

    .venv/bin/python bench/bootstrap.py [--rounds 3]

(a) sshd missing: serve() installs it with apt while it gets the tunnel binary, then starts sshd
    and the tunnel. Compared with a bare `apt-get install --no-install-recommends openssh-server`
    (target <= 1.2x) and with the steps one after another as colab-ssh does them: apt-get update,
    apt-get install, then sshd, then the tunnel (target <= 0.5x).
(b) sshd present: serve() to ticket, minus the tunnel's own start (target <= 1.5 s).

The tunnel is the cloudflared stand-in from tests/ (the real service is not reachable here), so
the tunnel binary costs no download in this run; every apt run starts with an empty package cache.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from colab_side import serve, stop
from colab_side.sshd import find_sshd

APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
INSTALL = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "openssh-server"]


def apt(*argv: str) -> None:
    subprocess.run(list(argv), env=APT_ENV, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def without_sshd() -> None:
    """Back to a runtime with no sshd and nothing cached, as a fresh Colab machine is."""
    apt("apt-get", "purge", "-y", "-q", "openssh-server", "openssh-sftp-server")
    apt("apt-get", "clean")
    if find_sshd():
        raise SystemExit("openssh-server could not be removed; this benchmark needs it gone between runs.")


def stand_in(workdir: Path) -> Path:
    records = workdir / "edge"
    records.mkdir()
    os.environ["RDEV_STANDIN_DIR"] = str(records)
    script = workdir / "cloudflared"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{REPO / "tests" / "stand_ins" / "cloudflared.py"}" "$@"\n')
    script.chmod(0o755)
    return script


def seconds(action: Callable[[], object]) -> float:
    start = time.monotonic()
    action()
    return time.monotonic() - start


def serve_to_ticket(key: str, state: Path, cloudflared: Path) -> tuple[float, float]:
    """serve() until the ticket is printed; (total, the tunnel's own start) in seconds."""
    said: list[str] = []
    start = time.monotonic()
    serve(tunnel="cloudflared", authorized_keys=[key], state_dir=state, cloudflared=str(cloudflared),
          keep_alive=False, out=said.append)
    total = time.monotonic() - start
    stop(state)
    timings = next(line for line in said if "cloudflared tunnel" in line)
    tunnel = float(timings.split("cloudflared tunnel ")[1].split(" s")[0])
    return total, tunnel


def serial(state: Path, cloudflared: Path) -> None:
    """colab-ssh's order: update, install, start sshd, then start the tunnel and wait for its name."""
    apt("apt-get", "update", "-q")
    apt(*INSTALL)
    state.mkdir(exist_ok=True)
    port = "2299"
    subprocess.run([find_sshd() or "/usr/sbin/sshd", "-p", port, "-o", f"PidFile={state}/serial.pid"], check=True)
    with open(state / "serial-tunnel.log", "w") as log:
        tunnel = subprocess.Popen([str(cloudflared), "tunnel", "--url", f"ssh://127.0.0.1:{port}"], stderr=log)
        while "Registered tunnel connection" not in (state / "serial-tunnel.log").read_text():
            time.sleep(0.02)
        tunnel.terminate()
        tunnel.wait()
    subprocess.run(["kill", (state / "serial.pid").read_text().strip()], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    if os.geteuid() != 0:
        raise SystemExit("Run as root: the benchmark installs and removes openssh-server.")
    workdir = Path(tempfile.mkdtemp(prefix="rdev-bench-"))
    cloudflared = stand_in(workdir)
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVpTxB3vKp4n0E5cDn2OF0t0F0nKcxWXgH2v3cM0f3V bench"
    state = workdir / "state"
    bare, ours_missing, steps, ours_present, tunnel_starts = [], [], [], [], []
    try:
        apt("apt-get", "update", "-q")  # the lists are there for every round, as on a runtime
        for round_ in range(1, rounds + 1):
            without_sshd()
            bare.append(seconds(lambda: apt(*INSTALL)))
            without_sshd()
            ours_missing.append(serve_to_ticket(key, state, cloudflared)[0])
            without_sshd()
            steps.append(seconds(lambda: serial(workdir / "serial", cloudflared)))
            total, tunnel = serve_to_ticket(key, state, cloudflared)
            ours_present.append(total)
            tunnel_starts.append(tunnel)
            print(f"round {round_}: bare install {bare[-1]:.2f} s, serve without sshd {ours_missing[-1]:.2f} s, "
                  f"serial {steps[-1]:.2f} s, serve with sshd {total:.2f} s (tunnel {tunnel:.2f} s)", flush=True)
    finally:
        if not find_sshd():
            apt(*INSTALL)
    median = statistics.median
    print(f"\nmedians over {rounds} rounds")
    print(f"(a) serve without sshd / bare apt install: {median(ours_missing) / median(bare):.2f}x  (target <= 1.2x)")
    print(f"(a) serve without sshd / serial sequence:   {median(ours_missing) / median(steps):.2f}x  (target <= 0.5x)")
    own = median(ours_present) - median(tunnel_starts)
    print(f"(b) serve with sshd: {median(ours_present):.2f} s, of which the tunnel's own start "
          f"{median(tunnel_starts):.2f} s; the rest {own:.2f} s  (target <= 1.5 s)")


if __name__ == "__main__":
    main()

"""`rdev pull` of 200 small files and one 50 MB file, against `rsync -a` and `scp -r` of the same folder through the
same SSH config (and its warm master connection); then a second pull with nothing changed, against rsync's own
no-op. Once over loopback, once over a slow link (150 ms round trip: bench/slow_link.py's relay in this process).

The host is a ticket host on this machine (`python -m colab_side serve`, tunnel direct), connected with `rdev
connect --ticket`; a second name reaches it through the relay. rdev runs as a user has it: installed from a wheel in
a virtual environment of its own, its `rdev` command. Beside them, rdev's own rsync command line run
without rdev: the gap between it and rdev is rdev's start (Python, the CLI, one `ssh -O check`), the gap between it
and `rsync -a` is rsync's options. Runs are interleaved and the medians compared. Targets: a pull <= 1.1x rsync; a
no-op <= 1.1x rsync's.

    .venv/bin/python bench/pull.py [--runs N]
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._setup import RDEV, arguments, close_masters, installed, ratio, rdev, sandbox, serve, timed, unserve, verdict
from bench.slow_link import Relay
from bootstrap import ticket as tickets
from client_side.commands.transfer import PARTIAL_DIR

TARGET = 1.1
SMALL_FILES = 200
BIG = 50_000_000


def make_source(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for number in range(SMALL_FILES):
        (folder / f"small-{number:03}.txt").write_bytes(os.urandom(4096))
    (folder / "big.bin").write_bytes(os.urandom(BIG))
    return folder


def measure(label: str, name: str, source: Path, root: Path, env: dict[str, str], runs: int) -> tuple[float, float]:
    """Fresh pulls by rdev, rsync -a (and its equal with rdev's own options) and scp -r, then no-op pulls by rdev
    and rsync; the two ratios to rsync -a."""
    config = f"{env['HOME']}/.ssh/config"
    ssh = f"ssh -F {config}"
    tools = {
        "rdev": lambda dest: [*RDEV, "pull", name, str(source), str(dest)],
        "rsync": lambda dest: ["rsync", "-a", "-e", ssh, f"{name}:{source}", f"{dest}/"],
        # rdev's rsync command line without rdev: what of the difference is rsync's options, what rdev's own start.
        "its rsync": lambda dest: ["rsync", "-rlpt", "-s", f"--partial-dir={PARTIAL_DIR}", "--stats", "-e",
                                      f"{ssh} -o BatchMode=yes", f"{name}:{source}", f"{dest}/"],
        "scp": lambda dest: ["scp", "-q", "-r", "-F", config, f"{name}:{source}", f"{dest}/"],
    }
    fresh: dict[str, list[float]] = {tool: [] for tool in tools}
    again: dict[str, list[float]] = {tool: [] for tool in tools if tool != "scp"}
    for run in range(runs):
        for tool, argv in tools.items():
            dest = root / f"{label}-{tool}-{run}"
            dest.mkdir()
            fresh[tool].append(timed(argv(dest), env, root))
            if tool in again:
                again[tool].append(timed(argv(dest), env, root))
            shutil.rmtree(dest)
    ms = {tool: f"{statistics.median(times) * 1000:6.0f} ms" for tool, times in fresh.items()}
    noop = {tool: f"{statistics.median(times) * 1000:6.0f} ms" for tool, times in again.items()}
    pull, no_op = ratio(fresh["rdev"], fresh["rsync"]), ratio(again["rdev"], again["rsync"])
    print(f"{label:9} pull:  rdev {ms['rdev']}  rsync -a {ms['rsync']}  its rsync alone {ms['its rsync']}  "
          f"scp -r {ms['scp']}  ratio to rsync {pull:.2f}x (target <= {TARGET}x), to scp "
          f"{ratio(fresh['rdev'], fresh['scp']):.2f}x")
    print(f"{label:9} no-op: rdev {noop['rdev']}  rsync -a {noop['rsync']}  its rsync alone "
          f"{noop['its rsync']}  ratio {no_op:.2f}x (target <= {TARGET}x)")
    return pull, no_op


def main() -> int:
    runs = arguments(__doc__, 5).runs
    if not shutil.which("rsync"):
        print("bench: needs rsync (apt-get install rsync).")
        return 1
    root, _, env = sandbox()
    installed(root)
    ratios: list[float] = []
    try:
        ticket = serve(env, root / "server")
        relay = Relay(ticket.port).start()
        for name, port in (("box", ticket.port), ("slow", relay.port)):
            through = tickets.Ticket(**{**asdict(ticket), "port": port, "workdir": str(root)}).encode()
            rdev(env, "connect", name, "--ticket", through, "--no-open")
        source = make_source(root / "results")
        for label, name in (("loopback", "box"), ("150ms RTT", "slow")):
            ratios.extend(measure(label, name, source, root, env, runs))
    finally:
        close_masters(env, "box", "slow")
        unserve(env, root / "server")
        shutil.rmtree(root, ignore_errors=True)
    return verdict(max(ratios), TARGET, "worst ratio to rsync")


if __name__ == "__main__":
    sys.exit(main())

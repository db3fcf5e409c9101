"""`rdev pull` of 200 small files and one 50 MB file, against `rsync -a` and `scp -r` of the same folder through the
same SSH config (and its warm master connection); then a second pull with nothing changed, against rsync's own
no-op. Once over loopback, once over a slow link (150 ms round trip: bench/slow_link.py's relay in this process).

The host is a ticket host on this machine (`python -m colab_side serve`, tunnel direct), connected with `rdev
connect --ticket`; a second name reaches it through the relay. rdev runs as an installed copy would, from compiled
modules, as a user runs rdev (tests/e2e/test_transfer.py's RUNNER). Runs are interleaved and
the medians compared. Targets: a pull <= 1.1x rsync; a no-op <= 1.1x rsync's.

    .venv/bin/python bench/pull.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.slow_link import Relay, serve
from bootstrap import ticket as tickets
from tests.e2e.test_transfer import RUNNER

TARGET = 1.1
SMALL_FILES = 200
BIG = 50_000_000


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False,
                            stdin=subprocess.DEVNULL)
    took = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv[:6])} failed: {result.stderr.strip()[-500:]}")
    return took


def make_source(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for number in range(SMALL_FILES):
        (folder / f"small-{number:03}.txt").write_bytes(os.urandom(4096))
    (folder / "big.bin").write_bytes(os.urandom(BIG))
    return folder


def measure(label: str, name: str, source: Path, root: Path, env: dict[str, str], runs: int) -> tuple[float, float]:
    """Fresh pulls by rdev, rsync -a and scp -r, then no-op pulls by rdev and rsync; the two ratios to rsync."""
    config = f"{env['HOME']}/.ssh/config"
    tools = {
        "rdev": lambda dest: [sys.executable, "-c", RUNNER, "pull", name, str(source), str(dest)],
        "rsync": lambda dest: ["rsync", "-a", "-e", f"ssh -F {config}", f"{name}:{source}", f"{dest}/"],
        "scp": lambda dest: ["scp", "-q", "-r", "-F", config, f"{name}:{source}", f"{dest}/"],
    }
    fresh: dict[str, list[float]] = {tool: [] for tool in tools}
    again: dict[str, list[float]] = {"rdev": [], "rsync": []}
    for run in range(runs):
        for tool, argv in tools.items():
            dest = root / f"{label}-{tool}-{run}"
            dest.mkdir()
            fresh[tool].append(timed(argv(dest), env, root))
            if tool in again:
                again[tool].append(timed(argv(dest), env, root))
            shutil.rmtree(dest)
    median = {tool: statistics.median(times) for tool, times in fresh.items()}
    noop = {tool: statistics.median(times) for tool, times in again.items()}
    ratio, noop_ratio = median["rdev"] / median["rsync"], noop["rdev"] / noop["rsync"]
    print(f"{label:9} pull: rdev {median['rdev'] * 1000:6.0f} ms  rsync -a {median['rsync'] * 1000:6.0f} ms  "
          f"scp -r {median['scp'] * 1000:6.0f} ms  ratio to rsync {ratio:.2f}x (target <= {TARGET}x), "
          f"to scp {median['rdev'] / median['scp']:.2f}x")
    print(f"{label:9} no-op: rdev {noop['rdev'] * 1000:6.0f} ms  rsync -a {noop['rsync'] * 1000:6.0f} ms  "
          f"ratio {noop_ratio:.2f}x (target <= {TARGET}x)")
    return ratio, noop_ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    if not shutil.which("rsync"):
        print("bench: needs rsync (apt-get install rsync).")
        return 1
    root = Path(tempfile.mkdtemp(prefix="rb", dir="/tmp"))
    home = root / "h"
    home.mkdir(mode=0o700)
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(root / "cfg"), "XDG_STATE_HOME": str(root / "st"),
           "XDG_CACHE_HOME": str(root / "cache"), "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
           "PYTHONPATH": str(REPO)}
    env.pop("SSH_AUTH_SOCK", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed rdev has its modules compiled; so has this one
    subprocess.run([sys.executable, "-m", "compileall", "-q", "client_side", "bootstrap", "colab_side"], env=env,
                   cwd=REPO, check=True, capture_output=True)
    ratios: list[float] = []
    try:
        ticket = serve(env, root / "server")
        relay = Relay(ticket.port).start()
        for name, port in (("box", ticket.port), ("slow", relay.port)):
            through = tickets.Ticket(**{**asdict(ticket), "port": port, "workdir": str(root)}).encode()
            timed([sys.executable, "-m", "client_side", "connect", name, "--ticket", through, "--no-open"], env, REPO)
        source = make_source(root / "results")
        for label, name in (("loopback", "box"), ("150ms RTT", "slow")):
            ratios.extend(measure(label, name, source, root, env, runs))
    finally:
        for name in ("box", "slow"):
            subprocess.run(["ssh", "-F", f"{home}/.ssh/config", "-O", "exit", name], env=env, capture_output=True,
                           check=False)
        subprocess.run([sys.executable, "-m", "colab_side", "stop", "--state-dir", str(root / "server")], env=env,
                       cwd=REPO, capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)
    print(f"worst ratio {max(ratios):.2f}x (target <= {TARGET}x)")
    return 0 if max(ratios) <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())

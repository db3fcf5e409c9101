"""How long the editor's first connection waits for its remote server, with and without rdev's prefetch.

A stand-in for the editors' download server (tests/stand_ins/downloads.py) serves an archive the
size of VS Code's server at a rate limited to a plausible download speed. Without prefetch, the
editor starts the download when it first connects: it waits the whole download. With prefetch,
`serve --editor-server` starts it while sshd starts; the user then runs `rdev connect` with the
ticket, and the editor connects when that returns: it waits only for what is left.

Two runtimes, measured in the same run:
- fresh (with --fresh-runtime), as a new Colab or Kaggle VM is: no sshd, so serve installs
  openssh-server with apt while the download runs. This is the runtime the cell meets; the target
  (<= 0.2x) is judged on it. It needs root and an apt mirror, and changes this machine: openssh-server
  is purged before each of its runs (host keys and /etc/ssh go with it; don't run it where you are
  logged in over SSH or tests run), as bench/bootstrap.py does, and installed again at the end.
- sshd already installed, the worst case: serve and connect take a second, little to overlap.
Both leave out what this machine cannot time and would only add to the overlap: the tunnel's
download and start (the direct route is used) and the user pasting the ticket (zero here). Each
run uses a fresh home; runs alternate and medians are compared.

    .venv/bin/python bench/first_connect.py [--fresh-runtime] [--runs N] [--megabytes M] [--rate MB_PER_S]
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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.bootstrap import INSTALL, apt, without_sshd
from colab_side import prefetch
from colab_side.sshd import find_sshd
from tests.stand_ins.downloads import Downloads

TARGET = 0.2
COMMIT = "4" * 40


def rdev_env(root: Path) -> dict[str, str]:
    home = root / "h"
    home.mkdir(parents=True, mode=0o700)
    return {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(root / "cfg"), "XDG_STATE_HOME": str(root / "st"),
            "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}


def run(argv: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(argv, check=False, env=env, cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv[2:5])} failed: {result.stderr.strip()}")
    return result.stdout


def with_prefetch(root: Path, downloads: Downloads) -> float:
    """serve with --editor-server, then connect as a user would; the wait left once connect returns."""
    env = {**rdev_env(root), "RDEV_EDITOR_DOWNLOADS": downloads.url}
    key = run([sys.executable, "-m", "client_side", "key"], env).strip()
    state = root / "server"
    served = run([sys.executable, "-m", "colab_side", "serve", "--authorized-key", key, "--state-dir", str(state),
                  "--no-keep-alive", "--editor-server", f"code:stable:{COMMIT}"], env)
    ticket = next(line for line in served.splitlines() if line.startswith("rdev1."))
    try:
        run([sys.executable, "-m", "client_side", "connect", "box", "--ticket", ticket, "--no-open"], env)
        connected = time.monotonic()
        unit = Path(env["HOME"]) / ".vscode-server" / "cli" / "servers" / f"Stable-{COMMIT}"
        while not unit.exists() or not (Path(env["HOME"]) / ".vscode-server" / f"code-{COMMIT}").exists():
            if "not fetched" in (state / "editor-server.log").read_text(errors="replace"):
                raise SystemExit("bench: the prefetch failed: " + (state / "editor-server.log").read_text())
            time.sleep(0.01)
        return time.monotonic() - connected
    finally:
        subprocess.run(["ssh", "-F", f"{env['HOME']}/.ssh/config", "-O", "exit", "box"], check=False, capture_output=True, env=env)
        run([sys.executable, "-m", "colab_side", "stop", "--state-dir", str(state)], env)


def fresh_runtime(root: Path, downloads: Downloads) -> float:
    """with_prefetch on a runtime without sshd, which serve installs meanwhile."""
    without_sshd()
    return with_prefetch(root, downloads)


def without_prefetch(root: Path, downloads: Downloads) -> float:
    """The same download started when the editor first connects: it waits all of it."""
    home = root / "h"
    home.mkdir(parents=True)
    start = time.monotonic()
    line = prefetch.fetch(f"code:stable:{COMMIT}", home, downloads.url)
    if "not fetched" in line:
        raise SystemExit(f"bench: {line}")
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--megabytes", type=float, default=55.0, help="the server archive (VS Code's is about 55 MB)")
    parser.add_argument("--rate", type=float, default=25.0, help="download speed in MB/s")
    parser.add_argument("--fresh-runtime", action="store_true",
                        help="also measure a runtime without sshd (root; purges and reinstalls openssh-server)")
    args = parser.parse_args()
    fresh = args.fresh_runtime
    if fresh and (os.geteuid() != 0 or shutil.which("apt-get") is None):
        raise SystemExit("bench: --fresh-runtime needs root and apt-get (it purges and reinstalls openssh-server).")
    if not find_sshd():
        raise SystemExit("bench: install openssh-server first: the sshd-installed case needs it.")
    measures = {"without prefetch": without_prefetch, "with prefetch, sshd installed": with_prefetch,
                **({"with prefetch, fresh runtime": fresh_runtime} if fresh else {})}
    waits: dict[str, list[float]] = {label: [] for label in measures}
    downloads = Downloads(padding=int(args.megabytes * 1e6), rate=args.rate * 1e6)
    try:
        if fresh:
            apt("apt-get", "update", "-q")  # the lists are there on every run, as on a runtime
        for _ in range(args.runs):
            for label, measure in measures.items():
                root = Path(tempfile.mkdtemp(prefix="rb", dir="/tmp"))
                try:
                    waits[label].append(measure(root, downloads))
                finally:
                    shutil.rmtree(root, ignore_errors=True)
    finally:
        downloads.close()
        if fresh and not find_sshd():
            apt(*INSTALL)
    baseline = statistics.median(waits["without prefetch"])
    print(f"server archive {args.megabytes:.0f} MB at {args.rate:.0f} MB/s; medians of {args.runs} runs")
    for label, seconds in waits.items():
        ratio = "" if label == "without prefetch" else f"  ratio {statistics.median(seconds) / baseline:.2f}"
        print(f"first connect waits, {label:<31} {statistics.median(seconds):6.2f} s{ratio}")
    if not fresh:
        print("the target is judged on a fresh runtime: run again with --fresh-runtime (as root; it purges and "
              "reinstalls openssh-server)")
        return 1
    ratio = statistics.median(waits["with prefetch, fresh runtime"]) / baseline
    print(f"target on a fresh runtime: <= {TARGET} ({'met' if ratio <= TARGET else 'not met'})")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())

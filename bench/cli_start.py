"""How long each `rdev` command takes to start, against a bare `python -c "import typer"`; and the typer decision:
rdev with the pinned typer against rdev with a newer one (`--typer VERSION`, default the newest checked, 0.29.1).

Every command is run as a user would (the installed console script, a fresh process each time) in a
throwaway HOME, interleaved with the baseline so that both see the same machine load; the median
of each is compared. rdev's modules are compiled first, as pip compiles an installed wheel's.
Target: every ratio <= 1.5. The newer typer (and what it requires) is installed from PyPI into a folder of its own
and put first on PYTHONPATH; where that cannot be done, its rows are left out with a line saying so.

    .venv/bin/python bench/cli_start.py [--runs N] [--typer VERSION]
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 1.5
REPO = Path(__file__).resolve().parent.parent
# Commands that do their work without a network or a server; the rest start and print their help.
COMMANDS: list[list[str]] = [
    ["--help"], ["key"], ["list"], ["list", "--json"], ["doctor", "--help"], ["connect", "--help"], ["add", "--help"],
    ["password", "--help"], ["ssh", "--help"], ["gpus", "--help"], ["jupyter", "--help"], ["remove", "--help"], ["stop", "--help"], ["colab", "cell", "--help"],
    ["demo", "--help"], ["--version"], ["run", "--help"], ["runs", "--help"], ["pull", "--help"],
]
# The typer decision is about real commands: one that reads rdev's records, and help (typer alone).
TYPER_COMMANDS: list[list[str]] = [["list"], ["--help"], ["ssh", "--help"]]


def _timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--typer", default="0.29.1", help="the newer typer to weigh against the pinned one")
    args = parser.parse_args()
    runs = args.runs
    rdev = shutil.which("rdev", path=str(Path(sys.executable).parent)) or shutil.which("rdev")
    if not rdev:
        print("bench: no rdev console script next to this Python or on PATH; run 'bash scripts/setup.sh' first.")
        return 1
    root = Path(tempfile.mkdtemp(prefix="rdev-bench-"))
    (root / "home").mkdir(mode=0o700)
    env = {**os.environ, "HOME": str(root / "home"), "XDG_CONFIG_HOME": str(root / "config"),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    baseline_argv = [sys.executable, "-c", "import typer"]
    # pip compiles an installed wheel's modules, as it did typer's; a checkout (and PYTHONDONTWRITEBYTECODE,
    # set on some machines) would otherwise charge rdev for compiling its sources on every start.
    compileall.compile_dir(str(REPO), quiet=1, rx=re.compile(r"[/\\](\.venv|tests|bench|build)[/\\]"))
    try:
        subprocess.run([rdev, "key"], env=env, capture_output=True, check=True)  # the key pair exists from here on
        worst = 0.0
        print(f"{'command':28} {'rdev ms':>8} {'typer ms':>9} {'ratio':>6}")
        for command in COMMANDS:
            ours, baseline = [], []
            for _ in range(runs):
                ours.append(_timed([rdev, *command], env))
                baseline.append(_timed(baseline_argv, env))
            ratio = statistics.median(ours) / statistics.median(baseline)
            worst = max(worst, ratio)
            print(f"{' '.join(['rdev', *command]):28} {statistics.median(ours) * 1000:8.0f} "
                  f"{statistics.median(baseline) * 1000:9.0f} {ratio:6.2f}")
        _typer_decision(rdev, env, root, args.typer, runs)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"worst ratio {worst:.2f} (target <= {TARGET})")
    return 0 if worst <= TARGET else 1


def _typer_decision(rdev: str, env: dict[str, str], root: Path, version: str, runs: int) -> None:
    """rdev's start with typer VERSION (installed beside, with what it requires) against the pinned one."""
    folder = root / f"typer-{version}"
    got = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target",
                          str(folder), f"typer=={version}"], capture_output=True, text=True, check=False)
    if got.returncode != 0:
        print(f"typer {version}: could not be installed here ({got.stderr.strip()[-200:]}), so it is not measured.")
        return
    newer = {**env, "PYTHONPATH": str(folder)}
    print(f"{'command':28} {'pinned ms':>9} {version + ' ms':>10} {'ratio':>6}")
    for command in TYPER_COMMANDS:
        pinned, other = [], []
        for _ in range(runs):
            pinned.append(_timed([rdev, *command], env))
            other.append(_timed([rdev, *command], newer))
        print(f"{' '.join(['rdev', *command]):28} {statistics.median(pinned) * 1000:9.0f} "
              f"{statistics.median(other) * 1000:10.0f} {statistics.median(other) / statistics.median(pinned):6.2f}")


if __name__ == "__main__":
    sys.exit(main())

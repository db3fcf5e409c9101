"""The notebook cell's install step against installing rdev the way the cell used to (the whole
package with the laptop's dependencies), each in a fresh virtual environment, as on a new runtime.

The cell's step is what `rdev colab cell` prints to install rdev (bootstrap.cell.install_step): the
runtime side it carries, written out and imported, and pip installing the tunnel's one package.
Both runs use the same pip cache, interleaved, and the medians are compared. Target: <= 0.2x.

    .venv/bin/python bench/cell.py [--runs N] [--tunnel cloudflared|ngrok]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._setup import REPO, arguments, ratio, verdict
from bootstrap import cell
from client_side.colab import cell as colab_cell

TARGET = 0.2


def install_step(tunnel: str) -> str:
    """The cell's lines before serve (and before the ngrok cell asks for its token): what a runtime runs to
    get rdev's runtime side."""
    return cell.install_step(tunnel, colab_cell.runtime_zip())


def timed_in_fresh_venv(root: Path, run: list[str]) -> float:
    """Seconds `run` takes in a new virtual environment (its python is `{python}` in `run`)."""
    shutil.rmtree(root, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, capture_output=True)
    python = str(root / "bin" / "python")
    start = time.perf_counter()
    subprocess.run([python if part == "{python}" else part for part in run], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tunnel", default="cloudflared", choices=sorted(cell.TUNNEL_PACKAGES))
    args = arguments(__doc__, 3, parser)
    work = Path(tempfile.mkdtemp(prefix="rdev-bench-cell-"))
    step = work / "step.py"
    step.write_text(install_step(args.tunnel))
    cell_run = ["{python}", str(step)]
    full_run = ["{python}", "-m", "pip", "install", "-q", str(REPO)]
    try:
        # One untimed round fills pip's cache, so neither side pays for the first download.
        timed_in_fresh_venv(work / "venv", cell_run)
        timed_in_fresh_venv(work / "venv", full_run)
        ours, before = [], []
        for _ in range(args.runs):
            ours.append(timed_in_fresh_venv(work / "venv", cell_run))
            before.append(timed_in_fresh_venv(work / "venv", full_run))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"cell's install step ({args.tunnel}): {statistics.median(ours):.2f} s")
    print(f"pip install rdev with its dependencies: {statistics.median(before):.2f} s")
    return verdict(ratio(ours, before), TARGET)


if __name__ == "__main__":
    sys.exit(main())

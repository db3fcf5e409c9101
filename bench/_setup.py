"""What the benchmarks share: this checkout on sys.path, a throwaway HOME that rdev's state and keys go into, rdev
installed from a wheel as a user has it, a ticket host on this machine, a timed command, and the verdict
line. Only setup and reporting: what each bench measures stays in its own script. A bench puts the checkout on
sys.path (`python bench/X.py` puts bench/ there) before it imports this."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bootstrap import ticket as tickets

REPO = Path(__file__).resolve().parent.parent


def arguments(doc: str | None, runs: int | None, parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """The command line: `--runs N` (default `runs`, if given) and what `parser` has; the doc's first paragraph as
    --help's description."""
    parser = parser or argparse.ArgumentParser()
    parser.description = " ".join((doc or "").split("\n\n")[0].split())
    if runs is not None:
        parser.add_argument("--runs", type=int, default=runs)
    return parser.parse_args()


def needs_root(why: str) -> bool:
    """False, and a line saying so, when this is not root (test users, namespaces, Slurm's daemons need it)."""
    if os.geteuid() == 0:
        return True
    print(f"bench: needs root ({why}).")
    return False


def sandbox(prefix: str = "rb") -> tuple[Path, Path, dict[str, str]]:
    """A new short folder in /tmp (ControlPath sockets need short paths), a HOME (0700) in it, and an environment
    whose HOME, XDG folders and keyring point there, without the user's ssh agent: nothing of the user's is used."""
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    home = root / "h"
    home.mkdir(mode=0o700)
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(root / "cfg"), "XDG_STATE_HOME": str(root / "st"),
           "XDG_CACHE_HOME": str(root / "cache"), "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    env.pop("SSH_AUTH_SOCK", None)
    return root, home, env


# How a bench runs rdev: from this checkout until `installed` puts a copy in place.
RDEV = [sys.executable, "-m", "client_side"]


def installed(root: Path) -> None:
    """rdev built into a wheel and installed in a virtual environment of its own under `root`, which `rdev()` runs
    from then on: a bench that times rdev's start measures what a user's `pipx install` has (modules compiled by
    pip, the `rdev` console script, no editable-install finder on every start)."""
    built = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(root / "wheel"),
                            str(REPO)], capture_output=True, text=True, check=False)
    if built.returncode != 0:
        raise SystemExit(f"bench: the wheel did not build: {built.stderr.strip()[-500:]}")
    [wheel] = (root / "wheel").glob("rdev-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, capture_output=True)
    subprocess.run([str(root / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    str(wheel)], check=True, capture_output=True)
    RDEV[:] = [str(root / "venv" / "bin" / "rdev")]


def timed(argv: list[str], env: dict[str, str], cwd: Path = REPO, stdin: str | None = None) -> float:
    """Seconds `argv` took; the bench ends with its error output if it failed."""
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, input=stdin, check=False,
                            stdin=None if stdin is not None else subprocess.DEVNULL)
    took = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv[:6])} failed: {result.stderr.strip()[-500:]}")
    return took


def rdev(env: dict[str, str], *args: str, stdin: str | None = None) -> float:
    """Seconds `rdev ARGS` took (RDEV: the installed copy, once there is one)."""
    return timed([*RDEV, *args], env, stdin=stdin)


def serve(env: dict[str, str], state: Path) -> tickets.Ticket:
    """A ticket host here (`python -m colab_side serve`, tunnel direct) for rdev's key in `env`; its ticket."""
    key = subprocess.run([sys.executable, "-m", "client_side", "key"], env=env, cwd=REPO, capture_output=True,
                         text=True, check=True).stdout.strip()
    served = subprocess.run([sys.executable, "-m", "colab_side", "serve", "--authorized-key", key, "--state-dir",
                             str(state), "--no-keep-alive"], env=env, cwd=REPO, capture_output=True, text=True,
                            check=True)
    return tickets.newest(served.stdout)


def unserve(env: dict[str, str], state: Path) -> None:
    subprocess.run([sys.executable, "-m", "colab_side", "stop", "--state-dir", str(state)], env=env, cwd=REPO,
                   capture_output=True, check=False)


def close_masters(env: dict[str, str], *names: str) -> None:
    for name in names:
        subprocess.run(["ssh", "-F", f"{env['HOME']}/.ssh/config", "-O", "exit", name], env=env, capture_output=True,
                       check=False)


def ratio(ours: list[float], baseline: list[float]) -> float:
    """The medians' ratio: runs are interleaved, so both sides meet the same load."""
    return statistics.median(ours) / statistics.median(baseline)


def verdict(worst: float, target: float, what: str = "ratio") -> int:
    """The last line, and the exit status: 0 when `worst` meets `target`."""
    print(f"{what} {worst:.2f} (target <= {target})")
    return 0 if worst <= target else 1

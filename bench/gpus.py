"""`rdev gpus` over 9 answering hosts and a dead one against `rdev gpus` over one answering host: the
hosts are asked at the same time and the dead one is given up after the connect timeout (3 s), so the
whole report should take about as long as one host (target <= 1.5x).

    .venv/bin/python bench/gpus.py [--rounds 5] [--delay 1.0]

Nine private sshd servers on loopback (colab_side.serve, tunnel direct), each with the nvidia-smi
stand-in from tests/ on its session PATH, made slow with `delay` seconds per nvidia-smi call (rdev
calls it twice per host). They are registered as h1..h9 with `rdev connect` in a throwaway HOME, and
`dead` as a loopback port that takes TCP connections and never says a word (a machine hung mid-reboot:
the worst dead host, since a refused port fails at once). One warm-up `rdev gpus` opens every shared
ssh connection first, so all timings reuse them. Each run also notes when the last answering host's
lines arrived, as they stream out. All servers and the temporary folder are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

HOSTS = [f"h{i}" for i in range(1, 10)]
DEAD = "dead"
TARGET = 1.5


def throwaway_home() -> Path:
    """Point HOME, XDG_* and the keyring at a new short temp folder (ControlPath sockets need short paths)."""
    root = Path(tempfile.mkdtemp(prefix="rb", dir="/tmp"))
    home = root / "h"
    home.mkdir(mode=0o700)
    os.environ["HOME"] = str(home)
    for var, sub in (("XDG_CONFIG_HOME", "cfg"), ("XDG_STATE_HOME", "state"), ("XDG_CACHE_HOME", "cache"),
                     ("XDG_DATA_HOME", "data")):
        os.environ[var] = str(root / sub)
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"
    return root


def rdev(*args: str) -> subprocess.CompletedProcess:
    """`rdev ARGS...` as a child process, failing loudly."""
    result = subprocess.run([sys.executable, "-m", "client_side", *args], check=False, capture_output=True, text=True, cwd=REPO,
                            timeout=300)
    if result.returncode != 0:
        raise SystemExit(f"rdev {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def timed(*args: str) -> tuple[float, float, float]:
    """`rdev ARGS...` read as it streams: seconds in all, and when the first and the last answering host's
    lines arrived."""
    start = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "client_side", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    assert process.stdout is not None
    answered = [time.monotonic() - start for line in process.stdout if line.split(" ", 1)[0] in HOSTS]
    if process.wait(timeout=300) != 0:
        raise SystemExit(f"rdev {' '.join(args)} failed ({process.returncode})")
    return time.monotonic() - start, min(answered, default=0.0), max(answered, default=0.0)


def close_masters(home: Path) -> None:
    """End the shared ssh connections rdev's ssh left running."""
    sockets = home / ".ssh" / "rdev" / "cm"
    for sock in sockets.glob("*") if sockets.exists() else []:
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"], check=False, capture_output=True, timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds each nvidia-smi call sleeps")
    args = parser.parse_args()
    root = throwaway_home()
    # Imported after HOME is set, so nothing reads the real one.
    from colab_side import Server, serve
    from tests.stand_ins.nvidia_smi import install

    plain_path = os.environ["PATH"]
    servers: list[Server] = []
    silent = socket.socket()  # the dead host: the kernel completes its handshakes, nobody ever accepts
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        key = rdev("key").stdout.strip()
        for number, name in enumerate(HOSTS):
            uuid = f"GPU-00000000-0000-4000-8000-{number:012d}"
            bin_dir = install(root / f"bin-{name}", {"delay": args.delay, "gpus": [
                {"index": 0, "uuid": uuid, "name": "NVIDIA A100-SXM4-80GB", "memory.used": 4, "memory.total": 81920,
                 "utilization.gpu": 0}], "processes": []}).parent
            os.environ["PATH"] = f"{bin_dir}{os.pathsep}{plain_path}"  # the PATH this host's sessions get
            servers.append(serve(tunnel="direct", authorized_keys=[key], state_dir=root / f"srv-{name}",
                                 keep_alive=False, out=lambda line: None))
            os.environ["PATH"] = plain_path
            rdev("connect", name, "--ticket", servers[-1].ticket, "--no-open")
        rdev("add", DEAD, "--host", "127.0.0.1", "--port", str(silent.getsockname()[1]))
        warm, _, _ = timed("gpus")
        report = rdev("gpus").stdout
        if report.count("CUDA_VISIBLE_DEVICES=0") != len(HOSTS) or "no answer from dead." not in report:
            raise SystemExit(f"not every host answered, or the dead one did:\n{report}")
        all_runs = [timed("gpus") for _ in range(args.rounds)]
        one_runs = [timed("gpus", HOSTS[0]) for _ in range(args.rounds)]
    finally:
        os.environ["PATH"] = plain_path
        silent.close()
        close_masters(root / "h")
        for server in servers:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)

    all_times, one_times = [run[0] for run in all_runs], [run[0] for run in one_runs]
    every, one = statistics.median(all_times), statistics.median(one_times)
    first, last = (statistics.median(run[i] for run in all_runs) for i in (1, 2))
    print(f"nvidia-smi delay {args.delay:.1f} s per call (2 calls per host); warm-up over {len(HOSTS)} hosts + "
          f"{DEAD} {warm:.2f} s")
    print(f"rdev gpus ({len(HOSTS)} answering hosts + {DEAD}): median {every:.2f} s  "
          f"[{', '.join(f'{t:.2f}' for t in all_times)}]; answers on screen from {first:.2f} s to {last:.2f} s")
    print(f"rdev gpus {HOSTS[0]} (1 host): median {one:.2f} s  [{', '.join(f'{t:.2f}' for t in one_times)}]")
    ratio = every / one
    print(f"ratio {ratio:.2f}x (target <= {TARGET}x): {'met' if ratio <= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()

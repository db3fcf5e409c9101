"""`python -m colab_side serve` up to its ticket, against a bare `sshd -D` with a fresh host key; and the idle
memory of a served runtime against a bare sleeping Python.

Start: the time from launching `serve --tunnel direct --no-keep-alive` to the ticket on its stdout, against the
time from `ssh-keygen` making a host key to a bare `sshd -D` on that key answering on its port: what serve must do
at the least. The runs interleave, and the medians are compared. Target: <= 3x.

Memory: the resident set of `serve --tunnel direct` waiting in the foreground (its keep-alive loop) once its
ticket is out, against `python3 -c 'import time; time.sleep(60)'`. Target: <= 22 MiB.

    .venv/bin/python bench/serve.py [--runs N]
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
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

from colab_side.sshd import find_sshd, free_port

START_TARGET = 3.0
RSS_TARGET_MIB = 22.0
# Without site (-S): the runtime side is standard library only, and neither this checkout's editable-install hook nor
# the .pth files of whatever Python runs it are rdev's start. Both sides of the memory ratio run the same way.
PYTHON = [sys.executable, "-S"]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEmAzBq0bq5L1rRzjlq4Ev7P0xZ1s6pVBrH8wFJcwz0q bench"


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.settimeout(1)
            return conn.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def bare_sshd(sshd: str, root: Path) -> float:
    """Seconds from a fresh host key to a bare sshd answering; polled as tightly as a busy loop allows."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(mode=0o700)
    port = free_port("127.0.0.1")
    start = time.perf_counter()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "host")], check=True)
    process = subprocess.Popen([sshd, "-D", "-f", "/dev/null", "-h", str(root / "host"), "-p", str(port),
                                "-o", "ListenAddress=127.0.0.1", "-o", f"PidFile={root}/pid"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not _answers(port):
            if process.poll() is not None:
                raise SystemExit("bench: the bare sshd did not start")
            time.sleep(0.0005)
        return time.perf_counter() - start
    finally:
        process.kill()
        process.wait()


def serve_to_ticket(root: Path) -> float:
    """Seconds from launching serve to its ticket line."""
    state = root / "state"
    start = time.perf_counter()
    process = subprocess.Popen([*PYTHON, "-m", "colab_side", "serve", "--tunnel", "direct", "--authorized-key",
                                KEY, "--state-dir", str(state), "--no-keep-alive"], cwd=REPO, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if line.startswith("rdev1."):
                return time.perf_counter() - start
        raise SystemExit("bench: serve printed no ticket")
    finally:
        process.wait(timeout=60)
        subprocess.run([sys.executable, "-m", "colab_side", "stop", "--state-dir", str(state)], cwd=REPO, check=False,
                       capture_output=True)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"bench: no VmRSS for {pid}")


def idle_rss(root: Path) -> tuple[float, float]:
    """MiB resident in a serving runtime waiting in the foreground, and in a bare sleeping Python."""
    state = root / "idle"
    served = subprocess.Popen([*PYTHON, "-m", "colab_side", "serve", "--tunnel", "direct", "--authorized-key",
                               KEY, "--state-dir", str(state)], cwd=REPO, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
    bare = subprocess.Popen([*PYTHON, "-c", "import time; time.sleep(60)"])
    assert served.stdout is not None
    try:
        next(line for line in served.stdout if line.startswith("rdev1."))
        time.sleep(2)  # past the start, into the keep-alive loop
        return rss_mib(served.pid), rss_mib(bare.pid)
    finally:
        for process in (served, bare):
            process.kill()
            process.wait()
        subprocess.run([sys.executable, "-m", "colab_side", "stop", "--state-dir", str(state)], cwd=REPO, check=False,
                       capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    runs = parser.parse_args().runs
    sshd = find_sshd()
    if sshd is None:
        print("bench: no sshd on this machine; run 'bash scripts/setup.sh' first.")
        return 1
    # As pip compiles an installed package; the cell's zip is imported from compiled-on-first-use files too.
    compileall.compile_dir(str(REPO), quiet=1, rx=re.compile(r"[/\\](\.venv|tests|bench|build)[/\\]"))
    root = Path(tempfile.mkdtemp(prefix="rdev-bench-"))
    os.chmod(root, 0o700)
    try:
        ours, bare = [], []
        serve_to_ticket(root)  # warm the page cache for both
        for _ in range(runs):
            ours.append(serve_to_ticket(root))
            bare.append(bare_sshd(sshd, root / "bare"))
        ratio = statistics.median(ours) / statistics.median(bare)
        print(f"serve to ticket  {statistics.median(ours) * 1000:6.1f} ms   bare sshd -D with a fresh key "
              f"{statistics.median(bare) * 1000:6.1f} ms   ratio {ratio:.2f}x (target <= {START_TARGET:g}x)")
        served, sleeping = idle_rss(root)
        print(f"idle serve RSS   {served:6.1f} MiB   bare sleeping python {sleeping:6.1f} MiB   "
              f"ratio {served / sleeping:.2f}x (target <= {RSS_TARGET_MIB:g} MiB)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if ratio <= START_TARGET and served <= RSS_TARGET_MIB else 1


if __name__ == "__main__":
    sys.exit(main())

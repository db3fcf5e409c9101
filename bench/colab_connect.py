"""`rdev connect NAME --colab-session S` against a plain `rdev connect NAME --ticket T`: rdev's own work.

Both connect a fresh laptop (its own HOME, rdev's key already made) to a real sshd on loopback,
interleaved, and the medians are compared. The Colab route runs Google's real colab CLI (from
.venv-colab, see scripts/setup.sh) against the tests' stand-in for Colab's runtime proxy, with
the session already running (a runtime's start is Google's, not rdev's). The CLI's own start and
bridge are Google's too: they are measured in the same run as the time `ssh` takes through
`colab ssh --proxy-mode` over the time it takes straight to the same sshd, and taken off before the
"local work" ratio is formed. Target: local work <= 1.5x the plain connect.

    .venv/bin/python bench/colab_connect.py [--runs N]
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

from tests.stand_ins.colab_runtime import ColabProxy, Runtime, colab_binary, quiet_settings, write_session

TARGET = 1.5


def laptop(root: Path, name: str) -> dict[str, str]:
    """The environment of a fresh laptop whose rdev key already exists (copied from `root/keys`)."""
    home = root / name / "h"
    home.mkdir(parents=True, mode=0o700)
    shutil.copytree(root / "keys", home / ".ssh" / "rdev")
    return {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(root / name / "cfg"),
            "XDG_STATE_HOME": str(root / name / "state"), "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
            "no_proxy": "127.0.0.1,localhost", "RDEV_COLAB": str(colab_binary())}


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, check=False, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=REPO)
    took = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv[2:])} failed: {result.stderr.strip()}")
    return took


def close_master(env: dict[str, str], name: str) -> None:
    subprocess.run(["ssh", "-F", f"{env['HOME']}/.ssh/config", "-O", "exit", name], check=False, env=env, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    root = Path(tempfile.mkdtemp(prefix="rb", dir="/tmp"))
    rdev = [sys.executable, "-m", "client_side"]
    first = laptop_keys(root, rdev)
    public = (root / "keys" / "id_ed25519.pub").read_text().strip()
    runtime = Runtime(root / "runtime", "gpu-t4-s-bench")
    runtime.start()
    runtime.authorize(public)
    proxy = ColabProxy(runtime)
    served = subprocess.run([*rdev[:1], "-m", "colab_side", "serve", "--authorized-key", public, "--state-dir",
                             str(root / "server"), "--no-keep-alive"], check=False, env=first, capture_output=True, text=True, cwd=REPO)
    ticket = next(line for line in served.stdout.splitlines() if line.startswith("rdev1."))
    plain, colab, through_cli, straight = [], [], [], []
    try:
        for run in range(runs):
            env = laptop(root, f"plain{run}")
            plain.append(timed([*rdev, "connect", "box", "--ticket", ticket, "--no-open"], env))
            close_master(env, "box")
            env = laptop(root, f"colab{run}")
            quiet_settings(Path(env["HOME"]))
            write_session(Path(env["HOME"]), "s1", proxy, runtime.endpoint)
            colab.append(timed([*rdev, "connect", "colab", "--colab-session", "s1", "--no-open"], env))
            close_master(env, "colab")
            through_cli.append(timed(ssh_to(runtime, env, proxied=True), env))
            straight.append(timed(ssh_to(runtime, env, proxied=False), env))
    finally:
        proxy.close()
        runtime.stop()
        subprocess.run([*rdev[:1], "-m", "colab_side", "stop", "--state-dir", str(root / "server")], check=False, capture_output=True,
                       cwd=REPO)
        shutil.rmtree(root, ignore_errors=True)
    cli = statistics.median(through_cli) - statistics.median(straight)
    ours, base = statistics.median(colab), statistics.median(plain)
    local = (ours - cli) / base
    print(f"plain connect (ticket)        {base * 1000:7.0f} ms")
    print(f"connect --colab-session       {ours * 1000:7.0f} ms  ({ours / base:.2f}x, all of it)")
    print(f"Google's CLI start and bridge {cli * 1000:7.0f} ms  (ssh through it, minus ssh straight to the sshd)")
    print(f"local work ratio {local:.2f} (target <= {TARGET})")
    return 0 if local <= TARGET else 1


def laptop_keys(root: Path, rdev: list[str]) -> dict[str, str]:
    """Make rdev's key pair once, in `root/keys`; every laptop starts with a copy."""
    home = root / "keymaker" / "h"
    home.mkdir(parents=True, mode=0o700)
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(root / "keymaker" / "cfg")}
    subprocess.run([*rdev, "key"], env=env, capture_output=True, check=True, cwd=REPO)
    shutil.copytree(home / ".ssh" / "rdev", root / "keys")
    return env


def ssh_to(runtime: Runtime, env: dict[str, str], *, proxied: bool) -> list[str]:
    """One command on the runtime's sshd with rdev's key: through Google's CLI, or straight to it."""
    key = f"{env['HOME']}/.ssh/rdev/id_ed25519"
    route = [f"ProxyCommand={colab_binary()} ssh --proxy-mode -s s1 -i {key}"] if proxied else [f"Port={runtime.port}"]
    return ["ssh", "-F", "/dev/null", "-o", route[0], "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", key, "root@127.0.0.1", "true"]


if __name__ == "__main__":
    sys.exit(main())

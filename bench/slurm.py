"""`rdev connect hpc` with rdev's job already running, against a plain `rdev connect` of a password host;
and, for a first connect, the time from submitting the job to a working ssh against the job's own start.

Both connects go to the same login node (a real private sshd with a password, rdev's key already
installed) on this machine; the job runs on a real one-node Slurm (tests/slurm_cluster.py). Runs are
interleaved and the medians compared. Needs root and what `bash scripts/setup.sh` installs.
Target: <= 1.5x.

    .venv/bin/python bench/slurm.py [--runs N]
"""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._setup import arguments, needs_root, ratio, rdev as timed_rdev, sandbox, verdict
from tests.slurm_cluster import SlurmCluster
from tests.stand_ins.login_host import PASSWORD, login_host

TARGET = 1.5


def rdev(env: dict[str, str], *args: str, password: bool = False) -> float:
    return timed_rdev(env, *args, stdin=PASSWORD + "\n" if password else None)


def main() -> int:
    runs = arguments(__doc__, 7).runs
    if not needs_root("a private Slurm and a test user"):
        return 1
    root, home, env = sandbox()
    root.chmod(0o755)  # munge's user and the job's user pass through it to the cluster's folder
    cluster = SlurmCluster()
    cluster.start(root / "slurm")
    try:
        with login_host(home, shell="/bin/bash", setenv={"SLURM_CONF": str(cluster.conf)}) as login:
            where = ["--host", "127.0.0.1", "--port", str(login.port), "--user", login.user]
            rdev(env, "add", "gpu1", *where)
            rdev(env, "add", "hpc", *where, "--slurm", "--partition=gpu --gres=gpu:1 --time=00:30:00")
            rdev(env, "connect", "gpu1", "--password-stdin", "--no-open", password=True)
            submitted = time.time()
            rdev(env, "connect", "hpc", "--password-stdin", "--no-open", password=True)
            ready = time.time()
            job = cluster.run("squeue", "--noheader", "--format=%i").stdout.split()[0]
            fields = dict(f.split("=", 1) for f in cluster.run("scontrol", "show", "job", job).stdout.split() if "=" in f)
            started = datetime.fromisoformat(fields["StartTime"]).timestamp()
            plain, ours = [], []
            for _ in range(runs):
                plain.append(rdev(env, "connect", "gpu1", "--no-open"))
                ours.append(rdev(env, "connect", "hpc", "--no-open"))
            cluster.run("scancel", "--user", login.user, check=False)
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(f"first connect (login node, runtime install, submit, queue, the job's sshd, ssh): {ready - submitted:5.2f} s; "
          f"Slurm started the job {max(0.0, started - submitted):5.2f} s into it (its StartTime, whole seconds)")
    print(f"plain connect (password host) {statistics.median(plain) * 1000:6.0f} ms")
    print(f"connect hpc (running job)     {statistics.median(ours) * 1000:6.0f} ms")
    return verdict(ratio(ours, plain), TARGET)

if __name__ == "__main__":
    sys.exit(main())

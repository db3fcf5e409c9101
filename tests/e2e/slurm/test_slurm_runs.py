"""`rdev run` on a Slurm cluster, end to end against the real Slurm (tests/slurm_cluster.py): a run is a batch job of
its own with its own log in ~/.rdev/runs (the home is shared by the login and compute nodes, as on real clusters), it
outlives `rdev stop` of the interactive job, and `rdev runs`, `logs` and `kill` reach it through the login node while
no interactive job runs."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.commands.test_runs import rdev_runs
from tests.conftest import read_or_empty
from tests.e2e.slurm.test_slurm import login_node, queue
from tests.e2e.slurm.test_slurm_scope import CPU_ONLY, add, connect
from tests.e2e.work.test_runs import followed_to_its_end
from tests.slurm_cluster import SlurmCluster
from tests.stand_ins.login_host import PasswordHost

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a private Slurm and a test user need root")


@pytest.fixture
def hpc(home: Path, rdev, slurm: SlurmCluster) -> Iterator[PasswordHost]:
    """A cluster `hpc` whose jobs take no GPU (the node's one GPU is left for runs), connected once so that the login
    node has rdev's key; its interactive job runs."""
    with login_node(home, slurm) as login:
        add(rdev, "hpc", login, CPU_ONLY)
        result = connect(rdev, "hpc")
        assert result.returncode == 0, result.stderr
        yield login


def until(check: Callable[[], object], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.2)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def log_of(login: PasswordHost, run: str) -> str:
    return read_or_empty(login.home / ".rdev" / "runs" / f"{run}.log").decode(errors="replace")


def row(listing: str, run: str) -> list[str]:
    """A run's row of `rdev runs`: HOST RUN STATE [STATUS] DAY TIME DURATION GPUS LAST..., split at white space."""
    return next(line.split() for line in listing.splitlines() if line.split()[1:2] == [run])


def test_a_run_is_a_batch_job_of_its_own_that_outlives_the_interactive_job(rdev, slurm: SlurmCluster,
                                                                         hpc: PasswordHost) -> None:
    [interactive] = queue(slurm, hpc)
    said = ok(rdev_runs("run", "hpc", "--name", "train", "--gpus", "1", "--slurm", "--time=00:07:00", "--", "sh", "-c",
                        'echo "job=$SLURM_JOB_ID gpus=$CUDA_VISIBLE_DEVICES"; '
                        'while [ ! -e stop ]; do echo tick; sleep 0.3; done; echo done; exit 3'))
    [job] = set(queue(slurm, hpc)) - {interactive}
    assert said.startswith(f"Submitted train on hpc as Slurm job {job} (")
    assert "It outlives 'rdev stop hpc'." in said
    # The cluster's options, then --slurm's (the later --time wins), then --gpus.
    shown = slurm.run("squeue", "--noheader", f"--jobs={job}", "--format=%j|%l").stdout.strip()
    assert shown == "rdev-run:train|7:00", shown
    until(lambda: "tick" in log_of(hpc, "train"), what="the run's job starts")
    assert f"job={job} gpus=0" in log_of(hpc, "train")

    stopped = ok(rdev("stop", "hpc"))
    assert f"Cancelled Slurm job {interactive} " in stopped
    until(lambda: queue(slurm, hpc) == [job], 30, "the interactive job ends")
    size = len(log_of(hpc, "train"))
    until(lambda: len(log_of(hpc, "train")) > size + 20, 20, "the run goes on writing")

    listing = ok(rdev_runs("runs"))  # all hosts: the run is hpc's, and not listed again under hpc-login
    assert [line.split()[0] for line in listing.splitlines()[1:]] == ["hpc"]
    assert row(listing, "train")[2] == "running" and row(listing, "train")[6] == "0"  # STATE, GPUS

    out, err = followed_to_its_end("hpc", "train", hpc.home / "stop")
    assert out.splitlines()[0] == f"job={job} gpus=0" and out.splitlines()[-1] == "done"
    assert err.strip().startswith("rdev: train on hpc: exited 3, for ")
    until(lambda: job not in queue(slurm, hpc), 30, "the run's job ends")
    assert row(ok(rdev_runs("runs", "hpc")), "train")[2:4] == ["exited", "3"]


def test_kill_cancels_a_running_or_pending_runs_job_with_no_interactive_job(rdev, slurm: SlurmCluster,
                                                                             hpc: PasswordHost) -> None:
    ok(rdev("stop", "hpc"))
    until(lambda: not queue(slurm, hpc), 30, "the interactive job ends")
    # A child that ignores SIGTERM: Slurm's SIGKILL after its KillWait ends it.
    ok(rdev_runs("run", "hpc", "--name", "k", "--", "sh", "-c",
                 "(trap '' TERM HUP; exec sleep 4242) & echo up; while :; do sleep 1; done"))
    until(lambda: "up" in log_of(hpc, "k"), what="the run's job starts")
    [job] = queue(slurm, hpc)
    said = ok(rdev_runs("kill", "hpc", "k"))
    assert said.strip() == f"Killed k on hpc; its Slurm job {job} has ended."
    assert queue(slurm, hpc) == [] and not slurm.job_processes(job)
    assert row(ok(rdev_runs("runs", "hpc")), "k")[2] == "killed"

    # A job that ends without its wrapper's word (SIGKILL to it) leaves a run that is lost, not running for ever.
    ok(rdev_runs("run", "hpc", "--name", "l", "--", "sleep", "300"))
    until(lambda: (hpc.home / ".rdev" / "runs" / "l.json").read_text().count('"running"'), what="the run starts")
    [job] = queue(slurm, hpc)
    slurm.run("scancel", "--batch", "--signal=KILL", job)
    until(lambda: not queue(slurm, hpc), 30, "the job ends")
    assert row(ok(rdev_runs("runs", "hpc")), "l")[2] == "lost"

    # Two GPUs: only the spare node has them, which never comes up, so the job pends.
    said = ok(rdev_runs("run", "hpc", "--name", "p", "--gpus", "2", "--", "touch", "ran"))
    [job] = queue(slurm, hpc)
    assert f"Submitted p on hpc as Slurm job {job} (pending)" in said
    assert row(ok(rdev_runs("runs", "hpc")), "p")[2] == "pending"
    ok(rdev_runs("logs", "hpc", "p"))
    attached = rdev_runs("attach", "hpc", "p")
    assert attached.returncode == 1 and "p on hpc is a Slurm batch job" in attached.stderr
    assert ok(rdev_runs("kill", "hpc", "p")).strip() == f"Killed p on hpc; its Slurm job {job} has ended."
    assert queue(slurm, hpc) == [] and not (hpc.home / "ran").exists()


def test_bad_slurm_options_are_refused_and_nothing_is_queued(rdev, slurm: SlurmCluster, hpc: PasswordHost) -> None:
    before = queue(slurm, hpc)
    for bad in ("--job-name=x", "--output=/tmp/x", "--wrap=id", "; touch /tmp/x", "--clusters=other", "-M other",
                "--comment=x", "-p", "'unclosed"):
        result = rdev_runs("run", "hpc", "--name", "bad", "--slurm", bad, "--", "touch", "made")
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, (bad, result.stderr)
        assert "Traceback" not in result.stderr
    # One sbatch itself refuses: one sentence, exit 1, and no record left.
    result = rdev_runs("run", "hpc", "--name", "bad", "--slurm", "--partition=nowhere", "--", "touch", "made")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "sbatch failed (" in result.stderr and "Traceback" not in result.stderr
    assert queue(slurm, hpc) == before and not (hpc.home / "made").exists()
    assert not list((hpc.home / ".rdev" / "runs").glob("*.json"))

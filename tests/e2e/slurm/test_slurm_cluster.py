"""The test Slurm itself (tests/slurm_cluster.py): a real slurmctld, slurmd and munged of the tests' own, which
root and an ordinary user submit GPU jobs to, see in the queue and cancel, leaving no process behind."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.slurm_cluster import SlurmCluster

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a private Slurm and a test user need root")

USER = "rdevslurm"
JOB = 'echo "$CUDA_VISIBLE_DEVICES $SLURM_JOB_ID" > OUT; sleep 30'


@pytest.fixture(scope="module")
def user() -> Iterator[str]:
    """An ordinary user with a home of its own (created if missing, and then removed at the end)."""
    try:
        pwd.getpwnam(USER)
        created = False
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", USER], check=True)
        created = True
    yield USER
    if created:
        subprocess.run(["pkill", "-KILL", "-u", USER], check=False, capture_output=True)
        subprocess.run(["userdel", "--remove", USER], check=False, capture_output=True)


@pytest.fixture(params=["root", USER])
def submitter(request: pytest.FixtureRequest, user: str, tmp_path: Path) -> Iterator[tuple[str | None, Path]]:
    """Who submits (None = root) and a folder of theirs to submit from."""
    if request.param == "root":
        yield None, tmp_path
        return
    entry = pwd.getpwnam(user)
    folder = Path(entry.pw_dir) / f"job-{uuid.uuid4().hex[:8]}"
    folder.mkdir(mode=0o700)
    os.chown(folder, entry.pw_uid, entry.pw_gid)
    yield user, folder
    shutil.rmtree(folder, ignore_errors=True)


def test_gpu_job_runs_sees_its_gpu_and_is_cancelled(slurm: SlurmCluster,
                                                   submitter: tuple[str | None, Path]) -> None:
    who, folder = submitter
    job = slurm.run("sbatch", "--parsable", "--gres=gpu:1", "--wrap", JOB, user=who, cwd=folder).stdout.strip()
    assert job.isdigit(), job

    assert slurm.wait_state(job, "RUNNING", timeout=10) == "RUNNING", slurm.logs()
    out = folder / "OUT"
    for _ in range(100):
        if out.exists() and out.read_text().endswith("\n"):
            break
        time.sleep(0.05)
    devices, job_id = out.read_text().split()
    assert devices == "0" and job_id == job  # the GPU resource set CUDA_VISIBLE_DEVICES

    queue = slurm.run("squeue", "--noheader", "--format=%i|%u|%T|%b|%N", user=who).stdout.split()
    assert f"{job}|{who or 'root'}|RUNNING|gres:gpu:1|{slurm.node}" in queue
    details = slurm.run("scontrol", "show", "job", job, user=who).stdout
    assert re.search(r"\bStartTime=\d{4}-\d\d-\d\dT[\d:]+", details), details
    assert slurm.job_processes(job), "the job's processes are not found by their environment"

    slurm.run("scancel", job, user=who)
    assert slurm.wait_state(job, "CANCELLED", "", timeout=10) in ("CANCELLED", ""), slurm.job_state(job)
    for _ in range(100):
        if not slurm.job_processes(job):
            break
        time.sleep(0.05)
    assert not slurm.job_processes(job), "scancel left the job's sleep running"


def test_more_gpus_than_the_node_has_stay_pending_with_a_reason(slurm: SlurmCluster,
                                                                user: str) -> None:
    home = Path(pwd.getpwnam(user).pw_dir)
    job = slurm.run("sbatch", "--parsable", f"--gres=gpu:{slurm.gpus + 1}", "--wrap", "sleep 30", user=user,
                    cwd=home).stdout.strip()
    try:
        assert slurm.wait_state(job, "PENDING", timeout=5) == "PENDING"
        time.sleep(1.5)  # a scheduler pass or more: still pending
        reason = slurm.run("squeue", "--noheader", f"--jobs={job}", "--format=%T|%r", user=user).stdout.strip()
        print(f"pending job {job}: {reason}")
        state, why = reason.split("|", 1)
        assert state == "PENDING" and why and why != "None", reason
    finally:
        slurm.run("scancel", job, user=user)
    assert slurm.wait_state(job, "CANCELLED", "", timeout=10) in ("CANCELLED", "")


def test_more_gpus_than_any_node_has_are_refused(slurm: SlurmCluster, user: str) -> None:
    result = slurm.run("sbatch", "--parsable", f"--gres=gpu:{slurm.spare_gpus + 1}", "--wrap", "true", user=user,
                       cwd=Path(pwd.getpwnam(user).pw_dir), check=False)
    assert result.returncode != 0 and "node configuration is not available" in result.stderr, result


def test_a_client_needs_only_its_environment(slurm: SlurmCluster) -> None:
    env = slurm.env()
    assert env["SLURM_CONF"] == str(slurm.conf) and slurm.conf.is_file()
    assert oct(slurm.conf.parent.stat().st_mode & 0o777) == "0o755"
    nodes = subprocess.run(["sinfo", "--noheader", "--Node", "--format=%N|%G|%t"], env={**os.environ, **env},
                           capture_output=True, text=True, check=True).stdout.split()
    assert [line.rsplit("|", 1)[0] for line in nodes] == [f"{slurm.node}|gpu:{slurm.gpus}"], nodes
    assert nodes[0].rsplit("|", 1)[1] in ("idle", "mix", "alloc", "comp"), nodes

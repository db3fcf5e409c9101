"""Which Slurm jobs are rdev's, end to end against the real Slurm: `rdev connect` and `rdev stop` touch the jobs this
laptop submitted (recorded in its registry, or marked with its key), never a job of another rdev host behind the same
login node, nor a job named rdev-NAME that came from elsewhere (another laptop, or submitted by hand)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ssh_through
from tests.e2e.slurm.test_slurm import OPTIONS, login_node, queue
from tests.slurm_cluster import SlurmCluster
from tests.stand_ins.login_host import PASSWORD, PasswordHost

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a private Slurm and a test user need root")

# Without a GPU: the test node has one, and two jobs run here side by side.
CPU_ONLY = "--partition=gpu --time=00:10:00"
# Long enough for a job to start here; short enough that a connect waiting on a job that never writes a ticket (the
# mistake these tests guard against) fails the test in seconds, not in rdev's default ten minutes.
WAIT = "60"


@pytest.fixture
def login(home: Path, slurm: SlurmCluster) -> Iterator[PasswordHost]:
    """One login node in front of the cluster (its teardown cancels every job of its user)."""
    with login_node(home, slurm) as server:
        yield server


def add(rdev, name: str, login: PasswordHost, options: str) -> None:
    result = rdev("add", name, "--host", "127.0.0.1", "--port", str(login.port), "--user", login.user,
                  "--slurm", options)
    assert result.returncode == 0, result.stderr


def connect(rdev, name: str) -> subprocess.CompletedProcess:
    return rdev("connect", name, "--password-stdin", "--no-open", "--wait", WAIT, input=PASSWORD + "\n")


def job_of(slurm: SlurmCluster, home: Path, name: str) -> str:
    """The job whose node `name` reaches now, as its own sessions see it."""
    remote = ssh_through(home, name, 'echo "$SLURM_JOB_ID"')
    assert remote.returncode == 0, remote.stderr
    return remote.stdout.strip()


def test_two_clusters_behind_one_login_node_keep_to_their_own_jobs(home: Path, rdev, slurm: SlurmCluster,
                                                                   login: PasswordHost) -> None:
    add(rdev, "gpus", login, OPTIONS)
    add(rdev, "cpus", login, CPU_ONLY)
    assert connect(rdev, "gpus").returncode == 0
    [first] = queue(slurm, login)
    result = connect(rdev, "cpus")
    assert result.returncode == 0, result.stderr
    [second] = set(queue(slurm, login)) - {first}
    assert f"submitted Slurm job {second}" in result.stdout and "named rdev-" not in result.stdout

    again = connect(rdev, "gpus")  # its own job, not the newer one of the other host
    assert again.returncode == 0, again.stderr
    assert "submitted Slurm job" not in again.stdout and "named rdev-" not in again.stdout
    assert job_of(slurm, home, "gpus") == first and job_of(slurm, home, "cpus") == second

    stopped = rdev("stop", "gpus")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == f"Cancelled Slurm job {first} of gpus."
    slurm.wait_state(first, "", "CANCELLED", "COMPLETED")
    assert queue(slurm, login) == [second] and job_of(slurm, home, "cpus") == second
    assert rdev("stop", "cpus").stdout.strip() == f"Cancelled Slurm job {second} of cpus."


def test_a_job_of_the_same_name_from_elsewhere_is_neither_reused_nor_cancelled(home: Path, rdev, slurm: SlurmCluster,
                                                                               login: PasswordHost) -> None:
    # Another laptop of the same user, or the user by hand: a job named as rdev's, which this laptop never submitted.
    outside = slurm.run("sbatch", "--parsable", "--job-name=rdev-hpc", "--time=00:10:00", "--output=/dev/null",
                        "--wrap=sleep 600", user=login.user, cwd=login.home).stdout.strip().split(";")[0]
    assert slurm.wait_state(outside, "RUNNING") == "RUNNING"
    add(rdev, "hpc", login, CPU_ONLY)
    note = (f"hpc: Slurm job {outside} is named rdev-hpc too but not from rdev on this laptop (another computer's, or "
            f"submitted by hand): rdev leaves it alone; 'scancel {outside}' on the login node ends it.")

    result = connect(rdev, "hpc")
    assert result.returncode == 0, result.stderr
    [ours] = set(queue(slurm, login)) - {outside}
    assert f"submitted Slurm job {ours}" in result.stdout and note in result.stdout.splitlines()
    assert job_of(slurm, home, "hpc") == ours
    assert f"slurm job {ours} on" in rdev("list").stdout

    again = connect(rdev, "hpc")
    assert again.returncode == 0, again.stderr
    assert "submitted Slurm job" not in again.stdout and sorted(queue(slurm, login)) == sorted([ours, outside])

    stopped = rdev("stop", "hpc")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.splitlines() == [f"Cancelled Slurm job {ours} of hpc.", note]
    slurm.wait_state(ours, "", "CANCELLED", "COMPLETED")
    assert queue(slurm, login) == [outside] and slurm.job_state(outside) == "RUNNING"
    # Nothing of this laptop's runs any more; the other job is still named, and still left alone.
    assert rdev("stop", "hpc").stdout.splitlines() == ["No Slurm job of rdev's runs for hpc.", note]
    assert queue(slurm, login) == [outside]

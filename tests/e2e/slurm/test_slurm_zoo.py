"""A cluster as it is: the login node and the compute node in network namespaces of their own (the zoo), slurmctld
beside the login node's sshd and slurmd on the compute node, which only the login node reaches. `rdev connect hpc`
gets into the job's node through the login node, by ProxyJump where the login node forwards and through rdev's
bridge where it refuses to; the editor's connections share one master either way."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ssh_through
from tests.e2e.slurm.test_slurm import OPTIONS, connect, queue
from tests.slurm_cluster import Placement, SlurmCluster, missing_binaries
from tests.stand_ins.login_host import login_host
from tests.stand_ins.zoo import Namespace, Zoo, zoo

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces, a private Slurm and a test user need root")


@dataclass
class Cluster:
    hosts: Zoo
    login: Namespace
    compute_address: str
    slurm: SlurmCluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if missing := missing_binaries():
        pytest.fail(f"Slurm is not installed ({', '.join(missing)} missing): run bash scripts/setup.sh")
    with zoo() as hosts:
        login, compute = hosts.namespace("login"), hosts.namespace("compute")
        login_address, compute_address = hosts.link(login, compute)
        # On the compute node its own name resolves to its address: where the job's sshd listens.
        hostname = socket.gethostname()
        hosts.names(compute, {hostname: compute_address, hostname.split(".")[0]: compute_address})
        slurm = SlurmCluster(Placement(login, compute, login_address, compute_address))
        root = Path(tempfile.mkdtemp(prefix="slurmzoo", dir="/tmp"))
        try:
            slurm.start(root)
            yield Cluster(hosts, login, compute_address, slurm)
        finally:
            slurm.stop()
            shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("forwarding", ["yes", "no"])
def test_the_job_on_a_node_only_the_login_node_reaches(home: Path, rdev, cluster: Cluster, forwarding: str) -> None:
    with login_host(home, shell="/bin/bash", netns=cluster.login, setenv={"SLURM_CONF": str(cluster.slurm.conf)},
                    extra=f"AllowTcpForwarding {forwarding}\n") as login:
        try:
            port = cluster.hosts.portal(cluster.login, "127.0.0.1", 22)
            added = rdev("add", "hpc", "--host", "127.0.0.1", "--port", str(port), "--user", login.user,
                         "--slurm", OPTIONS)
            assert added.returncode == 0, added.stderr
            result = connect(rdev)
            assert result.returncode == 0, result.stderr
            assert ("hpc-login does not allow TCP forwarding" in result.stdout) == (forwarding == "no"), result.stdout
            [job] = queue(cluster.slurm, login)
            # The session runs in the job, on the compute node: its only address is its end of the link.
            remote = ssh_through(home, "hpc", 'echo "$SLURM_JOB_ID"; hostname -I')
            assert remote.returncode == 0, remote.stderr
            assert remote.stdout.split() == [job, cluster.compute_address]
            with ThreadPoolExecutor(5) as pool:
                results = list(pool.map(lambda _: ssh_through(home, "hpc", "true"), range(5)))
            assert [r.returncode for r in results] == [0] * 5, [r.stderr for r in results]
            assert login.bridges() == (1 if forwarding == "no" else 0)  # one master, so one bridge at most

            stopped = rdev("stop", "hpc")
            assert stopped.returncode == 0 and f"Cancelled Slurm job {job}" in stopped.stdout, stopped.stderr
            assert cluster.slurm.wait_state(job, "", "CANCELLED", "COMPLETED") in ("", "CANCELLED", "COMPLETED")
        finally:
            cluster.slurm.run("scancel", f"--user={login.user}", check=False)

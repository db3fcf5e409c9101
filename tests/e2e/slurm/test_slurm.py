"""Slurm end to end: a real one-node Slurm (tests/slurm_cluster.py), a login node that takes a password
(a real private sshd and user), and `rdev connect hpc` reaching the node of rdev's job through it with the
real ssh and the config rdev wrote."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import REPO, popen_answering_ctrl_c, snapshot, ssh_through
from tests.e2e.hosts.test_shells import noisy
from tests.slurm_cluster import SlurmCluster
from tests.stand_ins.login_host import PASSWORD, PasswordHost, login_host
from tests.stand_ins.old_python import PYENV_36, put_first, python36

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="a private Slurm and a test user need root")

OPTIONS = "--partition=gpu --gres=gpu:1 --time=00:10:00"


@contextmanager
def login_node(home: Path, slurm: SlurmCluster, extra: str = "", shell: str = "/bin/bash") -> Iterator[PasswordHost]:
    """The cluster's login node: sessions there find the cluster's Slurm, as a real login node's do."""
    with login_host(home, shell=shell, setenv={"SLURM_CONF": str(slurm.conf)}, extra=extra) as server:
        try:
            yield server
        finally:
            slurm.run("scancel", f"--user={server.user}", check=False)
            deadline = time.monotonic() + 15
            while slurm.run("squeue", "--noheader", f"--user={server.user}").stdout.strip() and \
                    time.monotonic() < deadline:
                time.sleep(0.1)


@pytest.fixture
def login(home: Path, slurm: SlurmCluster) -> Iterator[PasswordHost]:
    with login_node(home, slurm) as server:
        yield server


def add(rdev, login: PasswordHost, options: str = OPTIONS) -> None:
    result = rdev("add", "hpc", "--host", "127.0.0.1", "--port", str(login.port), "--user", login.user,
                  "--slurm", options)
    assert result.returncode == 0, result.stderr
    assert "login node hpc-login" in result.stdout


def connect(rdev, *args: str) -> subprocess.CompletedProcess:
    return rdev("connect", "hpc", "--password-stdin", "--no-open", *args, input=PASSWORD + "\n")


def queue(slurm: SlurmCluster, login: PasswordHost) -> list[str]:
    """The user's jobs that hold or wait for a node (a cancelled one may linger a moment as COMPLETING)."""
    return slurm.run("squeue", "--noheader", f"--user={login.user}", "--states=PENDING,CONFIGURING,RUNNING",
                     "--format=%i").stdout.split()


def test_connect_runs_on_the_node_of_a_job_and_stop_ends_it(home: Path, rdev, slurm: SlurmCluster,
                                                             login: PasswordHost) -> None:
    add(rdev, login)
    result = connect(rdev)
    assert result.returncode == 0, result.stderr
    [job] = queue(slurm, login)
    assert f"submitted Slurm job {job}" in result.stdout
    assert f"ssh works on node {slurm.node} (Slurm job {job})" in result.stdout
    remote = ssh_through(home, "hpc", 'echo "$CUDA_VISIBLE_DEVICES"; echo "$SLURM_JOB_ID"; whoami')
    assert remote.returncode == 0, remote.stderr
    assert remote.stdout.split() == ["0", job, login.user]
    listed = rdev("list").stdout
    assert f"slurm job {job} on {slurm.node}" in listed and "min left)" in listed

    again = connect(rdev)  # the job is reused, not submitted again
    assert again.returncode == 0, again.stderr
    assert "submitted" not in again.stdout and queue(slurm, login) == [job]

    stopped = rdev("stop", "hpc")
    assert stopped.returncode == 0, stopped.stderr
    assert f"Cancelled Slurm job {job}" in stopped.stdout
    assert slurm.wait_state(job, "", "CANCELLED", "COMPLETED") in ("", "CANCELLED", "COMPLETED")
    deadline = time.monotonic() + 10
    while slurm.job_processes(job) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert queue(slurm, login) == [] and slurm.job_processes(job) == []
    assert "slurm job" not in rdev("list").stdout


def test_a_job_cancelled_from_outside_is_replaced_and_its_key_pinned_again(home: Path, rdev, slurm: SlurmCluster,
                                                                          login: PasswordHost) -> None:
    add(rdev, login)
    assert connect(rdev).returncode == 0
    [first] = queue(slurm, login)
    slurm.run("scancel", first)
    slurm.wait_state(first, "", "CANCELLED")
    result = connect(rdev)
    assert result.returncode == 0, result.stderr
    [second] = queue(slurm, login)
    assert second != first
    assert f"job {first} has ended" in result.stdout
    assert f"job {second} runs a new sshd; rdev pins its host key" in result.stdout
    assert ssh_through(home, "hpc", 'echo "$SLURM_JOB_ID"').stdout.strip() == second


def test_a_job_that_stays_queued_is_given_up_and_cancelled(home: Path, rdev, slurm: SlurmCluster,
                                                           login: PasswordHost) -> None:
    add(rdev, login, "--partition=gpu --gres=gpu:2")  # only the spare node, which never comes up, has two
    result = connect(rdev, "--wait", "3")
    assert result.returncode == 1
    assert "was still pending (ReqNodeNotAvail" in result.stderr and "so rdev cancelled it" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "is pending (ReqNodeNotAvail" in result.stdout  # the wait was shown while it lasted
    assert "number 1 in the queue" in result.stdout
    assert queue(slurm, login) == []


def test_the_password_is_in_no_job_script_file_or_log(home: Path, rdev, slurm: SlurmCluster,
                                                      login: PasswordHost, recorded: Path) -> None:
    add(rdev, login)
    assert connect(rdev).returncode == 0
    assert list(recorded.iterdir()), "the recording ssh was not used"
    assert not [p for p in recorded.iterdir() if PASSWORD in p.read_text()]  # no ssh's argv or environment
    [job] = queue(slurm, login)
    script = slurm.run("scontrol", "write", "batch_script", job, "-").stdout
    assert "colab_side serve --in-job" in script and PASSWORD not in script
    for root in (home.parent, login.home, slurm.root):
        for path in Path(root).rglob("*"):
            if path.is_file() and not path.is_socket():
                assert PASSWORD.encode() not in path.read_bytes(), path
    assert PASSWORD not in slurm.run("scontrol", "show", "job", job).stdout


@pytest.mark.parametrize("options", ["--partition=gpu; rm -rf ~", "--gres=gpu:1 $(id)", "--wrap=x", "-J name",
                                     "--comment='a b'", "--partition=`x`"])
def test_options_a_shell_or_rdev_would_take_otherwise_are_refused(home: Path, rdev, options: str) -> None:
    result = rdev("add", "hpc", "--host", "login.example.edu", "--slurm", options)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("rdev: ") and result.stderr.count("\n") == 1
    assert snapshot(home) == {}


def test_remove_forgets_the_cluster_and_leaves_the_job_unless_asked(home: Path, rdev, slurm: SlurmCluster,
                                                                    login: PasswordHost) -> None:
    add(rdev, login)
    assert connect(rdev).returncode == 0
    [job] = queue(slurm, login)
    removed = rdev("remove", "hpc")
    assert removed.returncode == 0, removed.stderr
    assert "Removed hpc:" in removed.stdout and "Removed hpc-login:" in removed.stdout
    assert rdev("list", "--json").stdout.strip() == "[]"
    assert queue(slurm, login) == [job]  # still running: removing a host is not cancelling its job

    add(rdev, login)
    assert connect(rdev).returncode == 0  # the running job is found again
    assert queue(slurm, login) == [job]
    removed = rdev("remove", "hpc", "--stop")
    assert removed.returncode == 0, removed.stderr
    assert f"Cancelled Slurm job {job}" in removed.stdout
    assert slurm.wait_state(job, "", "CANCELLED", "COMPLETED") in ("", "CANCELLED", "COMPLETED")


def test_an_sbatch_that_fails_is_one_sentence_and_leaves_nothing_queued(home: Path, rdev, slurm: SlurmCluster,
                                                                        login: PasswordHost) -> None:
    add(rdev, login, "--partition=nope")
    result = connect(rdev)
    assert result.returncode == 1
    assert result.stderr.startswith("rdev: sbatch on hpc-login failed (") and "invalid partition" in result.stderr
    assert result.stderr.count("\n") == 1
    assert queue(slurm, login) == []


def test_two_connects_at_once_share_one_job(home: Path, rdev, slurm: SlurmCluster,
                                            login: PasswordHost) -> None:
    add(rdev, login)
    assert connect(rdev).returncode == 0  # the login node is set up; then no job runs
    assert rdev("stop", "hpc").returncode == 0
    assert queue(slurm, login) == []
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: rdev("connect", "hpc", "--no-open"), range(2)))
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    assert len(queue(slurm, login)) == 1
    assert sum("submitted Slurm job" in r.stdout for r in results) == 1


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_an_interrupted_wait_leaves_nothing_queued(home: Path, rdev, slurm: SlurmCluster,
                                                   login: PasswordHost, signal_name: str) -> None:
    add(rdev, login, "--partition=gpu --gres=gpu:2")  # stays pending
    process = popen_answering_ctrl_c([sys.executable, "-m", "client_side", "connect", "hpc", "--password-stdin", "--no-open"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    process.stdin.write(PASSWORD + "\n")
    process.stdin.close()
    for line in process.stdout:
        if "is pending" in line:
            break
    process.send_signal(getattr(signal, signal_name))
    assert process.wait(60) == 130
    assert "interrupted" in process.stderr.read()
    assert queue(slurm, login) == []


def test_a_login_profile_that_prints_does_not_confuse_rdev(home: Path, rdev, slurm: SlurmCluster,
                                                           login: PasswordHost) -> None:
    bashrc = login.home / ".bashrc"
    bashrc.write_text('echo "Welcome to the cluster. Quota: 12 GB used"\n')
    add(rdev, login)
    result = connect(rdev)
    assert result.returncode == 0, result.stderr
    assert len(queue(slurm, login)) == 1


def test_stop_and_remove_without_the_login_host_say_so(home: Path, rdev, login: PasswordHost) -> None:
    add(rdev, login)
    assert rdev("remove", "hpc-login").returncode == 0
    stopped = rdev("stop", "hpc")
    assert stopped.returncode == 1 and "The login node entry hpc-login of hpc is gone" in stopped.stderr


def test_a_host_of_the_users_own_is_not_taken_for_the_login_node(home: Path, rdev, login: PasswordHost) -> None:
    assert rdev("add", "hpc-login", "--host", "other.example.org", "--user", "bob").returncode == 0
    result = rdev("add", "hpc", "--host", "127.0.0.1", "--port", str(login.port), "--slurm", OPTIONS)
    assert result.returncode == 2 and "A host named hpc-login exists already" in result.stderr
    assert "other.example.org" in rdev("list").stdout


def test_the_end_of_the_job_ends_what_its_sessions_detached(home: Path, rdev, slurm: SlurmCluster,
                                                            login: PasswordHost) -> None:
    # VS Code's server detaches from its session; without cgroups Slurm would not find it at the job's end.
    add(rdev, login)
    assert connect(rdev).returncode == 0
    [job] = queue(slurm, login)
    started = ssh_through(home, "hpc", "nohup sleep 301 >/dev/null 2>&1 & setsid sleep 302 >/dev/null 2>&1 & "
                                       "sleep 0.3; pgrep -u \"$(id -u)\" -f '^sleep 30[12]$' | wc -l")
    assert started.stdout.strip() == "2", started.stderr
    slurm.run("scancel", job)
    slurm.wait_state(job, "")
    deadline = time.monotonic() + 20
    while slurm.job_processes(job) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert slurm.job_processes(job) == []
    left = subprocess.run(["pgrep", "-u", login.user, "-f", "^sleep 30[12]$"], check=False, capture_output=True, text=True)
    assert left.stdout.strip() == ""


def test_a_job_whose_node_cannot_be_reached_is_cancelled(home: Path, rdev, slurm: SlurmCluster) -> None:
    # A login node that forwards nothing and whose python3 and nc fail (so rdev's bridge cannot start there either):
    # the job runs, but ssh cannot hop to its node.
    with login_host(home, shell="/bin/bash", setenv={"SLURM_CONF": str(slurm.conf)},
                    extra="AllowTcpForwarding no\n") as login:
        broken = login.home / "bin"
        broken.mkdir()
        for tool in ("python3", "nc"):
            (broken / tool).write_text("#!/bin/sh\nexit 1\n")
            (broken / tool).chmod(0o755)
        (login.home / ".bashrc").write_text('PATH="$HOME/bin:$PATH"\n')
        for path in (broken, *broken.iterdir(), login.home / ".bashrc"):
            shutil.chown(path, login.user, login.user)
        add(rdev, login)
        result = connect(rdev)
        assert result.returncode == 1
        assert result.stderr.startswith("rdev: ") and result.stderr.count("\n") == 1, result.stderr
        job = result.stdout.split("submitted Slurm job ")[1].split(".")[0]
        # What this connect submitted is not left holding the GPU.
        assert slurm.wait_state(job, "", "CANCELLED", "COMPLETED") in ("", "CANCELLED", "COMPLETED")


def test_jupyter_on_the_jobs_node_is_reached_through_the_login_node_and_stop_ends_both(
        home: Path, rdev, slurm: SlurmCluster, login: PasswordHost) -> None:
    """`rdev jupyter hpc` on a Slurm host: Jupyter runs on the node of rdev's job (installed into rdev's
    environment there, the node's python3 being the system's), Colab's origin is answered through the
    forward, and `rdev stop hpc` ends Jupyter and the forward before it cancels the job."""
    from tests.e2e.work.test_jupyter import COLAB, alive, get, refused, started

    add(rdev, login)
    assert connect(rdev).returncode == 0
    [job] = queue(slurm, login)
    served = started(rdev("jupyter", "hpc"))
    on_node = ssh_through(home, "hpc", f'cat /proc/{served.pid}/environ | tr "\\0" "\\n" | grep ^SLURM_JOB_ID=')
    assert on_node.stdout.strip() == f"SLURM_JOB_ID={job}", on_node.stderr  # it runs inside the job
    status, headers, _ = get(served.local, "/api/status", served.token, origin=COLAB)
    assert status == 200 and headers.get("Access-Control-Allow-Origin") == COLAB

    stopped = rdev("stop", "hpc")
    assert stopped.returncode == 0, stopped.stderr
    lines = stopped.stdout.splitlines()
    assert lines[0] == f"Stopped Jupyter on hpc (pid {served.pid}); ended the forward from localhost:{served.local}."
    assert any(f"Cancelled Slurm job {job}" in line for line in lines[1:])
    assert not alive(served.pid) and refused(served.local)
    assert not (home / ".ssh" / "rdev" / "jupyter" / "hpc.json").exists()


def test_a_login_node_without_tcp_forwarding_is_crossed_by_the_bridge(home: Path, rdev, slurm: SlurmCluster) -> None:
    """Many centres set `AllowTcpForwarding no` on login nodes: ProxyJump fails there, rdev's bridge does not."""
    with login_node(home, slurm, extra="AllowTcpForwarding no\n") as closed:
        add(rdev, closed)
        result = connect(rdev)
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("hpc-login does not allow TCP forwarding") == 1, result.stdout
        [job] = queue(slurm, closed)
        remote = ssh_through(home, "hpc", 'echo "$SLURM_JOB_ID"')
        assert remote.returncode == 0 and remote.stdout.split() == [job], remote.stderr
        with ThreadPoolExecutor(5) as pool:
            results = list(pool.map(lambda _: ssh_through(home, "hpc", "true"), range(5)))
        assert [r.returncode for r in results] == [0] * 5, [r.stderr for r in results]
        assert closed.bridges() == 1  # the node's one master connection, and so one bridge
        again = connect(rdev)  # the job and the bridge are both kept
        assert again.returncode == 0 and "forwarding" not in again.stdout and "submitted" not in again.stdout


@pytest.fixture(scope="module")
def old_python() -> Iterator[Path]:
    if not PYENV_36.exists():
        pytest.skip("pyenv's Python 3.6 is not on this machine")
    with python36() as wrapper:
        yield wrapper


def test_a_cluster_whose_python3_is_3_6_runs_the_job_with_a_newer_one(home: Path, rdev, slurm: SlurmCluster,
                                                                      login: PasswordHost, old_python: Path) -> None:
    put_first(login.user, login.home, old_python, newer_beside=True)
    add(rdev, login)
    result = connect(rdev)
    assert result.returncode == 0, result.stderr
    [job] = queue(slurm, login)
    # The job's shell finds the old python3 first, as the user's would: rdev's side, which 3.6 cannot even parse,
    # runs under the newer python3.X beside it.
    remote = ssh_through(home, "hpc", 'python3 --version; echo "$SLURM_JOB_ID"')
    assert remote.returncode == 0, remote.stderr
    assert "Python 3.6.15" in remote.stdout and remote.stdout.split()[-1] == job


def test_a_cluster_without_a_new_enough_python_is_refused_before_anything_is_queued(
        home: Path, rdev, slurm: SlurmCluster, login: PasswordHost, old_python: Path) -> None:
    put_first(login.user, login.home, old_python, newer_beside=False)
    add(rdev, login)
    result = connect(rdev)
    assert result.returncode == 1
    assert result.stderr.startswith("rdev: hpc's python3 is Python 3.6.15, older than the Python 3.8 rdev's runtime "
                                    "side needs"), result.stderr
    assert result.stderr.count("\n") == 1 and "submitted" not in result.stdout
    assert queue(slurm, login) == []


@pytest.mark.parametrize("shell", ["zsh", "fish", "tcsh"])
def test_a_login_node_where_the_user_has_another_shell_and_noisy_rc_files(home: Path, rdev, slurm: SlurmCluster,
                                                                          shell: str) -> None:
    found = shutil.which(shell)
    if found is None:
        pytest.skip(f"no {shell} here (scripts/setup.sh installs it)")
    with login_node(home, slurm, shell=found) as login:
        noisy(login, shell)
        add(rdev, login)
        result = connect(rdev)
        assert result.returncode == 0, result.stderr
        [job] = queue(slurm, login)
        assert f"submitted Slurm job {job}" in result.stdout
        remote = ssh_through(home, "hpc", 'echo "$SLURM_JOB_ID"')
        assert remote.returncode == 0 and remote.stdout.split()[-1] == job, remote.stderr
        assert rdev("stop", "hpc").returncode == 0

"""A real one-node Slurm for the tests: Debian's slurm-wlm (22.05) and munge, started from a config and a folder
of the tests' own (never the machine's /etc/slurm or its munge), with one GPU generic resource whose device file
is a link to /dev/null, so that `--gres=gpu:1` is accepted and sets CUDA_VISIBLE_DEVICES in the job.

    cluster = SlurmCluster(); cluster.start(root); ...; cluster.stop()
    subprocess.run(["sbatch", ...], env={**os.environ, **cluster.env()})   # or cluster.run("sbatch", ..., user=U)

Needs root (slurmd runs jobs as their users, munged runs as the munge user) and the packages that
`bash scripts/setup.sh` installs. The node is this machine's short host name, addressed as 127.0.0.1, so no
DNS is needed; the daemons listen on free ports, so a Slurm of the machine's own does not clash. There is no
cgroup and no accounting database: jobs are tracked by their process tree (a job must not daemonize, or scancel
misses it) and there is no sacct (use squeue / scontrol).

A cluster can also be placed in the zoo's namespaces (`Placement`): slurmctld, and every Slurm command the tests
run, in the login node's namespace; slurmd, and so every job, in the compute node's, where the machine's host
name is the compute node's address (the namespace's own /etc/hosts), as `hostname` on a real node resolves."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.stand_ins.zoo import Namespace

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo", "scontrol")
PARTITION = "gpu"
UP_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def missing_binaries() -> list[str]:
    return [name for name in BINARIES if not shutil.which(name, path=f"{os.environ.get('PATH', '')}:{PATH}")]


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"({exc})"


def environ(pid: int) -> list[bytes]:
    """A process's environment (empty for a zombie or a process gone)."""
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return []


@dataclass(frozen=True)
class Placement:
    """Where a zoo's cluster runs: slurmctld at `login_address` in `login`, slurmd at `compute_address` in
    `compute`; the two namespaces are linked, and only the login one has an sshd the laptop reaches."""

    login: Namespace
    compute: Namespace
    login_address: str
    compute_address: str


class SlurmCluster:
    """munged, slurmctld and slurmd of one node named after this machine, all in one folder."""

    gpus = 1  # on the node that runs jobs
    spare_gpus = 8  # on the spare node, which never comes up: asking 2..8 GPUs pends, more is refused by sbatch
    partition = PARTITION

    def __init__(self, placement: Placement | None = None) -> None:
        self.placement = placement
        self.root: Path | None = None
        self.node = socket.gethostname().split(".")[0]
        self.spare_node = f"{self.node}-big"
        self.processes: dict[str, subprocess.Popen] = {}
        self.startup_seconds = 0.0
        self.ctld_port = 0

    @property
    def conf(self) -> Path:
        assert self.root is not None, "the cluster is not started"
        return self.root / "slurm.conf"

    @property
    def munge_socket(self) -> Path:
        assert self.root is not None, "the cluster is not started"
        return self.root / "munge" / "munge.socket"

    def env(self) -> dict[str, str]:
        """What a Slurm client command needs, to be merged over the caller's environment."""
        return {"SLURM_CONF": str(self.conf), "PATH": PATH}

    def run(self, *argv: str, user: str | None = None, cwd: Path | str | None = None, check: bool = True,
            timeout: float = 30) -> subprocess.CompletedProcess:
        """A Slurm command against this cluster, as root or (runuser, clean environment) as `user`."""
        if user:
            argv = ("runuser", "-u", user, "--", "env", "-i", f"HOME={Path('~' + user).expanduser()}", f"USER={user}",
                    f"LOGNAME={user}", *(f"{key}={value}" for key, value in self.env().items()), *argv)
            env = None
        else:
            env = {**os.environ, **self.env()}
        if self.placement:
            argv = tuple(self.placement.login.argv(*argv))
        result = subprocess.run(argv, check=False, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")
        return result

    # -- start --------------------------------------------------------------------------------------------------

    def start(self, root: Path) -> None:
        """Write the config into `root` (created, 0755: other users read the config and reach munge's socket)
        and start munged, slurmctld and slurmd; return once the node is idle."""
        if missing := missing_binaries():
            raise RuntimeError(f"Slurm is not installed ({', '.join(missing)} missing): run bash scripts/setup.sh")
        self.root = root = Path(root)
        started = time.monotonic()
        root.mkdir(mode=0o755, parents=True, exist_ok=True)
        root.chmod(0o755)
        for sub in ("state", "spool", "log", "dev"):
            (root / sub).mkdir(mode=0o755, exist_ok=True)
        self._start_munge()
        self._write_config()
        env = {"PATH": PATH, "SLURM_CONF": str(self.conf)}
        ctld, slurmd = ["slurmctld", "-D", "-f", str(self.conf)], ["slurmd", "-D", "-f", str(self.conf), "-N", self.node]
        if self.placement:
            ctld, slurmd = self.placement.login.argv(*ctld), self.placement.compute.enter(*slurmd)
        self._spawn("slurmctld", ctld, env)
        self._spawn("slurmd", slurmd, env)
        self._wait_idle(started + UP_TIMEOUT)
        self.startup_seconds = time.monotonic() - started

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], **kwargs) -> None:
        """A daemon in the foreground of its own session, holding none of our descriptors: its stderr goes to
        log/NAME.stderr (what it says before its own log file is open; munged in the foreground logs only there)."""
        assert self.root is not None
        with open(self.root / "log" / f"{name}.stderr", "ab") as stderr:
            self.processes[name] = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                    stderr=stderr, start_new_session=True, cwd=self.root, **kwargs)

    def _start_munge(self) -> None:
        """munged as the munge user, as packaged (it insists that its key is owned by its own user and not
        readable by others): a key of its own, 0400, in a folder owned by munge and open to others so that
        they reach the socket. In the foreground it logs to stderr only, not to --log-file."""
        assert self.root is not None
        folder = self.root / "munge"
        folder.mkdir(mode=0o755, exist_ok=True)
        key = folder / "munge.key"
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400)
        with os.fdopen(fd, "wb") as out:
            out.write(os.urandom(1024))
        os.chmod(key, 0o400)
        shutil.chown(key, "munge", "munge")
        shutil.chown(folder, "munge", "munge")
        self._spawn("munged", ["munged", "--foreground", f"--key-file={key}", f"--socket={self.munge_socket}",
                               f"--pid-file={folder / 'munged.pid'}", f"--log-file={folder / 'munged.log'}",
                               f"--seed-file={folder / 'munged.seed'}"],
                    {"PATH": PATH}, user="munge", group="munge", extra_groups=[])
        deadline = time.monotonic() + 10
        while not self.munge_socket.exists():
            if self.processes["munged"].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"munged did not start:\n{self.logs()}")
            time.sleep(0.02)

    def _write_config(self) -> None:
        assert self.root is not None
        root = self.root
        device = root / "dev" / "nvidia0"  # gres/gpu wants device files; CUDA_VISIBLE_DEVICES comes from the index
        if not device.is_symlink():
            device.symlink_to("/dev/null")
        self.ctld_port = free_port()
        meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
        memory_mb = max(100, min(1024, int(meminfo["MemTotal"].split()[0]) // 1024 // 2))
        ctld_address, node_address = ((self.placement.login_address, self.placement.compute_address) if self.placement
                                      else ("127.0.0.1", "127.0.0.1"))
        node = (f"NodeName={self.node} NodeAddr={node_address} CPUs={os.cpu_count() or 1} RealMemory={memory_mb} "
                f"Gres=gpu:{self.gpus} State=UNKNOWN")
        self.conf.write_text(f"""\
# A private one-node cluster of the tests (tests/slurm_cluster.py).
ClusterName=rdevtest
SlurmctldHost={self.node}({ctld_address})
SlurmctldPort={self.ctld_port}
SlurmdPort={free_port()}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=2
MinJobAge=5
InactiveLimit=0
GresTypes=gpu
{node}
# Never up and hidden from sinfo: without it, a job asking more GPUs than {self.node} has is refused at submit
# ("Requested node configuration is not available") instead of staying pending as on a real cluster.
NodeName={self.spare_node} NodeAddr=127.0.0.2 CPUs=2 RealMemory=100 Gres=gpu:{self.spare_gpus} State=FUTURE
PartitionName={self.partition} Nodes={self.node},{self.spare_node} Default=YES MaxTime=INFINITE State=UP
""")
        (root / "gres.conf").write_text(f"NodeName={self.node} Name=gpu File={device}\n")
        for path in (self.conf, root / "gres.conf"):
            path.chmod(0o644)

    def _wait_idle(self, deadline: float) -> None:
        """Until slurmd has registered and the node is idle. A client that finds slurmctld not yet listening
        sleeps a whole second before it retries, so first wait for the port."""
        state = ""
        while time.monotonic() < deadline:
            for name in ("slurmctld", "slurmd"):
                if self.processes[name].poll() is not None:
                    raise RuntimeError(f"{name} exited {self.processes[name].returncode}\n{self.logs()}")
            if self._ctld_listening():
                result = self.run("sinfo", "--noheader", "--Node", f"--nodes={self.node}", "--format=%t",
                                  check=False, timeout=10)
                state = (result.stdout or result.stderr).strip()
                if result.returncode == 0 and state == "idle":
                    return
            time.sleep(0.02)
        raise RuntimeError(f"the Slurm node is not idle after {UP_TIMEOUT:.0f} s (sinfo says {state!r})\n"
                           f"{self.logs()}")

    def _ctld_listening(self) -> bool:
        if self.placement:  # only the login namespace reaches slurmctld's address
            argv = self.placement.login.argv("nc", "-z", self.placement.login_address, str(self.ctld_port))
            return subprocess.run(argv, capture_output=True, check=False, timeout=10).returncode == 0
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.ctld_port)) == 0

    def logs(self) -> str:
        assert self.root is not None
        # In the foreground the daemons copy their log to stderr (and munged logs only there).
        return "\n".join(f"--- {path}\n{tail(path)}" for path in sorted((self.root / "log").glob("*.stderr")))

    # -- stop ---------------------------------------------------------------------------------------------------

    def jobs(self) -> list[str]:
        """Ids of the jobs slurmctld still knows as pending, running or completing."""
        result = self.run("squeue", "--noheader", "--format=%i", check=False, timeout=10)
        return result.stdout.split() if result.returncode == 0 else []

    def job_state(self, job_id: str) -> str:
        """PENDING, RUNNING, COMPLETING, CANCELLED, ... or "" once slurmctld has forgotten the job."""
        result = self.run("squeue", "--noheader", f"--jobs={job_id}", "--states=all", "--format=%T", check=False,
                          timeout=10)
        return result.stdout.strip() if result.returncode == 0 else ""

    def wait_state(self, job_id: str, *states: str, timeout: float = 10) -> str:
        """Wait until the job is in one of `states` ("" = forgotten); return the state it ended in."""
        deadline = time.monotonic() + timeout
        while (state := self.job_state(job_id)) not in states and time.monotonic() < deadline:
            time.sleep(0.05)
        return state

    def job_processes(self, job_id: str) -> list[int]:
        """Live (not zombie) processes of one job of this cluster, found by their environment."""
        marker = f"SLURM_JOB_ID={job_id}".encode()
        return [pid for pid in self.leftovers() if marker in environ(pid)]

    def stop(self) -> None:
        """Cancel every job, wait for them to go, stop the daemons and kill whatever of a job is left
        (stopping slurmd does not end jobs)."""
        if self.root is None:
            return
        if self.processes.get("slurmctld") and self.processes["slurmctld"].poll() is None and (jobs := self.jobs()):
            self.run("scancel", *jobs, check=False, timeout=10)
            deadline = time.monotonic() + 15
            while self.jobs() and time.monotonic() < deadline:
                time.sleep(0.1)
        for name in ("slurmd", "slurmctld", "munged"):
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.kill_leftovers()

    def leftovers(self) -> list[int]:
        """Processes whose environment names this cluster's config (SLURM_CONF): the Slurm daemons, slurmstepd,
        everything a job started, and clients run with env(); not this process or its ancestors."""
        mine = {os.getpid()}
        pid = os.getpid()
        while pid > 1:
            try:
                pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                break
            mine.add(pid)
        marker = f"SLURM_CONF={self.conf}".encode()
        pids = (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
        return [pid for pid in pids if pid not in mine and marker in environ(pid)]

    def kill_leftovers(self) -> None:
        for _ in range(50):
            pids = self.leftovers()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)


@pytest.fixture(scope="session")
def slurm() -> Iterator[SlurmCluster]:
    """One private Slurm for the whole test session."""
    if os.geteuid() != 0:
        pytest.skip("a private Slurm needs root (slurmd runs jobs as their users)")
    if missing := missing_binaries():
        pytest.fail(f"Slurm is not installed ({', '.join(missing)} missing): run bash scripts/setup.sh")
    root = Path(tempfile.mkdtemp(prefix="slurm", dir="/tmp"))
    cluster = SlurmCluster()
    try:
        cluster.start(root)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)

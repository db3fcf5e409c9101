"""The idle stop: a server that ends itself once nobody uses it, so that a Slurm job gives its GPU back.

A check finds the server in use while any of these holds, and idle otherwise:
- an SSH connection to its sshd is open (a shell, the editor's, a shared master connection of the laptop's);
- a process of the user's work runs: one that carries this Slurm job's SLURM_JOB_ID, or the state marker the
  server's sessions pass on, other than rdev's own (this process, those above and below it, the sshd listener,
  the tunnel, the background supervisor). So what a session left running (nohup, setsid, `rdev run`, Jupyter, the
  editor's server until it shuts itself down after its last window) keeps the server. A tmux or screen server only
  holds windows: what runs in them counts, not the server, nor a window's shell waiting at its prompt (an ended
  `rdev run` leaves its tmux session open, and a forgotten tmux prompt must not hold a GPU for days);
- nvidia-smi (where there is one) lists a GPU process of the served user's, or one whose pid is not visible here:
  a container sees the host's pids, so whose it is cannot be told.
The server stops once every check for the given minutes found it idle; 5 minutes before (colab_side.long_runs.notices'
last lead time), a line says so to the user's terminals and runs. What cannot be read counts as in use: a stop too early
costs the user's work, one too late only GPU time.

A check comes every CHECK_SECONDS; RDEV_IDLE_CHECK_SECONDS shortens that, for tests only. A later `rdev connect`
changes the minutes of a running job by writing them into the state folder's SETTING file. Standard library only.
"""

from __future__ import annotations

import importlib
import math
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from colab_side import processes
from colab_side.errors import ServeError
from colab_side.long_runs import notices
from colab_side.state import SSHD_COMMANDS, StateFolder, served_address, sshd_running, tunnel_running

CHECK_SECONDS = 30.0
CHECK_VARIABLE = "RDEV_IDLE_CHECK_SECONDS"  # for tests: a shorter period between checks
SETTING = "idle-stop"  # in the state folder: whole minutes a later connect asked for, on one line
MOST = 10080  # a week: longer than any idle wait worth having; 0 says never
GPU_TIMEOUT = 10.0
HOLDERS = ("tmux: server", "screen", "SCREEN")  # their /proc comm: they hold windows, whose processes count
SHELLS = ("sh", "bash", "dash", "zsh", "fish", "ksh", "mksh", "tcsh", "csh")
_BAD = "The idle stop {value!r} is not a number of minutes from 0 (never) to {most}: give e.g. 60."


def minutes(value: float | None) -> float | None:
    """serve()'s idle_stop, checked: minutes from 0 (never) to MOST, or None (no idle stop)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MOST:  # also nan
        raise ServeError(_BAD.format(value=value, most=MOST), 2)
    return float(value)


def parsed(text: str) -> int:
    """--idle-stop as typed: whole minutes from 0 (never) to MOST."""
    if not (text.isascii() and text.isdigit()) or int(text) > MOST:
        raise ServeError(_BAD.format(value=text, most=MOST), 2)
    return int(text)


def check_seconds() -> float:
    """Seconds between checks: CHECK_SECONDS, unless a test set RDEV_IDLE_CHECK_SECONDS."""
    try:
        seconds = float(os.environ.get(CHECK_VARIABLE, ""))
    except ValueError:
        return CHECK_SECONDS
    return seconds if math.isfinite(seconds) and seconds > 0 else CHECK_SECONDS


def connected(state: StateFolder) -> bool:
    """Whether an SSH connection to the server is open: the listener forks one child per connection, and the
    connections of a listener restarted meanwhile still hold their socket on its address."""
    listener = sshd_running(state)
    if listener is not None and any(map(processes.alive, processes.children(listener))):
        return True
    served = served_address(state)
    return bool(served and processes.connected(*served, commands=SSHD_COMMANDS))


def own(state: StateFolder) -> set[int]:
    """rdev's own processes: this one, those above and below it, and the sshd listener, the tunnel and the background
    supervisor with all below them (below the listener run only sessions, which `connected` counts)."""
    me = os.getpid()
    found = {me, *processes.ancestors(me), *processes.descendants(me)}
    for pid in (sshd_running(state), tunnel_running(state), processes.read_recorded(state.supervisor_pid)):
        if pid is not None:
            found.update((pid, *processes.descendants(pid)))
    return found


def work(state: StateFolder, job: str | None) -> list[int]:
    """The user's work: processes carrying the job's id or the server's marker, other than rdev's own, tmux's or
    screen's server, and a shell of theirs with nothing running under it."""
    marked = set(processes.marked(state.marker))
    if job:
        marked.update(processes.marked(f"SLURM_JOB_ID={job}"))
    mine = own(state) if marked else set()
    return [pid for pid in sorted(marked - mine) if processes.alive(pid) and not _holds_only(pid)]


def _holds_only(pid: int) -> bool:
    """A tmux or screen server, or a window's shell waiting at its prompt: no work of its own."""
    name = _comm(pid)
    if name in HOLDERS:
        return True
    if name not in SHELLS:
        return False
    above = processes.ancestors(pid)
    return bool(above) and _comm(above[0]) in HOLDERS and not any(map(processes.alive, processes.children(pid)))


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def gpu_processes(uid: int, timeout: float = GPU_TIMEOUT) -> list[int] | None:
    """The pids nvidia-smi lists that run as `uid` or are not visible here; [] without nvidia-smi or when it fails
    (a GPU whose driver fails runs nothing), None when it does not answer in time (in use, as far as anyone knows)."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return []
    try:
        child = subprocess.Popen([binary, "--query-compute-apps=pid", "--format=csv,noheader,nounits"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    except OSError:
        return []
    try:
        out, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()  # not waited for: a driver that hangs may hold it in the kernel; subprocess reaps it later
        return None
    if child.returncode != 0:
        return []
    pids = [int(line.strip()) for line in out.splitlines() if line.strip().isdigit()]
    return [pid for pid in pids if _owner(pid) in (uid, None)]


def _owner(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def in_use(state: StateFolder, job: str | None, uid: int) -> str | None:
    """What keeps the server in use, in a few words; None when it is idle. The cheap looks come first."""
    if connected(state):
        return "an SSH connection"
    running = work(state, job)
    if running:
        return f"process {running[0]}"
    gpu = gpu_processes(uid)
    if gpu is None:
        return "nvidia-smi did not answer"
    return f"GPU process {gpu[0]}" if gpu else None


def _action(job: str | None, runtime: str) -> str:
    if job:
        return "ending the job to give the GPU back"
    if runtime == "colab":
        return "stopping the server and ending the Colab runtime to give the GPU back"
    return "stopping the server"


def notice(limit: float, job: str | None, runtime: str) -> str:
    """The one line said as an idle server stops (in a job, it lands in the job's log)."""
    return f"rdev: no session, run or GPU process for {limit:g} min: {_action(job, runtime)}"


def warning(left: float, job: str | None, runtime: str) -> str:
    """The one line that goes to the user's terminals and runs' logs `left` seconds before an idle stop."""
    return (f"rdev: no session, run or GPU process here: in {notices.span(left)} rdev is {_action(job, runtime)}; "
            "connect or start a run to keep it.")


def end_runtime(runtime: str, say: Callable[[str], None]) -> None:
    """On Colab, hand the runtime back with Google's own call, google.colab.runtime.unassign(): public in Colab's own
    library, whose docstring offers it to "programmatically end the notebook's session by unassigning the runtime".
    Kaggle documents no such call for a notebook; a Slurm job or any other machine needs none."""
    if runtime != "colab":
        return
    try:
        importlib.import_module("google.colab.runtime").unassign()
    except Exception as err:  # noqa: BLE001 (the server is stopped whatever this raises)
        # After its request, unassign() tells the browser to disconnect, which fails where no notebook listens.
        say(f"rdev: asking Colab to end the runtime raised {type(err).__name__} ({err}); if the runtime is still "
            "there, end it with Runtime > Disconnect and delete runtime.")


class Watch:
    """Stops a server once it has been idle for `limit` minutes. The supervisor calls `tick` every round, in whichever
    process supervises; a check runs every `period` seconds, the first at once."""

    def __init__(self, state: StateFolder, limit: float, *, user: str, runtime: str, stop: Callable[[], object],
                 say: Callable[[str], None], job: str | None = None, period: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.state = state
        self.limit = limit
        self.uid = pwd.getpwnam(user).pw_uid
        self.runtime = runtime
        self.stop = stop
        self.say = say
        self.job = os.environ.get("SLURM_JOB_ID") if job is None else job  # "" for none
        self.period = check_seconds() if period is None else period
        self.clock = clock
        self.next_check = clock()
        self.idle_since: float | None = None
        self.warned = False  # the warning before the stop went out for this stretch of idleness
        self.stopped = False

    def current_limit(self) -> float:
        """The limit in effect: what a later connect wrote into the state folder, else the one given."""
        try:
            text = (self.state.root / SETTING).read_text().strip()
        except OSError:
            return self.limit
        return float(text) if text.isascii() and text.isdigit() and int(text) <= MOST else self.limit

    def tick(self) -> bool:
        """Check if one is due; True once the server was stopped for being idle."""
        now = self.clock()
        if self.stopped or now < self.next_check:
            return self.stopped
        self.next_check = now + self.period
        limit = self.current_limit()
        try:
            busy = in_use(self.state, self.job, self.uid) if limit else "no idle stop"
        except (OSError, ValueError) as err:
            busy = f"unreadable ({err})"
        if busy:
            self.idle_since, self.warned = None, False
            return False
        if self.idle_since is None:
            self.idle_since = now
        idle_for = now - self.idle_since
        if idle_for < limit * 60:
            # As the end of a runtime is announced: whoever still has a terminal here (a tmux window) hears of it.
            if not self.warned and limit * 60 - idle_for <= min(notices.leads()):
                self.warned = True
                text = warning(limit * 60 - idle_for, self.job, self.runtime)
                self.say(text)
                notices.deliver(text, self.uid, self.state.marker)
            return False
        self.stopped = True
        self.say(notice(limit, self.job, self.runtime))
        self.stop()
        end_runtime(self.runtime, self.say)
        return True

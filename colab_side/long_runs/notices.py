"""Notices before a runtime ends: one line to the user's open terminals and live runs' logs, 15 and 5 minutes ahead.

A runtime that knows its end (a Colab or Kaggle runtime's maximum, a Slurm job's time limit, a lab container's
lifetime as the laptop counts it) says so before it comes, with what keeps the work there: nothing else does, and
an ended runtime takes its disk along. The line goes to each terminal (/dev/pts/N) that a process of the user's
has as its controlling terminal and that the user owns, never another user's; and to the log of each run of theirs
still running on this host (colab_side.long_runs.runs: the wrapper opens the log O_APPEND, so a line appended here lands
whole between the run's own output). A served runtime's supervisor calls `Schedule.tick` every round, scoped to
its own sessions by the state marker they carry; on a lab container, where nothing of rdev's keeps running,
`rdev connect` starts `watch` (python3 -m colab_side.long_runs.notices watch SPEC), a detached process that sends the
notices and ends at the runtime's end.

RDEV_NOTICE_SECONDS (seconds before the end, comma-separated) and RDEV_TEST_LIFETIME_SECONDS (a generic runtime's
lifetime from its start) are for tests only. Standard library only, Python 3.8+.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Mapping

from bootstrap.files import ensure_private_dir, held_lock
from colab_side import processes, runtime
from colab_side.errors import Failure
from colab_side.long_runs import runs

LEADS = (900.0, 300.0)  # 15 and 5 minutes before the end
LEADS_VARIABLE = "RDEV_NOTICE_SECONDS"  # for tests: other lead times, in seconds
LIFETIME_VARIABLE = "RDEV_TEST_LIFETIME_SECONDS"  # for tests: a generic runtime that ends this long after its start
SQUEUE_TIMEOUT = 5.0  # the ticket waits for it: a controller that does not answer must not hold the job up
# What keeps the work where the runtime goes away; the laptop gives its own for a lab container (presets.toml).
ADVICE = {
    "colab": "save what you keep to Drive, or copy it to your laptop with 'rdev pull NAME PATH'",
    "kaggle": "copy what you keep to your laptop with 'rdev pull NAME PATH'",
    "slurm": "the job ends at its time limit and its processes with it: copy what you keep off the node's own "
             "disks, e.g. 'rdev pull NAME PATH'",
    "generic": "copy what you keep to your laptop with 'rdev pull NAME PATH'",
}
_WHAT = {"colab": "this Colab runtime", "kaggle": "this Kaggle session", "generic": "this runtime"}
_WHY = {"colab": "Colab's longest for runtimes used free of charge is 12 hours; paid plans may run longer",
        "kaggle": "Kaggle's sessions run at most 12 hours"}


@dataclass(frozen=True)
class End:
    """When a runtime ends and how the notice says it: `exact` for a scheduler's limit, else an estimate."""

    at: datetime  # aware, UTC
    what: str  # "this Colab runtime", "Slurm job 42"
    why: str  # where the time comes from
    advice: str  # what keeps the work
    exact: bool = False


def leads() -> list[float]:
    """Seconds before the end at which notices go out: LEADS, unless a test set RDEV_NOTICE_SECONDS."""
    try:
        found = [float(part) for part in os.environ.get(LEADS_VARIABLE, "").split(",")]
    except ValueError:
        return list(LEADS)
    return found if found and all(0 < lead < 86400 for lead in found) else list(LEADS)


def runtime_end(kind: str, started: datetime, environ: Mapping[str, str] | None = None) -> End | None:
    """This runtime's end where it is known: a Slurm job's limit, Colab's or Kaggle's maximum; None elsewhere."""
    env = os.environ if environ is None else environ
    job = env.get("SLURM_JOB_ID", "")
    if job.isdigit():
        at = _slurm_end(job, env)
        return End(at, f"Slurm job {job}", "its time limit", ADVICE["slurm"], exact=True) if at else None
    lifetime = env.get(LIFETIME_VARIABLE, "")
    if lifetime.isdigit():
        return End(started + timedelta(seconds=int(lifetime)), _WHAT["generic"], "its test lifetime",
                   ADVICE["generic"], exact=True)
    at = runtime.expires(kind, started)
    return End(at, _WHAT[kind], _WHY[kind], ADVICE[kind]) if at and kind in _WHY else None


def _slurm_end(job: str, env: Mapping[str, str]) -> datetime | None:
    """The job's end: SLURM_JOB_END_TIME (Slurm 23.02 on), else squeue's %e, a time on the cluster's clock (this
    node's local time) or "Unknown"/"N/A" for a job without a limit."""
    given = env.get("SLURM_JOB_END_TIME", "")
    if given.isdigit():
        return datetime.fromtimestamp(int(given), timezone.utc)
    squeue = shutil.which("squeue")
    if squeue is None:
        return None
    try:
        shown = subprocess.run([squeue, "-h", "-j", job, "-o", "%e"], check=False, capture_output=True, text=True,
                               timeout=SQUEUE_TIMEOUT, stdin=subprocess.DEVNULL).stdout.strip()
        return datetime.fromisoformat(shown).astimezone(timezone.utc)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None


def span(seconds: float) -> str:
    """A time left as the notices say it: "15 min", "2 h 5 min" (whole minutes, rounded, at least 1)."""
    hours, minutes = divmod(max(1, round(seconds / 60)), 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def line(end: End, now: datetime) -> str:
    """The one-line notice, `end.at - now` ahead."""
    left = span((end.at - now).total_seconds())
    when = f"ends in {left}" if end.exact else f"may end in about {left}"
    return f"rdev: {end.what} {when} ({end.why}): {end.advice}."


def terminals(uid: int, scope: list[int] | None = None) -> list[Path]:
    """The pseudo-terminals that processes of `uid` (of `scope` only, when given) have as their controlling terminal
    and that `uid` owns: the user's own open terminals, never another user's."""
    wanted = set()
    for pid in scope if scope is not None else (int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()):
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                wanted.add(int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[4]))
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
    wanted.discard(0)  # no controlling terminal
    found = []
    for entry in Path("/dev/pts").glob("[0-9]*"):
        try:
            info = entry.lstat()
        except OSError:
            continue
        if stat.S_ISCHR(info.st_mode) and info.st_uid == uid and info.st_rdev in wanted:
            found.append(entry)
    return sorted(found, key=lambda path: int(path.name))


def run_logs(scope: list[int] | None = None) -> list[Path]:
    """The logs of this user's runs still running on this host (started from `scope`'s processes, when given)."""
    folder = runs.runs_dir()
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            record = runs.read_record(path.stem)
        except Failure:  # a record that cannot be read is no live run of ours
            continue
        if not record or record.get("host") != socket.gethostname() or runs.state(record) not in runs.LIVE:
            continue
        if scope is None or record.get("wrapper") in scope or record.get("pid") in scope:
            found.append(runs.run_file(record["run"], ".log"))
    return found


def deliver(text: str, uid: int, marker: str | None = None) -> int:
    """Write `text` to the user's terminals and live runs' logs (of the sessions carrying `marker`, when given); how
    many took it. A terminal that would block or is gone is passed over: a notice never holds anything up."""
    scope = processes.marked(marker) if marker else None
    sent = 0
    for tty in terminals(uid, scope):
        sent += _write(tty, f"\r\n{text}\r\n".encode(), os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK, uid)
    if uid == os.getuid():  # runs live in the user's own home
        for log in run_logs(scope):
            sent += _write(log, f"\n{text}\n".encode(), os.O_WRONLY | os.O_APPEND, uid)
    return sent


def _write(path: Path, data: bytes, flags: int, uid: int) -> int:
    """1 if `data` went into `path` whole, 0 otherwise; a link or another user's file in its place is left alone."""
    try:
        fd = os.open(str(path), flags | os.O_NOFOLLOW)
    except OSError:
        return 0
    try:
        if os.fstat(fd).st_uid != uid:
            return 0
        return int(os.write(fd, data) == len(data))
    except OSError:
        return 0
    finally:
        os.close(fd)


class Schedule:
    """Sends the notice at each lead time before `end` that is still ahead when the schedule is made (so a supervisor
    handed to another process does not repeat one); several due at once make one line."""

    def __init__(self, end: End, send: Callable[[str], object], lead_seconds: list[float] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.end = end
        self.send = send
        self.clock = clock
        now = clock()
        self.pending = sorted((lead for lead in (lead_seconds or leads()) if end.at - timedelta(seconds=lead) > now),
                              reverse=True)

    def next_due(self) -> datetime | None:
        return self.end.at - timedelta(seconds=self.pending[0]) if self.pending else None

    def tick(self) -> bool:
        """Send what is due; True once nothing is left to send."""
        now = self.clock()
        due = [lead for lead in self.pending if now >= self.end.at - timedelta(seconds=lead)]
        if due:
            self.pending = [lead for lead in self.pending if lead not in due]
            if now < self.end.at:
                self.send(line(self.end, now))
        return not self.pending


def for_sessions(end: End, user: str, marker: str, say: Callable[[str], object]) -> Schedule:
    """A served runtime's notices: to the terminals and runs of its own sessions (those carrying `marker`), and said
    where the server says things (its status, a job's log)."""
    uid = pwd.getpwnam(user).pw_uid

    def send(text: str) -> None:
        say(text)
        deliver(text, uid, marker)

    return Schedule(end, send)


# -- the detached notifier of a host where nothing of rdev's runs (a lab container) ---------------------------------

def notifier_pid() -> Path:
    """This host's notifier (homes may be shared by several hosts, each with its own)."""
    return runs.runs_dir().parent / f"notifier-{socket.gethostname()}.pid"


def watch(spec: str) -> int:
    """Start the notifier for the end `spec` (base64url JSON {"ends", "what", "why", "advice"}), replacing an earlier
    one; this process returns at once, the notifier (a session of its own) ends itself after the last notice."""
    try:
        fields = json.loads(base64.urlsafe_b64decode(spec + "=" * (-len(spec) % 4)))
        end = End(datetime.fromisoformat(fields["ends"].replace("Z", "+00:00")).astimezone(timezone.utc),
                  str(fields["what"]), str(fields["why"]), str(fields["advice"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        print("rdev: the notice's description from the laptop cannot be read.", file=sys.stderr)
        return 2
    uid = os.getuid()
    schedule = Schedule(end, lambda text: deliver(text, uid))
    terminals(uid), run_logs()  # everything the notifier uses is imported now: the zip it came in is deleted next
    ensure_private_dir(runs.runs_dir().parent)
    # One notifier per host: two connects at once must not leave two, one of them unrecorded.
    with held_lock(notifier_pid().with_suffix(".lock")):
        earlier = processes.read_recorded(notifier_pid())
        if earlier is not None:
            processes.terminate([earlier])
        if not schedule.pending:
            notifier_pid().unlink(missing_ok=True)
            return 0
        child = os.fork()
        if child:
            processes.record(notifier_pid(), child)  # before the lock goes: the next watch finds this one
            return 0
    # The notifier: its copy of the lock's descriptor closed as it left the block (the parent's holds the lock).
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)  # the SSH session that started it must not wait for these
    while True:
        due = schedule.next_due()
        if due is None:
            os._exit(0)
        time.sleep(min(60.0, max(0.0, (due - schedule.clock()).total_seconds())))  # a suspended clock catches up
        schedule.tick()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "watch":
        sys.exit(watch(sys.argv[2]))
    print("usage: python3 -m colab_side.long_runs.notices watch SPEC", file=sys.stderr)
    sys.exit(2)

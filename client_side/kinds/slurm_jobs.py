"""Slurm on a cluster, driven over SSH through its login node: rdev's runtime installed in the
user's home, rdev's job found, submitted, watched and cancelled.

Every call is one `ssh LOGIN 'sh -c ...'` through the login host's master connection, so each
costs a round trip, not a login. Commands are single-line POSIX sh (a login shell may be csh).
The job runs rdev's own runtime side (the zip the notebook cell carries, standard library only)
with the cluster's python3: a private sshd as the user on the compute node, in the foreground, so
that scancel and the time limit end it with the job.

The job is named rdev-NAME and carries this laptop's mark as its comment (`mark`): a name alone does not tell this
laptop's job from one that another laptop of the same user, or the user by hand, queued under it. What comes back
from the cluster is made printable (`printable`) before it can reach the terminal.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
from dataclasses import dataclass

from client_side.errors import BadInput, RdevError, printable
from client_side.ssh import probe, shipped
from colab_side.long_runs.idle import SETTING

# squeue's fields, in the order asked for: id, state, reason, node list, time left, partition, and last, as it may
# hold a "|" of its own, the comment (where rdev marks whose job it is).
_FORMAT = "%i|%T|%r|%N|%L|%P|%k"
# Jobs that hold, or will hold, a node; a COMPLETING one is on its way out.
_LIVE_STATES = "PENDING,CONFIGURING,RUNNING"
_LONG = re.compile(r"--([a-z][a-z0-9-]*)(=[A-Za-z0-9_.,:/@%+=-]+)?")
_VALUE = re.compile(r"[A-Za-z0-9_.,:/@%+=-]+")
# Short options, each a word of its own with its value in the next word: the common resource ones.
_SHORT = {"-p", "-G", "-t", "-N", "-n", "-c", "-C", "-A", "-q", "-w", "-x"}
# What rdev's job sets itself, or what would change how it runs; sbatch also takes any unambiguous
# start of a long option (`--job` for --job-name), so those are refused too.
_RESERVED = ("job-name", "output", "error", "wrap", "parsable", "array", "wait", "export", "chdir", "test-only",
             "hold", "input", "open-mode", "signal", "requeue", "kill-on-invalid-dep", "comment")
# Options that run the job on another cluster (-M too), where squeue and scancel on the login node never look: rdev
# would submit again at every connect and could not cancel it.
_ELSEWHERE = ("clusters", "cluster-constraint")
_TIMEOUT = 60
_ID = re.compile(r"[0-9]+")  # a job id as it goes back into commands (str.isdigit takes other scripts' digits too)


@dataclass(frozen=True)
class Job:
    """One job named as rdev's, as squeue shows it (`owned` tells whether this laptop submitted it)."""

    id: str
    state: str  # PENDING, RUNNING, ...
    reason: str  # why it pends ("Resources", "Priority", ...), "None" when running
    node: str
    left: str  # time left before its time limit ends it: [D-][HH:]MM:SS, or UNLIMITED, NOT_SET, INVALID
    partition: str
    comment: str = ""  # rdev's mark on the jobs it submits (`mark`), or whatever else the job carries

    def seconds_left(self) -> int | None:
        """`left` in seconds (None when the job has no limit, or squeue gave none)."""
        days, _, clock = self.left.rpartition("-")
        parts = clock.split(":")
        if not (days.isdigit() or days == "") or not all(p.isdigit() for p in parts) or not 1 <= len(parts) <= 3:
            return None
        seconds = 0
        for part in parts:
            seconds = seconds * 60 + int(part)
        return seconds + int(days or 0) * 86400


def flags(text: str) -> str:
    """sbatch options as one line, each checked: they travel through the login node's shell."""
    try:
        words = shlex.split(text)
    except ValueError as err:
        raise BadInput(f"The Slurm options {text!r} cannot be read ({err})", "give them as sbatch takes them, "
                       "e.g. --slurm \"--partition=gpu --gres=gpu:1 --time=04:00:00\".") from None
    for i, word in enumerate(words):
        long = _LONG.fullmatch(word)
        if (long and any(other.startswith(long.group(1)) for other in _ELSEWHERE)) or word.startswith("-M"):
            raise BadInput(f"{word.split('=')[0]} would run rdev's job on another cluster, where squeue and scancel on "
                           "the login node do not find it", "leave it out of --slurm: rdev's job runs on the login "
                           "node's own cluster.")
        if long and any(reserved.startswith(long.group(1)) for reserved in _RESERVED):
            raise BadInput(f"rdev sets {word.split('=')[0]} of its job itself (or it would change how the job "
                           "runs)", "leave it out of --slurm.")
        value = i > 0 and words[i - 1] in _SHORT and _VALUE.fullmatch(word) and not word.startswith("-")
        if not (long or word in _SHORT or value):
            raise BadInput(f"The Slurm option {word!r} is not one rdev passes on", "give long options as "
                           "--name=value (letters, digits and . , : / @ % + = -), or one of "
                           f"{' '.join(sorted(_SHORT))} followed by its value, e.g. --gres=gpu:1 -p gpu.")
    if words and words[-1] in _SHORT:
        raise BadInput(f"The Slurm option {words[-1]} has no value", "give it one, e.g. -p gpu.")
    return " ".join(words)


def job_name(name: str) -> str:
    return f"rdev-{name}"


def mark(key: str) -> str:
    """The comment rdev gives its jobs: a digest of the laptop's rdev key, the one key the job's sshd lets in. A job
    of the same name from another laptop (or typed by hand) has another comment, and is never taken for this one's."""
    return f"rdev:{hashlib.sha256(' '.join(key.split()[:2]).encode()).hexdigest()[:16]}"


def owned(found: list[Job], recorded: str | None, key: str) -> tuple[list[Job], list[Job]]:
    """`found` split into this laptop's jobs (the one its registry recorded first, then those with its mark, which
    an interrupted connect or `rdev remove` left unrecorded) and the others of the same name."""
    ours = sorted((j for j in found if j.id == recorded or j.comment == mark(key)), key=lambda j: j.id != recorded)
    return ours, [j for j in found if j not in ours]


def runtime_path(zip_bytes: bytes) -> str:
    """Where the runtime of this rdev lives on the cluster (named by its content: version-locked)."""
    return f"$HOME/.rdev/runtime/rdev-{hashlib.sha256(zip_bytes).hexdigest()[:16]}.zip"


def install_runtime(login: str, zip_bytes: bytes) -> str:
    """Put this rdev's runtime side into the user's home on the cluster, unless it is there whole:
    an upload cut short is checked against its digest and never takes the final name."""
    where = runtime_path(zip_bytes)
    digest = hashlib.sha256(zip_bytes).hexdigest()
    whole = f'echo "{digest}  $1" | sha256sum -c --status'
    _run(login, f'check() {{ {whole}; }}; f="{where}"; if [ -f "$f" ] && check "$f"; then cat >/dev/null; else '
                f'mkdir -p "$HOME/.rdev/runtime" && chmod 700 "$HOME/.rdev" && cat > "$f.$$" && check "$f.$$" && '
                f'mv "$f.$$" "$f" || {{ rm -f "$f.$$"; exit 1; }}; fi', zip_bytes, what="Installing rdev's runtime")
    return where


def jobs(login: str, name: str) -> list[Job]:
    """The user's jobs named as rdev's for `name` that are still queued or running, newest first: whose they are
    is for `owned` to tell."""
    out = _run(login, f"squeue --noheader --user=\"$(id -un)\" --name={job_name(name)} --states={_LIVE_STATES} "
                      f"--format='{_FORMAT}'")
    found = [_job(line) for line in out.splitlines() if line.strip()]
    return sorted((j for j in found if j), key=lambda j: int(j.id) if j.id.isdigit() else 0, reverse=True)


def check_python(login: str, name: str, python: str | None) -> None:
    """Refuse, before anything is queued, a cluster whose Python is too old for the runtime side (its login node
    stands for its nodes, which share its software): the job would only fail in its log."""
    argv = probe.ssh_argv(login, "-o", "BatchMode=yes") + [f"sh -c {shlex.quote(shipped.choose_python(python))}"]
    try:
        result = subprocess.run(argv, check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise RdevError(f"The login node {login} did not answer within {_TIMEOUT} s",
                        "check your network or VPN, then run again.") from None
    failure = shipped.python_failure(name, result.returncode, result.stderr, python)
    if failure is not None:
        raise failure


def submit(login: str, name: str, options: str, *, runtime: str, key: str, workdir: str, idle_stop: int,
           python: str | None = None) -> str:
    """Submit rdev's job; its id. The job ends itself after `idle_stop` minutes without a session, run or GPU
    process (0: never), so that a GPU nobody uses goes back to the cluster (colab_side.long_runs.idle)."""
    state = f'"$HOME/.rdev/slurm/{name}-$SLURM_JOB_ID"'
    ticket = f'"$HOME/.rdev/slurm/{name}-$SLURM_JOB_ID.ticket"'
    serve = (f'{shipped.choose_python(python)}\n'
             f'exec env PYTHONPATH="{runtime}" "$py" -m colab_side serve --in-job --tunnel direct '
             f'--listen "$(hostname)" --authorized-key {shlex.quote(key)} --workdir {shlex.quote(workdir)} '
             f'--state-dir {state} --ticket-file {ticket} --idle-stop {int(idle_stop)}')
    # A login shell: the cluster's module system and the user's profile set up the job's environment.
    # A requeued job keeps its id: the ticket of its earlier run must not be taken for this one's.
    script = (f"#!/bin/bash -l\n# rdev: VS Code on this node until the job ends ('rdev stop {name}' ends it).\n"
              f"rm -f {ticket}\n{serve}\n")
    try:
        out = _run(login, f'mkdir -p "$HOME/.rdev/slurm" && chmod 700 "$HOME/.rdev" "$HOME/.rdev/slurm" && '
                          f'j=$(sbatch --parsable --job-name={job_name(name)} --comment={mark(key)} '
                          f'--output="$HOME/.rdev/slurm/{name}-%j.log" {options}) && printf "rdev-job:%s\\n" "$j"',
                   script.encode(), what="sbatch")
    except BaseException:
        _forget_submitted(login, name, key)
        raise
    # Login scripts may print around sbatch's answer: it is the marked line.
    marked = [line.split("rdev-job:", 1)[1] for line in out.splitlines() if "rdev-job:" in line]
    job = marked[-1].strip().split(";")[0] if marked else ""
    if not _ID.fullmatch(job):
        _forget_submitted(login, name, key)
        raise RdevError(f"sbatch answered {out.strip()[-80:]!r}, not a job id",
                        "check the Slurm options and the login node's profile, then run again.")
    return job


def set_idle_stop(login: str, name: str, job: str, minutes: int) -> None:
    """Give a job already queued or running the idle stop this connect asked for: its server reads the minutes from
    this file in its state folder at every check (made here if the job has not started yet)."""
    folder = f'"$HOME/.rdev/slurm/{name}-{_checked_id(job)}"'
    _run(login, f'd={folder}; mkdir -p "$d" && chmod 700 "$d" && printf "%s\\n" {int(minutes)} > "$d/{SETTING}.$$" && '
                f'mv -f "$d/{SETTING}.$$" "$d/{SETTING}"', what="Setting the job's idle stop")


def _forget_submitted(login: str, name: str, key: str) -> None:
    """Cancel what a submit whose answer was lost may have queued: this laptop's jobs for `name` (rdev submits only
    when none of those is queued), never another's of the same name."""
    try:
        for job in owned(jobs(login, name), None, key)[0]:
            cancel(login, job.id)
    except RdevError:
        pass


@dataclass(frozen=True)
class Watched:
    """One look at a job: as squeue shows it (None once it left the queue), its place among the
    pending jobs by priority (None unless it pends), and its ticket ("" until its sshd wrote one)."""

    job: Job | None
    position: int | None
    ticket: str


def watch(login: str, name: str, job: str) -> Watched:
    job = _checked_id(job)
    out = _run(login, f"squeue --noheader --jobs={job} --format='{_FORMAT}' 2>/dev/null; echo '--'; "
                      f"squeue --noheader --states=PENDING --sort=-p,i --format=%i --partition=\"$(squeue --noheader "
                      f"--jobs={job} --format=%P)\" 2>/dev/null; echo '--'; "
                      f'cat "$HOME/.rdev/slurm/{name}-{job}.ticket" 2>/dev/null; true')
    queue, _, rest = out.partition("--\n")
    pending, _, ticket = rest.partition("--\n")
    found = next((j for j in map(_job, queue.splitlines()) if j and j.id == job), None)
    order = pending.split()
    return Watched(found, order.index(job) + 1 if job in order else None, ticket.strip())


def cancel(login: str, job: str) -> None:
    _run(login, f"scancel {_checked_id(job)}", what="scancel")


def _checked_id(job: str) -> str:
    if not _ID.fullmatch(job):
        raise ValueError(f"not a Slurm job id: {job!r}")
    return job


def _job(line: str) -> Job | None:
    """A line of squeue's; None unless its id is a plain number (ids go back into commands)."""
    # Shown to the user: nothing from the cluster reaches the terminal as a control code.
    fields = [printable(field) for field in line.strip().split("|", 6)]
    return Job(*fields) if len(fields) == 7 and _ID.fullmatch(fields[0]) else None


def _run(login: str, command: str, stdin: bytes | None = None, what: str = "Slurm") -> str:
    """`command` on the login node; its output, or one sentence with what it said."""
    argv = probe.ssh_argv(login, "-o", "BatchMode=yes") + [f"sh -c {shlex.quote(command)}"]
    try:
        result = subprocess.run(argv, check=False, input=stdin or b"", capture_output=True, timeout=_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise RdevError(f"The login node {login} did not answer within {_TIMEOUT} s",
                        "check your network or VPN, then run again.") from None
    if result.returncode == 0:
        return result.stdout.decode(errors="replace")
    # What the login node said reaches the terminal in the error: its control codes made harmless, line by line.
    said = [printable(" ".join(line.split())) for line in result.stderr.decode(errors="replace").splitlines()]
    if result.returncode == 255:
        raise probe.failure(login, "\n".join(said))
    last = " ".join(filter(None, said))[-200:]
    fix = ("check the Slurm options ('rdev add NAME --slurm ...' again) and the cluster, then run again."
           if what == "sbatch" else "check the cluster (is its Slurm up, and your home writable?), then run again.")
    raise RdevError(f"{what} on {login} failed ({last or f'exit {result.returncode}'})", fix)

"""A Slurm cluster: VS Code on a GPU compute node, in a job, reached through the login node.

`rdev add NAME --host LOGIN --slurm "OPTIONS"` keeps two hosts: `NAME-login`, a password host
like any other (keyring, key installed once, pinned), and NAME, the node of rdev's job, reached
with ProxyJump through it. `rdev connect NAME` sets up the login node, installs this rdev's runtime
side in the user's home there, reuses rdev's running job or submits one, shows its wait in the
queue, and hands the node's ticket (host key included) to the one pipeline. Cluster admins forbid
editors on the login node; nothing of the editor runs there.

A job is this laptop's when its registry recorded it or it carries this laptop's mark (`slurm_jobs.owned`); only
those are reused and cancelled. Another job named rdev-NAME (another laptop's, one submitted by hand) is left alone
and named in one line, since it holds the user's resources too.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from bootstrap import ticket as tickets
from client_side import inputs
from client_side.errors import BadInput, RdevError
from client_side.kinds import password_host, pipeline, slurm_jobs
from client_side.local import presets, registry, store
from client_side.local.locking import changing_files, setting_up
from client_side.local.registry import HostEntry
from client_side.ssh import keys, known_hosts, probe, shipped
from colab_side.long_runs.idle import MOST as MOST_IDLE  # what the job's side takes: a week; longer is 0, never

WAIT = 600.0  # how long `rdev connect` waits for a queued job by default, in seconds
IDLE_STOP = 60  # minutes without a session, run or GPU process after which rdev's job ends itself, by default
_POLL = 2.0  # each look is a few squeue calls: slurmctld serves the whole cluster


def login_name(name: str) -> str:
    return inputs.name(f"{name}-login")


def add(*, name: str, host: str, user: str | None, port: int, jump: str | None, preset_name: str | None,
        path: str | None, options: str, identity: str | None = None, python: str | None = None,
        idle_stop: int | None = None) -> str:
    """Register the cluster: its login node as a password host, and NAME for the node of rdev's job (which ends
    itself after `idle_stop` minutes idle; None: IDLE_STOP)."""
    name = inputs.name(name)
    options = slurm_jobs.flags(options)
    idle_stop = checked_idle_stop(idle_stop) if idle_stop is not None else None
    login = login_name(name)
    known = registry.load()
    ours = known.get(name) is not None and known[name].slurm is not None and known[name].jump == login
    if login in known and not ours:
        raise BadInput(f"A host named {login} exists already, and rdev would use that name for {name}'s login node",
                       f"remove it first ('rdev remove {login}') or give the cluster another name.")
    preset = presets.get(preset_name or "slurm")
    workdir = inputs.folder(path or preset.workdir)
    password_host.add(name=login, host=host, user=user, port=port, jump=jump, preset_name=preset_name or "slurm",
                      path=None, identity=identity)
    front = registry.get(login)
    # Until a job runs, NAME leads to the login node's own address through it: no node is known yet.
    entry = HostEntry(name=name, host=front.host, port=front.port, user=front.user, tunnel="slurm", workdir=workdir,
                      jump=login, slurm=options, python=inputs.python(python) if python else None,
                      idle_stop=idle_stop)
    with setting_up(name), changing_files():
        if store.reaches_differently(entry, None):
            probe.close_master(name)
        store.put(entry, ())
    return (f"Added {name}: a Slurm cluster through its login node {login} ({front.user}@{front.host}:{front.port}), "
            f"jobs with {options or 'the cluster defaults'}; a job {_idle_words(entry)}. Next: rdev connect {name}")


def prepare(entry: HostEntry, *, password_stdin: bool, accept_new_host_key: bool, wait: float,
            say: Callable[[str], None]) -> pipeline.Prepared:
    """Log in to the login node, find or start rdev's job, wait for its sshd; the node's host, to write.
    A job this connect submitted is cancelled if anything after fails, so nothing is left queued."""
    login = _login(entry)
    quiet = pipeline.Opening(open=False, editor=None, editor_name=None, folder=None)
    pipeline.establish(password_host.prepare(login, password_stdin=password_stdin,
                                             accept_new_host_key=accept_new_host_key, say=say), quiet, say)
    python = shipped.python_word(entry.python)
    slurm_jobs.check_python(login.name, entry.name, python)
    runtime = slurm_jobs.install_runtime(login.name, shipped.runtime_zip())
    key = keys.public_key()
    with setting_up(entry.name):  # two connects at once must not both submit
        queued, others = slurm_jobs.owned(slurm_jobs.jobs(login.name, entry.name), entry.slurm_job, key)
        if others:
            say(_not_ours(entry.name, others))
        if queued:
            job, undo = queued[0].id, None
            # The minutes kept for this host may have changed since the job was submitted (connect --idle-stop).
            slurm_jobs.set_idle_stop(login.name, entry.name, job, idle_minutes(entry))
        else:
            if entry.slurm_job:
                say(f"{entry.name}: job {entry.slurm_job} has ended (time limit, preemption or scancel); submitting a "
                    "new one.")
            job = slurm_jobs.submit(login.name, entry.name, entry.slurm or "", runtime=runtime, key=key,
                                    workdir=entry.workdir, idle_stop=idle_minutes(entry), python=python)
            undo = _Cancel(login.name, job)
            say(f"{entry.name}: submitted Slurm job {job}.")
    try:
        state, text = _wait(login.name, entry.name, job, wait=wait, cancels=undo is not None, say=say)
        ticket = _ticket(text, job, login)
    except BaseException:
        if undo:
            undo()
        raise
    pinned = known_hosts.pinned(entry.name)
    if pinned and sorted(pinned) != sorted(ticket.host_keys):
        say(f"{entry.name}: job {job} runs a new sshd; rdev pins its host key "
            f"{known_hosts.fingerprint(ticket.host_keys[0])}.")
    left = state.seconds_left()
    # The end as a moment, not the cluster's local clock time, which names no time zone; connect says how long is left.
    ends = tickets.utc_timestamp(datetime.now(timezone.utc) + timedelta(seconds=left)) if left is not None else None
    node = replace(entry, host=ticket.host, port=ticket.port, user=ticket.user, slurm_job=job, slurm_node=state.node,
                   expires=ends)
    say(f"{entry.name}: your job holds its GPU until it ends; 'rdev stop {entry.name}' ends it early, so others can "
        f"use it, and it {_idle_words(entry)}.")
    return pipeline.Prepared(entry=node, host_keys=ticket.host_keys, on_failure=undo, prefetch=True,
                             done=f"ssh works on node {state.node} (Slurm job {job})")


@dataclass(frozen=True)
class _Cancel:
    """Cancels the job a connect submitted, when that connect fails after all."""

    login: str
    job: str

    def __call__(self) -> None:
        try:
            slurm_jobs.cancel(self.login, self.job)
        except RdevError:
            pass  # it may have ended on its own; the error that stopped the connect is the one to show


def _login(entry: HostEntry) -> HostEntry:
    login = registry.load().get(entry.jump or "")
    if login is None or not login.login:
        raise RdevError(f"The login node entry {entry.jump} of {entry.name} is gone",
                        f"add the cluster again: rdev add {entry.name} --host LOGIN --slurm \"...\".")
    return login


def _ticket(text: str, job: str, login: HostEntry) -> tickets.Ticket:
    """The job's ticket, checked: its sshd must be reachable from the login node."""
    try:
        ticket = tickets.parse(text)
    except tickets.TicketError as err:
        raise RdevError(f"The ticket job {job} wrote cannot be used ({err})",
                        "check the job's log in ~/.rdev/slurm on the cluster.") from None
    if _loopback(ticket.host) and not _loopback(login.host):
        raise RdevError(f"Job {job}'s node names itself by a loopback address ({ticket.host}), which the login node "
                        "cannot reach", "ask the cluster's admins why the node's host name resolves to loopback "
                        "there ('hostname -i' on the node).")
    return ticket


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _wait(login: str, name: str, job: str, *, wait: float, cancels: bool,
          say: Callable[[str], None]) -> tuple[slurm_jobs.Job, str]:
    """The running job and its ticket, saying how its wait goes (`cancels`: the caller cancels the job
    if this gives up)."""
    deadline = time.monotonic() + wait
    shown = None
    while True:
        seen = slurm_jobs.watch(login, name, job)
        state, ticket = seen.job, seen.ticket
        if state is None:
            raise RdevError(f"Slurm job {job} ended before its sshd started",
                            f"its log is ~/.rdev/slurm/{name}-{job}.log on the cluster; then run 'rdev connect "
                            f"{name}' again.")
        if state.state == "RUNNING" and ticket:
            return state, ticket
        if (state.state, state.reason, seen.position) != shown:
            shown = (state.state, state.reason, seen.position)
            why = f" ({state.reason})" if state.state == "PENDING" and state.reason not in ("", "None") else ""
            place = f", number {seen.position} in the queue" if seen.position else ""
            say(f"{name}: job {job} is {state.state.lower()}{why}{place}; waiting up to {wait:.0f} s.")
        if time.monotonic() > deadline:
            raise RdevError(f"Slurm job {job} was still {state.state.lower()} ({state.reason}) after {wait:.0f} s"
                            + (", so rdev cancelled it" if cancels else ""),
                            f"try again later, ask for less ('rdev add {name} ... --slurm'), or wait longer "
                            "with --wait SECONDS.")
        time.sleep(_POLL)


def stop(entry: HostEntry, say: Callable[[str], None]) -> None:
    """Cancel this laptop's jobs for the cluster (scancel); the hosts stay known. Another job of the same name
    is named, not cancelled: rdev cannot tell it from the user's own work elsewhere."""
    login = _login(entry).name
    queued, others = slurm_jobs.owned(slurm_jobs.jobs(login, entry.name), entry.slurm_job, keys.public_key())
    with setting_up(entry.name):
        probe.close_master(entry.name)
        for job in queued:
            slurm_jobs.cancel(login, job.id)
        store.put(replace(entry, slurm_job=None, slurm_node=None, expires=None))
    say(f"Cancelled Slurm job {', '.join(j.id for j in queued)} of {entry.name}." if queued
        else f"No Slurm job of rdev's runs for {entry.name}.")
    if others:
        say(_not_ours(entry.name, others))


def _not_ours(name: str, others: list[slurm_jobs.Job]) -> str:
    """One line on jobs named as rdev's for `name` that this laptop did not submit: left alone, but they hold the
    user's resources, so the user hears of them (and how to end them)."""
    ids = [j.id for j in others]
    many = len(ids) > 1
    them = "them" if many else "it"
    return (f"{name}: Slurm job{'s' * many} {', '.join(ids)} {'are' if many else 'is'} named "
            f"{slurm_jobs.job_name(name)} too but not from rdev on this laptop (another computer's, or submitted by "
            f"hand): rdev leaves {them} alone; 'scancel {' '.join(ids)}' on the login node ends {them}.")


def checked_idle_stop(minutes: int) -> int:
    """--idle-stop as given: whole minutes from 0 (never) to a week."""
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 0 <= minutes <= MOST_IDLE:
        raise BadInput(f"The idle stop {minutes} is not a whole number of minutes from 0 to {MOST_IDLE}",
                       "give one such as --idle-stop 60, or --idle-stop 0 to never end the job for being idle.")
    return minutes


def keep_idle_stop(name: str, minutes: int) -> None:
    """`rdev connect NAME --idle-stop MINUTES`: keep the minutes for NAME's jobs, the next one's and (through the
    connect that follows) the one that runs."""
    name = inputs.name(name)
    minutes = checked_idle_stop(minutes)
    with setting_up(name), changing_files():
        entry = registry.load().get(name)
        if entry is None or entry.slurm is None:
            raise BadInput(f"--idle-stop is for a Slurm cluster's job, which {name} is not",
                           "leave it out; a notebook runtime takes it where it serves: serve(idle_stop=MINUTES).")
        store.put(replace(entry, idle_stop=minutes))


def idle_minutes(entry: HostEntry) -> int:
    return IDLE_STOP if entry.idle_stop is None else entry.idle_stop


def _idle_words(entry: HostEntry) -> str:
    minutes = idle_minutes(entry)
    return (f"ends itself after {minutes} min without a session, run or GPU process" if minutes
            else "is never ended for being idle")


def checked_wait(seconds: float) -> float:
    """--wait as given: more than 0 and at most a day."""
    if not 0 < seconds <= 86400:  # also refuses nan and inf
        raise BadInput(f"The wait {seconds} is not a number of seconds above 0 and up to 86400",
                       "give one such as --wait 600.")
    return seconds

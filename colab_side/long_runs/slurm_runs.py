"""A run on a Slurm cluster as a batch job of its own: sbatch, squeue and scancel as colab_side.long_runs.runs uses them
on the login node.

The job runs the run's wrapper (`colab_side.long_runs.run_wrapper RUN --batch`) on a compute node, from the runtime zip
the laptop installed in the user's home (client_side.kinds.slurm_jobs.install_runtime), not from the zip a helper call
brings, which is deleted when the call ends. On a cluster the home is shared between the login and compute nodes, so the
run's record and log are read from either; the queue says whether a run that has not recorded its end still pends, runs
or is gone. Standard library only, Python 3.8+.
"""

from __future__ import annotations

import getpass
import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import Callable

from colab_side.errors import Failure

QUEUE_EVERY = 5.0  # slurmctld serves the whole cluster: a follower or a listing asks it this often at most
CALL_TIMEOUT = 60
KILL_WAIT = 60.0  # from scancel to the job gone: Slurm's KillWait (30 s by default) and its cleanup
PENDING = ("PENDING", "CONFIGURING", "REQUEUED", "RESV_DEL_HOLD", "REQUEUE_HOLD")
_RUNTIME = re.compile(r"rdev-[0-9a-f]{16}\.zip")  # as slurm_jobs.runtime_path names it
_ID = re.compile(r"[0-9]+")
_queue: dict[str, str] = {}
_asked = [float("-inf")]


def job_name(run: str) -> str:
    """`rdev-run:RUN`: no host alias holds a ':', so `rdev stop` (which looks for rdev-NAME) never takes it for the
    cluster's interactive job."""
    return f"rdev-run:{run}"


def checked(slurm: object) -> tuple[list[str], Path]:
    """The laptop's {"options": [...], "runtime": NAME}: sbatch options (checked there, and passed here as an argv,
    through no shell) and the installed runtime zip."""
    options = slurm.get("options") if isinstance(slurm, dict) else None
    runtime = str(slurm.get("runtime")) if isinstance(slurm, dict) else ""
    if not (isinstance(options, list) and all(isinstance(word, str) for word in options)
            and _RUNTIME.fullmatch(runtime)):
        raise Failure("the run's Slurm options from the laptop cannot be read", "run 'rdev run' again.")
    zipped = Path.home() / ".rdev" / "runtime" / runtime
    if not zipped.is_file():
        raise Failure(f"rdev's runtime {zipped} is not on the cluster", "run 'rdev run' again: it installs it.")
    return options, zipped


def submit(run: str, options: list[str], *, runtime: Path, python: str, log: Path, env: dict[str, str]) -> str:
    """Queue the run as its own job (its output, Slurm's words included, appended to `log`); the job's id."""
    # A login shell, as rdev's interactive job has: the cluster's module system and the user's profile set the job up.
    # `cd /` first: nothing in the current folder may shadow a module of the wrapper's.
    script = (f"#!/bin/bash -l\n# rdev: run {run}, a job of its own ('rdev kill' ends it).\ncd / || exit 1\n"
              f"PYTHONPATH={shlex.quote(str(runtime))}${{PYTHONPATH:+:$PYTHONPATH}}; export PYTHONPATH\n"
              f"exec {shlex.quote(python)} -m colab_side.long_runs.run_wrapper {shlex.quote(run)} --batch\n")
    output = str(log).replace("%", "%%")  # sbatch reads %j and the like in a file name
    argv = ["sbatch", "--parsable", f"--job-name={job_name(run)}", f"--output={output}", "--open-mode=append", *options]
    said = _slurm(argv, script, env)
    job = said.strip().splitlines()[-1].split(";")[0] if said.strip() else ""
    if not _ID.fullmatch(job):
        raise Failure(f"sbatch answered {said.strip()[-80:]!r}, not a job id", "check the Slurm options, then run again.")
    return job


def queued(job: str, fresh: bool = False) -> str | None:
    """The job's state as squeue shows it (RUNNING, PENDING, ...); None once it has left the queue, "" when squeue
    does not answer (nothing can be told then). All of the user's jobs in one call, reused for QUEUE_EVERY seconds
    unless `fresh`."""
    if fresh or time.monotonic() - _asked[0] > QUEUE_EVERY:
        try:
            said = _slurm(["squeue", "--noheader", f"--user={getpass.getuser()}", "--format=%i|%T"])
        except Failure:
            return ""
        _queue.clear()
        _queue.update({line.split("|")[0].strip(): line.split("|")[1].strip() for line in said.splitlines()
                       if line.count("|") == 1})
        _asked[0] = time.monotonic()
    return _queue.get(job)


def state(record: dict, reread: Callable[[], dict]) -> str:
    """A batch run's state: pending while its job waits, lost once the job has left the queue without its wrapper
    recording the end (`reread` reads the record again: it may have, meanwhile), else as the record says."""
    found = queued(str(record["job"]))
    if found is None:
        record = reread()
        return str(record["state"]) if record.get("state") in ("exited", "killed") else "lost"
    if found in PENDING:
        return "pending"
    return "starting" if record.get("state") == "pending" else str(record.get("state"))  # until its wrapper writes


def cancel(job: str, wrapper_only: bool = False, fail: bool = False) -> None:
    """scancel: Slurm sends SIGTERM to every process of the job, SIGKILL after its KillWait; `wrapper_only`, SIGTERM to
    the run's wrapper alone (the batch step's process, which the job script execs), which ends the run's processes as
    `rdev kill` does elsewhere (a process tracker without cgroups loses those that left the job's process tree). A
    job that has just ended is no failure, unless `fail`: the caller looks at the queue afterwards."""
    if not _ID.fullmatch(job):  # from a record in the user's home: never an option of scancel's
        raise Failure(f"the run's job {job!r} is not a Slurm job id", "end it with scancel on the login node.")
    try:
        _slurm(["scancel", *(["--batch", "--signal=TERM"] if wrapper_only else []), job])
    except Failure:
        if fail:
            raise


def _slurm(argv: list[str], stdin: str = "", env: dict[str, str] | None = None) -> str:
    """A Slurm command's output; a Failure with what it said when it fails."""
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, cwd=str(Path.home()),
                              check=False, timeout=CALL_TIMEOUT)
    except FileNotFoundError:
        raise Failure(f"there is no {argv[0]} here", "run this on a Slurm cluster's login node.") from None
    except subprocess.TimeoutExpired:
        raise Failure(f"{argv[0]} did not answer within {CALL_TIMEOUT} s", "check the cluster, then run again.") from None
    if done.returncode != 0:
        said = " ".join(done.stderr.split())[-200:] or f"exit status {done.returncode}"
        raise Failure(f"{argv[0]} failed ({said})", "check the Slurm options and the cluster, then run again.")
    return done.stdout

"""`rdev run`, `rdev runs`, `rdev logs`, `rdev kill`, `rdev attach`: commands on a host that outlive the connection.

The host's side is colab_side.long_runs.runs, shipped over SSH on each call as colab_side.notebook.jupyter is (nothing
of rdev is installed there) and run with the host's python3 or the Python it was added with. A run's command is an argv,
not a shell string: its words reach the host exactly as typed (as base64url JSON, which no login shell reads) and run
without a shell there, in the host's folder, so nothing in them can break out of rdev's wrapper; a pipeline is
`-- sh -c '...'`. What the host sends back (log lines, last lines) is made printable before it reaches the terminal.

`--gpus N` on a shared server reads the GPUs as `rdev gpus` does and sends the free ones; the host hands out N of them
(less those a live run of rdev's was given) as CUDA_VISIBLE_DEVICES. On a Slurm cluster a run is a batch job of its
own, submitted with the cluster's sbatch options, `--slurm` ones and `--gpus=N`, and every runs command goes to the
login node (whose home the compute nodes share), so that runs outlive the interactive job and `rdev stop`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shlex
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from client_side import inputs
from client_side.commands import run_pulls
from client_side.errors import BadInput, RdevError, printable
from client_side.local import registry
from client_side.local.registry import HostEntry
from client_side.ssh import helper_call, probe, shipped

RUN_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
MOST_GPUS = 64
CALL_TIMEOUT = 120.0  # a start waits for its wrapper, a kill for SIGTERM then SIGKILL: well within this
LIST_TIMEOUT = 30.0
# What a terminal would act on rather than show: CSI (colours, cursor moves), OSC (titles, links), other escapes.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -/]*[0-~]")
_TMUX_SESSION = re.compile(r"rdev-[A-Za-z0-9_-]{1,64}")

Say = Callable[[str], None]


def run_name(value: str) -> str:
    if not RUN_NAME.fullmatch(value):
        raise BadInput(f"The run name {value!r} cannot be used", "use 1 to 64 letters, digits, '.', '_' or '-'.")
    return value


def default_name(command: list[str], now: datetime | None = None) -> str:
    """The command's first word and the time, e.g. `python-0412-153012`: short, and unique enough for one user."""
    word = re.sub(r"[^A-Za-z0-9._-]", "", os.path.basename(command[0]))[:40].lstrip(".-") or "run"
    return f"{word}-{(now or datetime.now()).strftime('%m%d-%H%M%S')}"


def start(name: str, command: list[str], *, run: str | None, say: Say, env: dict[str, str] | None = None,
          gpus: int | None = None, slurm: str | None = None, pull: str | None = None) -> None:
    """Start COMMAND on NAME as run RUN (default_name if None), detached from this connection, and say how to reach it:
    on `gpus` GPUs that look free, on a Slurm cluster as a batch job of its own (with `slurm`'s extra options), and
    with `pull` (a path there) copied back into the current folder when it ends."""
    if not command or not command[0]:
        raise BadInput("There is no command to run", f"give it after '--', e.g. rdev run {name} -- python train.py.")
    run = run_name(run) if run is not None else default_name(command)
    if gpus is not None and (isinstance(gpus, bool) or not 1 <= gpus <= MOST_GPUS):
        raise BadInput(f"--gpus {gpus} is not a number of GPUs from 1 to {MOST_GPUS}", "give one such as --gpus 1.")
    entry = registry.get(_known(name))
    if slurm is not None and entry.slurm is None:
        raise BadInput(f"--slurm is for a run on a Slurm cluster, which {entry.name} is not",
                       "leave it out (a cluster is added with 'rdev add NAME --host LOGIN --slurm \"...\"').")
    waiting = run_pulls.plan(entry.name, run, pull, via=_where(entry)) if pull is not None else None
    spec: dict[str, object] = {"argv": command, "workdir": entry.workdir, "env": env or {}}
    if entry.slurm is not None:
        spec["slurm"] = _batch(entry, slurm, gpus)
    elif gpus is not None and entry.colab_session is not None:
        say(f"{entry.name} is a Colab runtime of your own: its GPUs are all yours, so rdev picks none.")
    elif gpus is not None:
        spec["gpus"] = {"count": gpus, "free": _free_gpus(entry.name, gpus)}
    encoded = base64.urlsafe_b64encode(json.dumps(spec).encode()).decode().rstrip("=")
    # Before the start, so that a run never ends with its pull unrecorded; a refused start (a run of that name still
    # running) puts back the pull it replaced. An interrupted start may have started: its pull is kept.
    earlier = run_pulls.keep(waiting) if waiting else None
    try:
        shown = _run(_call(entry.name, "start", run, encoded, timeout=CALL_TIMEOUT), entry.name)
        _started(entry.name, run, shown, say)
    except RdevError:
        if waiting:
            run_pulls.put_back(waiting, earlier)
        raise
    if waiting and shown.get("state") in run_pulls.ENDED:
        run_pulls.settle(waiting, say)
    elif waiting:
        run_pulls.watch_in_background(waiting)
        say(f"When it ends, {printable(waiting.remote)} comes back into {printable(waiting.local)} (if this laptop is "
            f"away then, at the next 'rdev runs').")


def pull_after(name: str, run: str) -> int:
    """The watcher `--pull` leaves: follow RUN on NAME until it ends, then copy its pull back; its exit status. It
    says nothing (nobody reads it): a pull it could not make stays for `rdev runs`, which says why."""
    try:
        logs(name, run, follow=True, out=lambda _line: None)
    except RdevError:
        return 1  # the link went, or the run is gone: `rdev runs` takes the pull up
    waiting = [pull for pull in run_pulls.pending(name) if pull.run == run]
    return 0 if all(run_pulls.settle(pull, say=lambda _words: None) for pull in waiting) else 1


def _batch(entry: HostEntry, extra: str | None, gpus: int | None) -> dict:
    """A Slurm cluster's run: its sbatch options (the cluster's, `--gpus=N` in place of any GPUs they ask for, then
    `extra`, checked as `rdev add --slurm` checks them) and the runtime it runs from, installed in the home there
    (once per rdev version), so that the job does not depend on the zip a helper call brings."""
    from client_side.kinds import slurm_jobs

    options = shlex.split(entry.slurm or "")
    if gpus:  # N GPUs for this run, whatever the cluster's options ask for its interactive job
        options = [*_without_gpus(options), f"--gpus={gpus}"]
    options += shlex.split(slurm_jobs.flags(extra or ""))
    runtime = slurm_jobs.install_runtime(_where(entry), shipped.runtime_zip())
    return {"options": options, "runtime": runtime.rsplit("/", 1)[-1]}


def _without_gpus(options: list[str]) -> list[str]:
    """sbatch options less those that ask for GPUs (--gpus..., --gres=gpu..., -G N)."""
    kept, value = [], False
    for word in options:
        if not value and word != "-G" and not word.startswith(("--gpus", "--gres=gpu")):
            kept.append(word)
        value = word == "-G"
    return kept


def _free_gpus(name: str, count: int) -> list[int]:
    """The GPUs on NAME that look free, as `rdev gpus` reads them; RdevError when fewer than `count` do."""
    from client_side.commands import gpus

    with contextlib.closing(gpus.answers([name], gpus.REPORT_TIMEOUT)) as arriving:
        found = next(arriving)
    if found.status == "no-nvidia-smi":
        raise RdevError(f"{name} has no nvidia-smi, so rdev cannot tell which GPUs are free",
                        "leave out --gpus there.")
    if found.status != "ok":
        raise RdevError(f"rdev could not read {name}'s GPUs ({found.message})", f"see 'rdev gpus {name}'.")
    free = [gpu.index for gpu in found.gpus if gpu.free]
    if len(free) < count:
        which = f" ({', '.join(map(str, free))})" if free else ""
        raise RdevError(f"{count} GPU{'s' * (count > 1)} asked for, but only {len(free)} of {name}'s "
                        f"{len(found.gpus)} look{'s' * (len(free) == 1)} free{which}, so nothing was started",
                        f"'rdev gpus {name}' shows what runs on them; ask for fewer with --gpus, or wait.")
    return free


def _started(name: str, run: str, shown: dict, say: Say) -> None:
    """What a start did, in two lines: where the run is and how to reach it; RdevError if it failed at once."""
    if shown.get("state") not in ("pending", "starting", "running"):
        ended = f"{run} on {name} ended at once ({_state(shown)}; its log ends: {_shown(shown.get('last_line'))})"
        if shown.get("status") == 0:
            say(f"{ended}.")
            return
        raise RdevError(ended, f"see 'rdev logs {name} {run}'; the command runs as given, as an argv, in "
                        f"{printable(str(shown.get('workdir')))} (a pipeline: -- sh -c '...').")
    given = printable(str(shown.get("gpus") or ""))
    gpus = f" on GPU{'s' * (',' in given)} {given}" if given else ""
    if shown.get("job"):
        say(f"Submitted {run} on {name} as Slurm job {printable(str(shown['job']))} ({_state(shown)}); its output goes "
            f"to {printable(str(shown.get('log')))} there. It outlives 'rdev stop {name}'.")
    else:
        where = (f"in tmux session {printable(str(shown['tmux']))} there" if shown.get("tmux") else
                 "in a session of its own, as there is no tmux there")
        say(f"Started {run} on {name}{gpus} (pid {printable(str(shown.get('pid')))}, {where}); its output goes to "
            f"{printable(str(shown.get('log')))} there.")
    attach = f", 'rdev attach {name} {run}' shows its terminal" if shown.get("tmux") else ""
    say(f"'rdev logs {name} {run} -f' follows it{attach}, 'rdev runs {name}' lists runs, 'rdev kill {name} {run}' "
        "ends it.")


def listing(name: str | None, as_json: bool = False, say: Say = lambda _words: None) -> str:
    """The runs on NAME, or on every host (asked at the same time; a host that fails is named in a line). The pulls
    of runs that have ended are made on the way, each said through `say`."""
    known = registry.load()
    # A cluster's runs are listed under its name; its login node's, which are the same (one home), are not again.
    logins = {entry.jump for entry in known.values() if entry.slurm is not None}
    names = [_known(name)] if name else sorted(set(known) - logins)
    if not names:
        return "[]" if as_json else "No hosts yet: 'rdev add NAME --host H' or 'rdev connect NAME' adds one."
    found: dict[str, list[dict]] = {}
    failed: dict[str, RdevError] = {}

    def ask(host: str) -> None:
        try:
            found[host] = _runs(_call(host, "list", timeout=LIST_TIMEOUT), host)
        except RdevError as err:
            failed[host] = err

    with ThreadPoolExecutor(max_workers=min(8, len(names))) as pool:
        list(pool.map(ask, names))
    if name and name in failed:
        raise failed[name]
    for host, runs in sorted(found.items()):
        run_pulls.settle_ended(host, runs, say)
    if as_json:
        return json.dumps({host: found.get(host, {"error": str(failed.get(host))}) for host in names}, indent=2)
    rows = [[host, printable(str(r.get("run"))), _state(r), _when(r.get("started")), _duration(r.get("duration")),
             printable(str(r.get("gpus") or "-")), _shown(r.get("last_line"))[:80]]
            for host in names for r in found.get(host, [])]
    notes = [f"{host}: {err}" for host, err in sorted(failed.items())]
    if not rows:
        return "\n".join([f"No runs on {name or 'any host'}.", *notes])
    header = ["HOST", "RUN", "STATE", "STARTED", "TIME", "GPUS", "LAST LINE"]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(6)]
    lines = ["  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), row[6]]).rstrip()
             for row in [header, *rows]]
    return "\n".join(lines + notes)


def logs(name: str, run: str, *, follow: bool, out: Say) -> str:
    """Print RUN's log through `out`, line by line as it arrives (`follow`: until the run ends); how it stands."""
    run, name = run_name(run), _known(name)
    pending = [""]

    def take(text: str) -> None:
        *complete, pending[0] = (pending[0] + text).split("\n")
        for line in complete:
            out(_shown(line))

    answer = _call(name, "log", run, *(["--follow"] if follow else []), timeout=None if follow else 600, out=take)
    if pending[0]:
        out(_shown(pending[0]))
    shown = _run(answer, name)
    return f"{run} on {name}: {_state(shown)}" + (f", for {_duration(shown.get('duration'))}"
                                                  if shown.get("duration") is not None else "") + "."


def kill(name: str, run: str) -> str:
    """End RUN on NAME and everything it started; what happened, in a line."""
    run, name = run_name(run), _known(name)
    answer = _call(name, "kill", run, timeout=CALL_TIMEOUT)
    shown, count = _run(answer, name), answer.get("ended") if isinstance(answer.get("ended"), int) else 0
    if answer.get("was") in ("exited", "killed") or (shown.get("job") and answer.get("was") == "lost"):
        left = f"; ended {count} process{'es' if count != 1 else ''} it had left behind" if count else ""
        return f"{run} on {name} had already ended ({_state(shown)}){left}."
    if shown.get("job"):
        return f"Killed {run} on {name}; its Slurm job {printable(str(shown['job']))} has ended."
    tmux = f", and its tmux session {printable(str(shown['tmux']))}" if shown.get("tmux") else ""
    return f"Killed {run} on {name}: {count} process{'es' if count != 1 else ''} ended{tmux}."


def attach(name: str, run: str) -> int:
    """`ssh -t NAME tmux attach` to RUN's tmux session: its live terminal (Ctrl-b d leaves it running)."""
    run, name = run_name(run), _known(name)
    [shown] = _runs(_call(name, "list", run, timeout=LIST_TIMEOUT), name)[:1] or [{}]
    if shown.get("state") not in ("pending", "starting", "running"):
        raise RdevError(f"{run} on {name} has ended ({_state(shown)})", f"'rdev logs {name} {run}' prints its output.")
    session = str(shown.get("tmux") or "")
    if shown.get("job"):
        raise RdevError(f"{run} on {name} is a Slurm batch job, with no terminal to attach to",
                        f"follow its output with 'rdev logs {name} {run} -f'.")
    if not _TMUX_SESSION.fullmatch(session):
        raise RdevError(f"{run} on {name} has no tmux session (there was no tmux on {name} when it started)",
                        f"follow its output with 'rdev logs {name} {run} -f'.")
    # Quoted: zsh would read a bare `=word` as the path of the command `word`.
    return subprocess.run(probe.ssh_argv(name, "-t") + [f"tmux attach -t {shlex.quote('=' + session)}"],
                          check=False).returncode


def _runs(answer: dict, name: str) -> list[dict]:
    """The runs in a host's answer, each as the helper describes one."""
    runs = answer.get("runs")
    if not isinstance(runs, list) or not all(isinstance(r, dict) and "state" in r for r in runs):
        raise RdevError(f"rdev's run helper on {name} answered something unexpected", "run the command again.")
    return runs


def _run(answer: dict, name: str) -> dict:
    return _runs({"runs": [answer.get("run")]}, name)[0]


def _known(name: str) -> str:
    name = inputs.name(name)
    registry.get(name)  # an unknown name gets rdev's sentence (exit 2), not ssh's
    return name


def _state(shown: dict) -> str:
    """running, exited 3, exited (signal 9), killed, lost: as the table and the sentences say it."""
    state = str(shown.get("state"))
    if state == "exited":
        state = f"exited {shown['status']}" if shown.get("status") is not None else f"exited (signal {shown.get('signal')})"
    return printable(state)


def _when(stamp: object) -> str:
    """The host's UTC time in this laptop's time zone."""
    try:
        return datetime.fromisoformat(str(stamp)).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return "?"


def _duration(seconds: object) -> str:
    if not isinstance(seconds, (int, float)):
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02}h" if days else f"{hours}h{minutes:02}m" if hours else (
        f"{minutes}m{secs:02}s" if minutes else f"{secs}s")


def _shown(line: object) -> str:
    """A line of a run's terminal as it shows there: no escapes, only what follows its last carriage return (a
    progress bar's latest state), tabs as spaces, anything else unprintable as '?'."""
    text = _ESCAPES.sub("", str(line or "")).rstrip("\r")
    return printable(text.rsplit("\r", 1)[-1].expandtabs())


def _where(entry: HostEntry) -> str:
    """Where NAME's runs are kept and looked after: the host itself, or a Slurm cluster's login node."""
    if entry.slurm is None:
        return entry.name
    from client_side.kinds import slurm_host

    return slurm_host.login_name(entry.name)


def _call(name: str, *args: str, timeout: float | None, out: Say | None = None) -> dict:
    """Run `colab_side.long_runs.runs ARGS` for NAME (on its login node for a Slurm cluster); {"out": text} lines go to
    `out` as they arrive. Its answer."""
    entry = registry.get(name)
    python = entry.python
    remote = shipped.command("long_runs.runs", *args, python=shipped.python_word(python))

    def heard(message: dict) -> bool:
        if "out" in message:
            if out is not None:
                out(str(message["out"]))
            return True
        return not message  # an empty one is the follower's sign of life

    return helper_call.call(_where(entry), remote, what="run helper", timeout=timeout, python=python, heard=heard,
                            fix=f"run 'rdev doctor' and check the host with 'rdev ssh {_where(entry)}'.")

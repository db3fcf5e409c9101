"""`rdev run`, `rdev runs`, `rdev logs`, `rdev kill`, `rdev attach`: commands on a host that outlive the connection.

The host's side is colab_side.runs, shipped over SSH on each call as colab_side.jupyter is (nothing of rdev is
installed there) and run with the host's python3 or the Python it was added with. A run's command is an argv, not a
shell string: its words reach the host exactly as typed (as base64url JSON, which no login shell reads) and run
without a shell there, in the host's folder, so nothing in them can break out of rdev's wrapper; a pipeline is
`-- sh -c '...'`. What the host sends back (log lines, last lines) is made printable before it reaches the terminal.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from client_side import inputs
from client_side.errors import BadInput, RdevError, printable
from client_side.local import registry
from client_side.ssh import helper_call, probe, shipped

RUN_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
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


def start(name: str, command: list[str], *, run: str | None, say: Say, env: dict[str, str] | None = None) -> None:
    """Start COMMAND on NAME as run RUN (default_name if None), detached from this connection, and say how to reach it."""
    if not command or not command[0]:
        raise BadInput("There is no command to run", f"give it after '--', e.g. rdev run {name} -- python train.py.")
    run = run_name(run) if run is not None else default_name(command)
    name = _known(name)
    spec = {"argv": command, "workdir": registry.get(name).workdir, "env": env or {}}
    encoded = base64.urlsafe_b64encode(json.dumps(spec).encode()).decode().rstrip("=")
    shown = _run(_call(name, "start", run, encoded, timeout=CALL_TIMEOUT), name)
    if shown.get("state") not in ("starting", "running"):
        ended = f"{run} on {name} ended at once ({_state(shown)}; its log ends: {_shown(shown.get('last_line'))})"
        if shown.get("status") == 0:
            say(f"{ended}.")
            return
        raise RdevError(ended, f"see 'rdev logs {name} {run}'; the command runs as given, as an argv, in "
                        f"{printable(str(shown.get('workdir')))} (a pipeline: -- sh -c '...').")
    where = (f"in tmux session {printable(str(shown['tmux']))} there" if shown.get("tmux") else
             "in a session of its own, as there is no tmux there")
    say(f"Started {run} on {name} (pid {printable(str(shown.get('pid')))}, {where}); its output goes to "
        f"{printable(str(shown.get('log')))} there.")
    attach = f", 'rdev attach {name} {run}' shows its terminal" if shown.get("tmux") else ""
    say(f"'rdev logs {name} {run} -f' follows it{attach}, 'rdev runs {name}' lists runs, 'rdev kill {name} {run}' "
        "ends it.")


def listing(name: str | None, as_json: bool = False) -> str:
    """The runs on NAME, or on every host (asked at the same time; a host that fails is named in a line)."""
    names = [_known(name)] if name else sorted(registry.load())
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
    if as_json:
        return json.dumps({host: found.get(host, {"error": str(failed.get(host))}) for host in names}, indent=2)
    rows = [[host, printable(str(r.get("run"))), _state(r), _when(r.get("started")), _duration(r.get("duration")),
             _shown(r.get("last_line"))[:80]] for host in names for r in found.get(host, [])]
    notes = [f"{host}: {err}" for host, err in sorted(failed.items())]
    if not rows:
        return "\n".join([f"No runs on {name or 'any host'}.", *notes])
    header = ["HOST", "RUN", "STATE", "STARTED", "TIME", "LAST LINE"]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    lines = ["  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), row[5]]).rstrip()
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
    if answer.get("was") in ("exited", "killed"):
        left = f"; ended {count} process{'es' if count != 1 else ''} it had left behind" if count else ""
        return f"{run} on {name} had already ended ({_state(shown)}){left}."
    tmux = f", and its tmux session {printable(str(shown['tmux']))}" if shown.get("tmux") else ""
    return f"Killed {run} on {name}: {count} process{'es' if count != 1 else ''} ended{tmux}."


def attach(name: str, run: str) -> int:
    """`ssh -t NAME tmux attach` to RUN's tmux session: its live terminal (Ctrl-b d leaves it running)."""
    run, name = run_name(run), _known(name)
    [shown] = _runs(_call(name, "list", run, timeout=LIST_TIMEOUT), name)[:1] or [{}]
    if shown.get("state") not in ("starting", "running"):
        raise RdevError(f"{run} on {name} has ended ({_state(shown)})", f"'rdev logs {name} {run}' prints its output.")
    session = str(shown.get("tmux") or "")
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


def _call(name: str, *args: str, timeout: float | None, out: Say | None = None) -> dict:
    """Run `colab_side.runs ARGS` on NAME; {"out": text} lines go to `out` as they arrive. Its answer."""
    python = registry.get(name).python
    remote = shipped.command("runs", *args, python=shipped.python_word(python))

    def heard(message: dict) -> bool:
        if "out" in message:
            if out is not None:
                out(str(message["out"]))
            return True
        return not message  # an empty one is the follower's sign of life

    return helper_call.call(name, remote, what="run helper", timeout=timeout, python=python, heard=heard,
                            fix=f"run 'rdev doctor' and check the host with 'rdev ssh {name}'.")

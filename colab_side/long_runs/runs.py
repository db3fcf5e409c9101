"""`python3 -m colab_side.long_runs.runs start|list|log|kill`: the host's side of `rdev run`, `runs`, `logs` and `kill`.

A run is one command that outlives the SSH connection, the editor and the laptop; the laptop ships this module over
SSH as it does colab_side.notebook.jupyter. `start` records the run and launches the wrapper
(colab_side.long_runs.run_wrapper): in a tmux session `rdev-RUN` where the host has tmux (the command runs in the
foreground of the pane's terminal; tmux copies the pane into the log), else in a session of its own, stdin from
/dev/null, on a terminal of its own copied into the log (so that output comes line by line, as in a shell). `wrap`
records the exit status and end time. `kill` sends SIGTERM, then SIGKILL GRACE seconds later, to the command's process
group, session and everything below it, and records "killed".

The command is an argv, never a shell string (base64url JSON, which no login shell reads), run in the host's folder
with the SSH session's environment plus `env`; GPUs the laptop found free are handed out here, under the lock. With
`slurm` in its description, `start` on a cluster's login node queues the run as a batch job of its own instead
(colab_side.long_runs.slurm_runs). ~/.rdev/runs (0700, files 0600) holds
RUN.json (the record), RUN.log, RUN.sh and RUN.env (launcher and environment, until `wrap` has read them), RUN.kill
(while `kill` works). `wrap` imports all it uses before the run counts as started: the shipped zip is deleted then.
Each action prints JSON lines, the laptop's only channel back: {"out": text} for the log's text, then its result,
or {"error": ..., "fix": ...} with exit status 1. Standard library only, Python 3.8+.
"""

from __future__ import annotations

import base64
import codecs
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from bootstrap import SHIPPED
from bootstrap.files import atomic_write, ensure_private_dir, held_lock
from colab_side import processes
from colab_side.errors import Failure, answer, emit
from colab_side.long_runs import slurm_runs

RUN_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
START_TIMEOUT = 20.0
GRACE = 5.0  # from SIGTERM to SIGKILL, and from SIGKILL to giving up
HEARTBEAT = 2.0  # a follower writes at least this often, so that it notices a laptop that has gone
LIVE, FINAL = ("pending", "starting", "running"), ("exited", "killed")
CHUNK = 65536
END = b"\x1b]rdev-end\x07"  # printed on the pane after the command's output: terminals show nothing of it


def runs_dir() -> Path:
    return Path.home() / ".rdev" / "runs"


def run_file(run: str, suffix: str) -> Path:
    return runs_dir() / f"{run}{suffix}"


def stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One `start` or `kill` at a time per user: two laptops must not start two runs of one name."""
    ensure_private_dir(runs_dir().parent)
    ensure_private_dir(runs_dir())
    with held_lock(runs_dir() / ".lock"):
        yield


def read_record(run: str, needed: bool = True) -> dict | None:
    """Run `run`'s record; None if there is none and none is `needed`."""
    if not RUN_NAME.fullmatch(run):
        raise Failure(f"the run name {run!r} cannot be used", "use 1 to 64 letters, digits, '.', '_' or '-'.")
    path = run_file(run, ".json")
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        if needed:
            raise Failure(f"there is no run named {run} on {socket.gethostname()}", "'rdev runs' lists them.") from None
        return None
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict) or record.get("run") != run:
        raise Failure(f"the record of run {run}, {path}, is not what rdev wrote", "delete it and run again.")
    return record


def write_record(record: dict) -> None:
    atomic_write(run_file(record["run"], ".json"), json.dumps(record).encode(), 0o600, follow=False)


def state(record: dict) -> str:
    """pending (a batch job queued), starting, running, exited, killed, or lost: its wrapper is gone without a word
    (the host restarted, it was SIGKILLed, its job left the queue). Homes may be shared by several hosts: only the host
    that started a run can judge it, or for a batch job, Slurm."""
    if record.get("state") not in FINAL and record.get("job"):
        return slurm_runs.state(record, lambda: read_record(record["run"], needed=False) or record)
    if record.get("state") in FINAL or record.get("host") != socket.gethostname():
        return str(record.get("state"))
    wrapper = record.get("wrapper")
    if isinstance(wrapper, int) and processes.started(wrapper) == record.get("wrapper_started"):
        return str(record["state"])
    young = record.get("state") == "starting" and time.time() - record.get("started_at", 0) < START_TIMEOUT
    return "starting" if young else "lost"


def last_line(run: str) -> str:
    """The log's last line with something on it, as a terminal shows it (after its last carriage return)."""
    try:
        with open(str(run_file(run, ".log")), "rb") as log:
            log.seek(max(0, os.fstat(log.fileno()).st_size - 8192))
            tail = log.read().decode("utf-8", "replace")
    except OSError:
        return ""
    for line in reversed(tail.split("\n")):
        shown = [part for part in line.split("\r") if part.strip()]
        if shown:
            return shown[-1].strip()[:300]
    return ""


def summary(record: dict) -> dict:
    """What the laptop shows of a run; its duration on the host's own clock."""
    shown = state(record)
    end = record.get("ended_at") or (time.time() if shown in LIVE else None)
    keys = ("run", "argv", "workdir", "env", "host", "started", "ended", "status", "signal", "pid", "tmux", "gpus", "job")
    return {**{key: record.get(key) for key in keys}, "state": shown, "log": str(run_file(record["run"], ".log")),
            "duration": end - record["started_at"] if end else None, "last_line": last_line(record["run"])}


def environment(extra: dict[str, str]) -> dict[str, str]:
    """This SSH session's environment as the command gets it: the shipped zip was put on PYTHONPATH for this call
    only (and is deleted after it), and a tmux of the session's own would lie to the run."""
    env = {name: value for name, value in os.environ.items() if name not in ("TMUX", "TMUX_PANE")}
    kept = [entry for entry in env.pop("PYTHONPATH", "").split(os.pathsep) if entry and entry != SHIPPED]
    if kept:
        env["PYTHONPATH"] = os.pathsep.join(kept)
    return {**env, **extra}


def _folder(workdir: str) -> Path:
    """The host's folder, where the command runs: `~` is the home folder."""
    path = Path.home() / workdir[2:] if workdir.startswith("~/") else Path.home() if workdir == "~" else Path(workdir)
    if not path.is_absolute() or not path.is_dir():
        raise Failure(f"there is no folder {path} on {socket.gethostname()} for the run to start in",
                      "create it there (runs start in the host's folder), then run again.")
    return path


def run_tmux(binary: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *args], check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          env=env, cwd="/", timeout=30)


def start(run: str, argv: list[str], workdir: str, extra: dict[str, str], gpus: dict | None = None,
          slurm: dict | None = None) -> dict:
    """Start `argv` as run `run`, detached (with `gpus`, {"count", "free"}, on GPUs handed out here; with `slurm`, as
    a batch job); {"run": its summary} once it runs, is queued, or has already ended."""
    if not argv or not argv[0]:
        raise Failure("the command to run is empty", "give it after '--', e.g. rdev run NAME -- python train.py.")
    read_record(run, needed=False)  # a name that cannot be used is refused before anything else
    folder = _folder(workdir)
    with _locked():
        old = read_record(run, needed=False)
        if old is not None and state(old) in LIVE:
            where = f"as Slurm job {old['job']}" if old.get("job") else f"on {old.get('host')} (pid {old.get('pid')})"
            raise Failure(f"a run named {run} is still {state(old)} {where}",
                          "give the new one another --name, or end that one first with 'rdev kill'.")
        if slurm is not None:
            return _queued(run, argv, str(folder), extra, slurm)
        extra = {**extra, **(_handed_out(gpus) if gpus else {})}
        tmux = shutil.which("tmux")
        session = f"rdev-{run.replace('.', '_')}" if tmux else None  # tmux turns '.' in a session's name into '_'
        if tmux and old is not None and old.get("tmux") == session:  # the ended run's, kept open by remain-on-exit
            run_tmux(tmux, "kill-session", "-t", f"={session}")
        env = environment(extra)
        record = _new(run, argv, str(folder), extra, host=socket.gethostname(), state="starting", tmux=session,
                      tmux_binary=tmux, gpus=env.get("CUDA_VISIBLE_DEVICES"))
        log = _new_log(run)
        try:
            atomic_write(run_file(run, ".env"), json.dumps(env).encode(), 0o600, follow=False)
            # `cd /` first: nothing in the current folder may shadow a module of the wrapper's.
            launcher = (f"cd / || exit 1\nPYTHONPATH={shlex.quote(SHIPPED)}; export PYTHONPATH\n"
                        f"exec {shlex.quote(sys.executable)} -m colab_side.long_runs.run_wrapper {shlex.quote(run)}\n")
            atomic_write(run_file(run, ".sh"), launcher.encode(), 0o600, follow=False)
            write_record(record)
            return {"run": summary(_launched(record, env, log))}
        finally:
            os.close(log)


def _new(run: str, argv: list[str], folder: str, extra: dict[str, str], **more: object) -> dict:
    """A new run's record (its `.kill` of an earlier run of the name gone)."""
    run_file(run, ".kill").unlink(missing_ok=True)
    now = time.time()
    return {"run": run, "argv": argv, "workdir": folder, "env": extra, "started": stamp(now), "started_at": now,
            **more}


def _new_log(run: str) -> int:
    log = os.open(str(run_file(run, ".log")), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(log, 0o600)
    return log


def _handed_out(gpus: dict) -> dict[str, str]:
    """CUDA_VISIBLE_DEVICES for `count` of the GPUs the laptop found `free`, less those a live run here was given (it
    may not use them yet, so they still look free). Under the lock."""
    count, free = gpus.get("count"), gpus.get("free")
    if not (isinstance(count, int) and count > 0 and isinstance(free, list) and all(isinstance(i, int) for i in free)):
        raise Failure("the run's GPUs from the laptop cannot be read", "run 'rdev run' again.")
    given = {gpu for r in _records() if r.get("host") == socket.gethostname() and r.get("gpus") and state(r) in LIVE
             for gpu in str(r["gpus"]).split(",")}
    left = [str(i) for i in free if str(i) not in given]
    if len(left) < count:
        raise Failure(f"{count} GPU{'s' * (count != 1)} asked for, but of the GPUs that look free only "
                      f"{len(left)} ({', '.join(left) or 'none'}) {'is' if len(left) == 1 else 'are'} not given to "
                      "a run of rdev's already", "'rdev runs' lists the runs; ask for fewer with --gpus, or wait.")
    # nvidia-smi counts GPUs in PCI bus order, CUDA fastest first unless told otherwise.
    return {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": ",".join(left[:count])}


def _queued(run: str, argv: list[str], folder: str, extra: dict[str, str], slurm: dict) -> dict:
    """Queue the run as a Slurm batch job of its own (colab_side.long_runs.slurm_runs). Its wrapper starts on the
    compute node once the record names its job; until then only this writes the record. Under the lock."""
    options, runtime = slurm_runs.checked(slurm)
    record = _new(run, argv, folder, extra, host=None, state="pending", tmux=None, tmux_binary=None, job=None)
    os.close(_new_log(run))
    write_record(record)
    try:
        record["job"] = slurm_runs.submit(run, options, runtime=runtime, python=sys.executable,
                                          log=run_file(run, ".log"), env=environment({}))
    except BaseException:
        run_file(run, ".json").unlink(missing_ok=True)
        raise
    write_record(record)
    return {"run": summary(record)}


def _launched(record: dict, env: dict[str, str], log: int) -> dict:
    """Launch the wrapper (in tmux, else in a session of its own); its record once it says the command runs."""
    run, tmux, session = record["run"], record["tmux_binary"], record["tmux"]
    launcher, process = str(run_file(run, ".sh")), None
    if session:
        # tmux hands the command to the user's shell (`$SHELL -c`): a quoted path reads the same in sh, csh and fish.
        made = run_tmux(tmux, "new-session", "-d", "-s", session, f"/bin/sh {shlex.quote(launcher)}", env=env)
        if made.returncode != 0:
            os.write(log, f"rdev: tmux failed ({made.stderr.strip()}); the run has a session of its own\n".encode())
            record["tmux"] = session = None
            write_record(record)
    if not session:
        process = subprocess.Popen(["/bin/sh", launcher], stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/",
                                   env=env, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        gone = process.poll() is not None if process else run_tmux(tmux, "has-session", "-t", f"={session}").returncode
        now = read_record(run)
        if now is not None and now.get("state") != "starting":
            return now
        if gone or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if process is None:
        run_tmux(tmux, "kill-session", "-t", f"={session}")
    elif process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    for leftover in (".json", ".env", ".sh"):
        run_file(run, leftover).unlink(missing_ok=True)
    why = "its launcher exited" if gone else f"it did not start within {START_TIMEOUT:.0f} s"
    raise Failure(f"run {run} did not start: {why} (its log ends: {last_line(run) or 'nothing'})",
                  f"see {run_file(run, '.log')} on {socket.gethostname()}.")


def finish(record: dict, code: int | None) -> int:
    """Record how the command ended (None: unknown): "killed" when `kill` asked for it."""
    now = time.time()
    killed = run_file(record["run"], ".kill").exists()
    record.update(state="killed" if killed else "exited", status=code if code is None or code >= 0 else None,
                  signal=-code if code is not None and code < 0 else None, ended=stamp(now), ended_at=now)
    write_record(record)
    return 1 if code is None else code if code >= 0 else 128 - code


def _members(record: dict) -> set[int]:
    """The run's processes: what runs in the command's process group and session, and below (processes.py)."""
    leader, since = record.get("pid"), str(record.get("pid_started"))
    return processes.group_members(leader, since) if isinstance(leader, int) and since.isdigit() else set()


def end_processes(record: dict) -> int:
    """SIGTERM to the run's processes, SIGKILL to those left GRACE seconds later, twice: the first may have started
    more meanwhile. How many there were."""
    if not os.path.isdir("/proc"):  # macOS, the BSDs: the command's process group
        with contextlib.suppress(OSError, TypeError):
            os.killpg(record["pid"], signal.SIGKILL)
        return 0
    first = _members(record)
    processes.terminate(list(first), GRACE)
    rest = _members(record)
    processes.terminate(list(rest), GRACE)
    return len({*first, *rest})


def kill(run: str) -> dict:
    """End the run, everything it started and its tmux session; "killed" in its record. A batch run's processes are
    on a compute node: its wrapper there ends them as this would (SIGTERM to the wrapper alone), then its job ends."""
    with _locked():
        record = read_record(run) or {}
        was, job = state(record), str(record.get("job") or "")
        marker = run_file(run, ".kill")
        marker.touch(0o600)
        try:
            ended = 0 if job else end_processes(record)
            if job and was in LIVE:
                slurm_runs.cancel(job, wrapper_only=was == "running")
            deadline = time.monotonic() + (slurm_runs.KILL_WAIT if job else GRACE)
            while time.monotonic() < deadline:  # its wrapper records the end
                record = read_record(run) or record
                if state(record) not in LIVE or (job and slurm_runs.queued(job, fresh=True) is None):
                    break
                time.sleep(0.5 if job else 0.1)
            record = read_record(run) or record
            if job and record.get("state") not in FINAL and slurm_runs.queued(job, fresh=True) is not None:
                slurm_runs.cancel(job, fail=True)  # no wrapper answered: Slurm ends all of the job
            if record.get("state") not in FINAL:  # no wrapper is left to say so
                finish(record, None)
        finally:
            marker.unlink(missing_ok=True)
        if record.get("tmux") and record.get("tmux_binary"):
            run_tmux(record["tmux_binary"], "kill-session", "-t", f"={record['tmux']}")
    return {"run": summary(record), "was": was, "ended": ended}


def log(run: str, follow: bool) -> dict:
    """Send the log as {"out": text} lines; with `follow`, until the run has ended and all it wrote is sent."""
    record = read_record(run) or {}
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    position, said, ended = 0, time.monotonic(), not follow
    while True:
        chunk = b""
        with contextlib.suppress(FileNotFoundError), open(str(run_file(run, ".log")), "rb") as handle:
            handle.seek(position)
            chunk = handle.read(CHUNK)
        if chunk:
            position += len(chunk)
            emit({"out": decoder.decode(chunk)})
            said = time.monotonic()
            continue
        if ended:
            break
        record = read_record(run) or record
        ended = state(record) not in LIVE  # its last output is in before its end is recorded: one more read
        if time.monotonic() - said > HEARTBEAT:
            emit({})  # fails once the laptop has gone, which ends this follower
            said = time.monotonic()
        if not ended:
            time.sleep(0.2)
    rest = decoder.decode(b"", final=True)
    if rest:
        emit({"out": rest})
    return {"run": summary(record)}


def listing(run: str | None) -> dict:
    """The runs (or the one named), oldest first."""
    if run is not None:
        return {"runs": [summary(read_record(run) or {})]}
    return {"runs": [summary(r) for r in sorted(_records(), key=lambda r: r.get("started_at", 0))]}


def _records() -> list[dict]:
    names = [path.name[:-5] for path in runs_dir().glob("*.json")] if runs_dir().is_dir() else []
    return [r for r in (read_record(name, needed=False) for name in names if RUN_NAME.fullmatch(name)) if r]


def _spec(encoded: str) -> tuple[list[str], str, dict[str, str], dict | None, dict | None]:
    """`start`'s command, folder, environment, GPUs and Slurm options, from the laptop's base64url JSON."""
    try:
        spec = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        argv, workdir, extra = spec["argv"], spec.get("workdir", "~"), spec.get("env", {})
        gpus, slurm = spec.get("gpus"), spec.get("slurm")
        if not (isinstance(argv, list) and isinstance(workdir, str) and isinstance(extra, dict)):
            raise TypeError
        if not all(isinstance(word, str) for word in [*argv, *extra, *extra.values()]):
            raise TypeError
        if not all(isinstance(given, (dict, type(None))) for given in (gpus, slurm)):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise Failure("the run's description from the laptop cannot be read", "run 'rdev run' again.") from None
    return argv, workdir, extra, gpus, slurm


def main(argv: list[str]) -> int:
    action, words = (argv[0], argv[1:]) if argv else ("", [])
    actions: dict[tuple[str, int], Callable[[], dict]] = {
        ("start", 2): lambda: start(words[0], *_spec(words[1])),
        ("list", 0): lambda: listing(None),
        ("list", 1): lambda: listing(words[0]),
        ("log", 1): lambda: log(words[0], follow=False),
        ("log", 2): lambda: log(words[0], follow=words[1] == "--follow"),
        ("kill", 1): lambda: kill(words[0]),
    }
    act = actions.get((action, len(words)))
    if act is None:
        emit({"error": f"unknown action {' '.join(argv)!r}", "fix": "use start, list, log or kill."})
        return 2
    return answer(act, runs_dir())

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

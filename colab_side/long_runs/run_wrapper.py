"""`python3 -m colab_side.long_runs.run_wrapper RUN [--batch]`: what a run's launcher execs on the host
(colab_side.long_runs.runs starts it), or a run's Slurm batch job on its compute node (colab_side.long_runs.slurm_runs
queues it).

It runs the recorded command to its end, in the foreground of the tmux pane's terminal where the run has one (tmux
copies the pane into the log), else in a session of its own on a terminal of its own copied into the log, so that
output comes line by line as in a shell; then it records the exit status and end time. In a batch job it takes the
job's environment (Slurm's GPUs among it) and records the node it runs on. Standard library only, Python 3.8+.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import select
import shlex
import signal
import socket
import subprocess
import sys
import termios
import time

from colab_side.long_runs.runs import (
    CHUNK,
    END,
    START_TIMEOUT,
    end_processes,
    environment,
    finish,
    read_record,
    run_file,
    run_tmux,
    stamp,
    write_record,
)
from colab_side.processes import started


def wrap(run: str, batch: bool = False) -> int:
    """Run the recorded command to its end (the launcher, or the run's batch job, execs this), then record its status,
    which is also this process's."""
    # The wrapper outlives every terminal, the tmux pane's too; a handler, unlike SIG_IGN, is not inherited by the
    # command, which a hangup of its own terminal still ends.
    signal.signal(signal.SIGHUP, lambda *_: None)
    record: dict = {}
    asked: list[int] = []
    if batch:
        # `rdev kill`, scancel and the time limit send SIGTERM: the wrapper ends the run's processes, as `kill` does on
        # a host of its own, and records how the command ended.
        signal.signal(signal.SIGTERM, lambda *_: _end(asked, record))
        joined = _joined(run)
        if joined is None:
            return 1
        now = time.time()
        env = environment(joined.get("env") or {})
        record.update(joined, host=socket.gethostname(), gpus=env.get("CUDA_VISIBLE_DEVICES"), started=stamp(now),
                      started_at=now)
    else:
        record.update(read_record(run) or {})
        env = json.loads(run_file(run, ".env").read_text())
        for transient in (".env", ".sh"):
            run_file(run, transient).unlink(missing_ok=True)
    path, pane = str(run_file(run, ".log")), os.environ.get("TMUX_PANE") if record.get("tmux") else None
    if pane:  # tmux copies all the pane shows into the log, from before the command starts
        run_tmux(record["tmux_binary"], "pipe-pane", "-t", pane, f"exec cat >> {shlex.quote(path)}")
        env["TERM"] = os.environ.get("TERM", "screen")
    log = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    record.update(wrapper=os.getpid(), wrapper_started=started(os.getpid()))
    try:
        child, terminal = _spawn(record, env, log, on_pane=bool(pane))
    except OSError as err:
        os.write(log, f"rdev: cannot run {record['argv'][0]}: {err.strerror}\n".encode())
        return finish(record, 127 if isinstance(err, FileNotFoundError) else 126)
    record.update(state="running", pid=child.pid, pid_started=started(child.pid))
    write_record(record)
    if asked:  # asked to end before the command started
        end_processes(record)
    if terminal is not None:
        _copy(terminal, log, child)
    code = child.wait()
    if pane:
        _settled(path)
    return finish(record, code)


def _end(asked: list[int], record: dict) -> None:
    """SIGTERM in a batch job: end the command and all it started (once; before it starts, once it has)."""
    if not asked:
        asked.append(1)
        end_processes(record)


def _joined(run: str) -> dict | None:
    """The record once it names this job (its submitter writes it alone until then: the job may start before sbatch
    has answered); None when it names another job, which this one is not part of."""
    job, deadline = os.environ.get("SLURM_JOB_ID", ""), time.monotonic() + 3 * START_TIMEOUT
    while True:
        record = read_record(run) or {}
        if record.get("job") == job:
            return record
        if record.get("job"):
            return None
        if time.monotonic() > deadline:  # its submitter was cut short after sbatch: the job is the run's all the same
            return {**record, "job": job}
        time.sleep(0.2)


def _spawn(record: dict, env: dict[str, str], log: int, on_pane: bool) -> tuple[subprocess.Popen, int | None]:
    """The command, started on the tmux pane's terminal, in its foreground; else in a session of its own on a new
    terminal whose other end is returned (straight into the log where the host has no pseudo-terminals)."""
    argv, folder = record["argv"], record["workdir"]
    if on_pane:
        return subprocess.Popen(argv, cwd=folder, env=env, preexec_fn=_to_foreground), None  # noqa: PLW1509 (no threads)
    try:
        terminal, side = pty.openpty()
    except OSError:
        return subprocess.Popen(argv, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True), None
    try:
        return subprocess.Popen(argv, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=side, stderr=side,
                                start_new_session=True, preexec_fn=_take_terminal), terminal  # noqa: PLW1509
    except BaseException:
        os.close(terminal)
        raise
    finally:
        os.close(side)


def _to_foreground() -> None:
    """On the pane: a process group of the command's own, in the terminal's foreground, so that keys typed there
    (Ctrl-C) reach it, and `kill` ends its group and not this wrapper."""
    os.setpgid(0, 0)
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # asked from the background, where it now is
    with contextlib.suppress(OSError):
        os.tcsetpgrp(0, os.getpid())
    signal.signal(signal.SIGTTOU, signal.SIG_DFL)


def _take_terminal() -> None:
    """In the command's new session: its terminal becomes the controlling one (a hangup reaches what it started)."""
    with contextlib.suppress(OSError):  # without one, the command still runs
        fcntl.ioctl(1, termios.TIOCSCTTY, 0)


def _copy(terminal: int, log: int, child: subprocess.Popen) -> None:
    """The command's terminal into the log until the command has ended and what it printed is in: a child it left
    in the background does not hold the run open."""
    ended = None
    try:
        while True:
            ready = select.select([terminal], [], [], 0.2)[0]
            if ready:
                data = b""
                with contextlib.suppress(OSError):  # EIO: nothing holds the terminal any more
                    data = os.read(terminal, CHUNK)
                if not data:
                    return
                data = data.replace(b"\r\n", b"\n")  # the terminal's line ends, as a file has them
                while data:
                    data = data[os.write(log, data):]
            if child.poll() is not None:
                ended = ended or time.monotonic()
                if not ready or time.monotonic() - ended > 1:
                    return
    finally:
        os.close(terminal)


def _settled(path: str) -> None:
    """Wait (10 s at most) until tmux has copied all the command printed into the log: the mark printed on the pane
    after it is there too then, and is cut off again."""
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # printed from the background, where the command left this wrapper
    try:
        os.write(1, END)
    except OSError:  # the pane is gone
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(path, "rb") as log:
            start = max(0, os.fstat(log.fileno()).st_size - CHUNK)
            log.seek(start)
            tail = log.read()
        if END in tail:
            if tail.endswith(END):
                os.truncate(path, start + len(tail) - len(END))
            return
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(wrap(sys.argv[1], batch=sys.argv[2:] == ["--batch"]))

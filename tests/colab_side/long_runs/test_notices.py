"""colab_side/long_runs/notices.py: the notice's text, when it goes out (a fake clock, no sleeps), the runtime's end,
and where the line lands: a real pseudo-terminal whose session carries the server's marker, and a live run's log."""

from __future__ import annotations

import os
import pty
import select
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from colab_side import processes
from colab_side.long_runs import notices, runs

T = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
COLAB = notices.End(T, "this Colab runtime", "Colab's limit", "save it to Drive")
SLURM = notices.End(T, "Slurm job 7", "its time limit", "copy it off", exact=True)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.mark.parametrize(("seconds", "said"), [(900, "15 min"), (299.6, "5 min"), (10, "1 min"), (0, "1 min"),
                                                (7500, "2 h 5 min"), (86400, "24 h 0 min")])
def test_time_left_is_said_in_whole_minutes(seconds: float, said: str) -> None:
    assert notices.span(seconds) == said


def test_an_exact_end_and_an_estimate_read_differently() -> None:
    now = T - timedelta(minutes=15)
    assert notices.line(SLURM, now) == "rdev: Slurm job 7 ends in 15 min (its time limit): copy it off."
    assert notices.line(COLAB, now) == "rdev: this Colab runtime may end in about 15 min (Colab's limit): save it to Drive."


def test_notices_go_out_15_and_5_minutes_before_the_end() -> None:
    clock, sent = Clock(T - timedelta(hours=1)), list[str]()
    schedule = notices.Schedule(SLURM, sent.append, [900, 300], clock)
    for minutes, count in ((16, 0), (15, 1), (6, 1), (5, 2), (1, 2)):
        clock.now = T - timedelta(minutes=minutes)
        schedule.tick()
        assert len(sent) == count, minutes
    assert sent == [notices.line(SLURM, T - timedelta(minutes=15)), notices.line(SLURM, T - timedelta(minutes=5))]
    assert schedule.tick() and schedule.next_due() is None


def test_a_lead_time_already_past_when_the_schedule_starts_is_not_sent() -> None:
    # A server started (or its supervisor handed over) 10 minutes before the end: only the 5-minute notice is left.
    clock, sent = Clock(T - timedelta(minutes=10)), list[str]()
    schedule = notices.Schedule(SLURM, sent.append, [900, 300], clock)
    assert schedule.pending == [300] and schedule.next_due() == T - timedelta(minutes=5)
    schedule.tick()
    assert sent == []


def test_notices_due_together_make_one_line_and_none_after_the_end() -> None:
    clock, sent = Clock(T - timedelta(hours=1)), list[str]()
    schedule = notices.Schedule(SLURM, sent.append, [900, 300], clock)
    clock.now = T - timedelta(minutes=2)  # a suspended laptop... or a long stop of the process
    assert schedule.tick() and sent == [notices.line(SLURM, clock.now)]
    late, said = notices.Schedule(SLURM, sent.append, [900, 300], Clock(T - timedelta(hours=1))), list[str]()
    late.send, late.clock = said.append, Clock(T + timedelta(seconds=1))
    assert late.tick() and said == []


@pytest.mark.parametrize(("given", "leads"), [(None, [900.0, 300.0]), ("8,4", [8.0, 4.0]), ("soon", [900.0, 300.0]),
                                              ("-1", [900.0, 300.0]), ("", [900.0, 300.0])])
def test_lead_times_are_15_and_5_minutes_unless_a_test_sets_them(monkeypatch: pytest.MonkeyPatch, given: str | None,
                                                                 leads: list[float]) -> None:
    if given is None:
        monkeypatch.delenv(notices.LEADS_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(notices.LEADS_VARIABLE, given)
    assert notices.leads() == leads


def test_the_runtimes_end_where_it_is_known() -> None:
    colab = notices.runtime_end("colab", T, {})
    assert colab and colab.at == T + timedelta(hours=12) and not colab.exact and "Drive" in colab.advice
    kaggle = notices.runtime_end("kaggle", T, {})
    assert kaggle and kaggle.at == T + timedelta(hours=12)
    assert notices.runtime_end("generic", T, {}) is None  # nothing known: no end, no notice
    job = notices.runtime_end("generic", T, {"SLURM_JOB_ID": "42", "SLURM_JOB_END_TIME": "1893499200"})
    assert job and job.exact and job.at == datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc) and job.what == "Slurm job 42"
    test = notices.runtime_end("generic", T, {notices.LIFETIME_VARIABLE: "60"})
    assert test and test.at == T + timedelta(minutes=1)


def test_a_slurm_jobs_end_comes_from_squeue_on_the_node(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Slurm before 23.02 sets no SLURM_JOB_END_TIME: squeue's %e names the end on the cluster's (local) clock, and a
    job without a limit has none."""
    squeue = tmp_path / "squeue"
    squeue.write_text('#!/bin/sh\n[ "$*" = "-h -j 42 -o %e" ] && echo "$END"\n')
    squeue.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setenv("END", "2030-01-01T13:00:00")
    found = notices.runtime_end("generic", T, {"SLURM_JOB_ID": "42"})
    assert found and found.at == datetime(2030, 1, 1, 13, 0).astimezone(timezone.utc)
    monkeypatch.setenv("END", "Unknown")
    assert notices.runtime_end("generic", T, {"SLURM_JOB_ID": "42"}) is None


@pytest.fixture
def terminal() -> Iterator[tuple[int, int]]:
    """A process on a pseudo-terminal of its own (its controlling terminal) that carries a server's marker, as a
    shell of an SSH session does: (its pid, the terminal's master side)."""
    pid, master = pty.fork()
    if pid == 0:
        os.execve("/bin/sleep", ["sleep", "60"], {"RDEV_STATE": "/tmp/rdev-notices-test"})
    try:
        time.sleep(0.2)  # until it runs sleep, with the marker in its environment
        yield pid, master
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(master)


def read_all(master: int, timeout: float = 5.0) -> str:
    got = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and b"\n" not in got.lstrip(b"\r\n"):
        if select.select([master], [], [], 0.1)[0]:
            got += os.read(master, 4096)
    return got.decode(errors="replace")


def test_the_notice_reaches_the_sessions_terminal_and_no_other(terminal: tuple[int, int]) -> None:
    pid, master = terminal
    found = notices.terminals(os.getuid(), [pid])
    assert len(found) == 1 and found[0].parent == Path("/dev/pts"), found
    assert notices.terminals(os.getuid() + 1, [pid]) == []  # another user's processes: never their terminals
    text = "rdev: this runtime ends in 5 min (test): keep it."
    assert notices.deliver(text, os.getuid(), "RDEV_STATE=/tmp/rdev-notices-test") == 1
    assert text in read_all(master)
    assert notices.deliver("other", os.getuid(), "RDEV_STATE=/tmp/another-server") == 0


def test_the_notice_is_appended_to_a_live_runs_log(home: Path) -> None:
    runs.runs_dir().mkdir(parents=True, mode=0o700)
    me = os.getpid()
    record = {"run": "train", "host": socket.gethostname(), "state": "running", "started_at": time.time(),
              "wrapper": me, "wrapper_started": processes.started(me), "pid": me}
    runs.write_record(record)
    runs.write_record({**record, "run": "done", "state": "exited"})
    runs.write_record({**record, "run": "elsewhere", "host": "another-host"})  # a home shared with another host
    for run in ("train", "done", "elsewhere"):
        runs.run_file(run, ".log").write_text("epoch 1\n")
    assert notices.run_logs() == [runs.run_file("train", ".log")]
    assert notices.run_logs([me + 1]) == []  # started from another server's sessions
    assert notices._write(runs.run_file("train", ".log"), b"\nrdev: soon.\n", os.O_WRONLY | os.O_APPEND,
                          os.getuid()) == 1
    assert runs.run_file("train", ".log").read_text() == "epoch 1\n\nrdev: soon.\n"
    assert runs.run_file("done", ".log").read_text() == "epoch 1\n"


def test_a_link_in_a_logs_place_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("")
    (tmp_path / "RUN.log").symlink_to(target)
    assert notices._write(tmp_path / "RUN.log", b"x", os.O_WRONLY | os.O_APPEND, os.getuid()) == 0
    assert target.read_text() == ""


def test_watches_at_once_leave_one_notifier_and_a_later_one_replaces_it(home: Path) -> None:
    """Two connects to a lab container at the same time each start `watch`: one notifier is left, and recorded."""
    import base64
    import json
    import subprocess
    import sys

    from tests.conftest import REPO, read_or_empty

    ends = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    spec = base64.urlsafe_b64encode(json.dumps({"ends": ends, "what": "this container", "why": "its lifetime",
                                                "advice": "copy it"}).encode()).decode().rstrip("=")
    env = {**os.environ, "HOME": str(home), notices.LEADS_VARIABLE: "1800"}

    def notifiers() -> list[int]:
        return [int(p.parent.name) for p in Path("/proc").glob("[0-9]*/cmdline")
                if spec.encode() in read_or_empty(p) and processes.alive(int(p.parent.name))]

    try:
        starts = [subprocess.Popen([sys.executable, "-m", "colab_side.long_runs.notices", "watch", spec], env=env,
                                   cwd=REPO) for _ in range(4)]
        assert [start.wait(timeout=60) for start in starts] == [0, 0, 0, 0]
        running = notifiers()
        assert len(running) == 1, running
        assert processes.read_recorded(notices.notifier_pid()) == running[0]
        later = subprocess.run([sys.executable, "-m", "colab_side.long_runs.notices", "watch", spec], check=False,
                               env=env, cwd=REPO, timeout=60)
        assert later.returncode == 0
        replaced = notifiers()
        assert len(replaced) == 1 and replaced != running
    finally:
        for pid in notifiers():
            os.kill(pid, 9)

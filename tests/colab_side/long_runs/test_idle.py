"""The idle stop's rule (colab_side/long_runs/idle.py), on this machine's real processes: what keeps a server in use (a
process of the user's work, a GPU process through the nvidia-smi stand-in), what does not (rdev's own processes,
a tmux server holding only a prompt or an ended run), and when the watch stops the server and what it says."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from colab_side import processes
from colab_side.errors import ServeError
from colab_side.long_runs import idle, notices
from colab_side.state import StateFolder
from colab_side.supervisor import Supervisor
from tests.stand_ins import nvidia_smi

WARNING = "rdev: no session, run or GPU process here: in {left} rdev is {action}; connect or start a run to keep it."


@pytest.fixture
def state(tmp_path: Path) -> StateFolder:
    """A state folder with no server in it: no sshd, no tunnel, no supervisor."""
    folder = StateFolder((tmp_path / "server").resolve())
    folder.root.mkdir()
    return folder


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A PATH without nvidia-smi."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "sleep", "tmux"):
        if found := shutil.which(tool):
            (bin_dir / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(bin_dir))


@pytest.fixture
def orphans() -> Iterator[list[int]]:
    """Pids of processes started by `left_running`, killed at the end."""
    pids: list[int] = []
    yield pids
    processes.terminate(pids, timeout=2)


def left_running(pids: list[int], env: dict[str, str], command: str = "sleep 60") -> int:
    """`command` left running by a shell that exits at once, as a session leaves `nohup ... &`: its parent is
    then init (or a subreaper above this process), not this process."""
    marker = f"idle-{time.monotonic_ns()}"
    subprocess.run(["/bin/sh", "-c", f"RDEV_TEST_MARK={marker} exec {command} >/dev/null 2>&1 </dev/null &"],
                   env={**os.environ, **env}, check=True)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = processes.marked(f"RDEV_TEST_MARK={marker}")
        if found:
            pids.extend(found)
            return found[0]
        time.sleep(0.02)
    raise AssertionError(f"{command} did not start")


@pytest.mark.parametrize("value", [-1, -0.5, float("nan"), float("inf"), idle.MOST + 1, True, "60"])
def test_bad_minutes_for_serve_are_one_sentence_and_exit_2(value: object) -> None:
    with pytest.raises(ServeError) as caught:
        idle.minutes(value)  # type: ignore[arg-type]
    assert caught.value.exit_code == 2 and "minutes from 0 (never)" in str(caught.value)


@pytest.mark.parametrize("text", ["-1", "1.5", "abc", "", " 5", "\u0661", "10081"])
def test_bad_minutes_typed_are_refused(text: str) -> None:
    with pytest.raises(ServeError) as caught:
        idle.parsed(text)
    assert caught.value.exit_code == 2 and str(caught.value).count("\n") == 0


def test_good_minutes_are_taken() -> None:
    assert idle.minutes(None) is None and idle.minutes(0) == 0 and idle.minutes(0.05) == 0.05
    assert idle.parsed("0") == 0 and idle.parsed("60") == 60 and idle.parsed(str(idle.MOST)) == idle.MOST


@pytest.mark.parametrize(("given", "seconds"), [(None, 30.0), ("2", 2.0), ("0.5", 0.5), ("0", 30.0), ("-3", 30.0),
                                                ("x", 30.0), ("nan", 30.0), ("inf", 30.0)])
def test_the_check_period_is_30_s_unless_a_test_shortens_it(monkeypatch: pytest.MonkeyPatch, given: str | None,
                                                            seconds: float) -> None:
    if given is None:
        monkeypatch.delenv(idle.CHECK_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(idle.CHECK_VARIABLE, given)
    assert idle.check_seconds() == seconds


def test_a_server_with_nothing_left_is_idle(state: StateFolder, no_gpu: None) -> None:
    assert idle.in_use(state, None, os.getuid()) is None


def test_a_process_a_session_left_keeps_the_server(state: StateFolder, no_gpu: None, orphans: list[int]) -> None:
    pid = left_running(orphans, {"RDEV_STATE": str(state.root)})
    assert pid not in processes.descendants(os.getpid())  # as a session's nohup leaves it
    assert idle.in_use(state, None, os.getuid()) == f"process {pid}"
    processes.terminate([pid], timeout=2)
    assert idle.in_use(state, None, os.getuid()) is None


def test_a_process_of_the_job_keeps_it_and_another_jobs_does_not(state: StateFolder, no_gpu: None,
                                                                orphans: list[int]) -> None:
    job = f"9{os.getpid()}"  # no job of a Slurm elsewhere on this machine
    pid = left_running(orphans, {"SLURM_JOB_ID": job})
    assert idle.in_use(state, job, os.getuid()) == f"process {pid}"
    assert idle.in_use(state, job[:-1], os.getuid()) is None  # a whole entry, not a prefix
    assert idle.in_use(state, "", os.getuid()) is None


def test_rdevs_own_processes_do_not_count(state: StateFolder, no_gpu: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # This process carries the job's id, as serve in the job does, and so does what it starts (sshd, a fetch).
    job = f"8{os.getpid()}"
    monkeypatch.setenv("SLURM_JOB_ID", job)
    child = subprocess.Popen(["sleep", "60"], env={**os.environ, "RDEV_STATE": str(state.root)})
    try:
        assert idle.in_use(state, job, os.getuid()) is None
    finally:
        child.kill()
        child.wait()


@pytest.mark.skipif(shutil.which("tmux") is None, reason="no tmux here")
def test_a_tmux_server_holding_a_prompt_or_an_ended_run_is_idle_and_what_runs_in_it_is_not(
        state: StateFolder, no_gpu: None, tmp_path: Path) -> None:
    env = {**os.environ, "RDEV_STATE": str(state.root), "SHELL": "/bin/sh", "TMUX_TMPDIR": str(tmp_path)}

    def tmux(*args: str) -> None:
        subprocess.run(["tmux", "-L", "idle", "-f", "/dev/null", *args], env=env, check=True, capture_output=True)

    tmux("new-session", "-d", "-s", "prompt")  # a shell at its prompt
    try:
        tmux("set-option", "-g", "remain-on-exit", "on")
        tmux("new-session", "-d", "-s", "ended", "true")  # an ended run's session, kept open
        time.sleep(0.5)
        assert idle.in_use(state, None, os.getuid()) is None
        tmux("send-keys", "-t", "prompt", "exec sleep 61", "Enter")  # work in a window
        deadline = time.monotonic() + 5
        while idle.in_use(state, None, os.getuid()) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (idle.in_use(state, None, os.getuid()) or "").startswith("process ")
    finally:
        subprocess.run(["tmux", "-L", "idle", "kill-server"], env=env, check=False, capture_output=True)


def gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: dict) -> None:
    bin_dir = tmp_path / "gpubin"
    nvidia_smi.install(bin_dir, data)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def test_a_gpu_process_of_the_user_keeps_the_server(state: StateFolder, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    gpu(tmp_path, monkeypatch, {"processes": [{"gpu_uuid": "GPU-1", "pid": os.getpid(), "used_memory": 500}]})
    assert idle.in_use(state, None, os.getuid()) == f"GPU process {os.getpid()}"
    # Another user's process on a shared node's GPU is not this user's work.
    assert idle.in_use(state, None, os.getuid() + 4711) is None


def test_a_gpu_process_whose_pid_is_not_visible_here_keeps_the_server(state: StateFolder, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # In a container (Colab, Kaggle) nvidia-smi names the host's pids: whose it is cannot be told.
    unseen = 2 ** 22 + 17  # above any pid_max
    gpu(tmp_path, monkeypatch, {"processes": [{"gpu_uuid": "GPU-1", "pid": unseen, "used_memory": 500}]})
    assert idle.in_use(state, None, os.getuid() + 4711) == f"GPU process {unseen}"


def test_a_gpu_without_processes_or_a_failing_driver_is_idle(state: StateFolder, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    gpu(tmp_path, monkeypatch, {"gpus": [{"index": 0, "uuid": "GPU-1"}], "processes": []})
    assert idle.in_use(state, None, os.getuid()) is None
    gpu(tmp_path, monkeypatch, {"error": "NVIDIA-SMI has failed because it couldn't communicate with the driver"})
    assert idle.gpu_processes(os.getuid()) == []


def test_an_nvidia_smi_that_hangs_counts_as_in_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gpu(tmp_path, monkeypatch, {"delay": 30, "processes": []})
    started = time.monotonic()
    assert idle.gpu_processes(os.getuid(), timeout=0.5) is None
    assert time.monotonic() - started < 5


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def watch(state: StateFolder, limit: float, busy: list[str | None], monkeypatch: pytest.MonkeyPatch, *,
          job: str = "", runtime: str = "generic") -> tuple[idle.Watch, Clock, list[str], list[int]]:
    """A watch over `state` whose checks answer from `busy` (its last item, once used up)."""
    answers = iter(busy)
    last: list[str | None] = [None]

    def in_use(*args: object) -> str | None:
        last[0] = next(answers, last[0])
        return last[0]

    monkeypatch.setattr(idle, "in_use", in_use)
    clock, said, stops = Clock(), list[str](), list[int]()
    found = idle.Watch(state, limit, user=pwd.getpwuid(os.getuid()).pw_name, runtime=runtime,
                       stop=lambda: stops.append(1), say=said.append, job=job, period=30, clock=clock)
    return found, clock, said, stops


def run_for(found: idle.Watch, clock: Clock, seconds: float, step: float = 0.5) -> bool:
    end = clock.now + seconds
    while clock.now < end:
        if found.tick():
            return True
        clock.now += step
    return found.tick()


def test_the_server_stops_once_idle_for_its_minutes_and_says_so(state: StateFolder,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    found, clock, said, stops = watch(state, 1, [None], monkeypatch, job="4242")
    assert not run_for(found, clock, 59)
    assert run_for(found, clock, 31) and stops == [1]
    # A limit shorter than the warning's 5 minutes is warned of at once.
    assert said == [WARNING.format(left="1 min", action="ending the job to give the GPU back"),
                    "rdev: no session, run or GPU process for 1 min: ending the job to give the GPU back"]
    assert run_for(found, clock, 120) and stops == [1]  # once


def test_the_warning_goes_out_5_minutes_before_the_stop_to_terminals_and_runs(
        state: StateFolder, monkeypatch: pytest.MonkeyPatch) -> None:
    delivered: list[tuple[str, int, str | None]] = []
    monkeypatch.setattr(notices, "deliver", lambda text, uid, marker=None: delivered.append((text, uid, marker)))
    found, clock, said, stops = watch(state, 10, [None], monkeypatch)
    assert not run_for(found, clock, 299) and said == []
    assert not run_for(found, clock, 31)  # the check at 300 s: 5 minutes left
    text = WARNING.format(left="5 min", action="stopping the server")
    assert said == [text] and delivered == [(text, os.getuid(), state.marker)]
    assert run_for(found, clock, 300) and stops == [1] and len(delivered) == 1


def test_anything_in_use_starts_the_wait_again(state: StateFolder, monkeypatch: pytest.MonkeyPatch) -> None:
    # Checks at 0, 30, 60, ... s: idle, idle, a session, then idle from 90 s on.
    found, clock, said, stops = watch(state, 1, [None, None, "an SSH connection", None], monkeypatch)
    assert not run_for(found, clock, 149) and stops == []
    assert run_for(found, clock, 31) and stops == [1]
    warned = WARNING.format(left="1 min", action="stopping the server")  # again once idle anew
    assert said == [warned, warned, "rdev: no session, run or GPU process for 1 min: stopping the server"]


def test_zero_minutes_is_never_and_a_later_connect_changes_the_minutes(state: StateFolder,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    found, clock, _, stops = watch(state, 0, [None], monkeypatch)
    assert not run_for(found, clock, 3600) and stops == []
    (state.root / idle.SETTING).write_text("2\n")  # as `rdev connect --idle-stop 2` writes it
    assert not run_for(found, clock, 100)
    assert run_for(found, clock, 60) and stops == [1]
    for bad in ("-1\n", "abc", "99999999"):  # what does not read as minutes leaves the given ones
        (state.root / idle.SETTING).write_text(bad)
        assert found.current_limit() == 0


def test_what_cannot_be_read_counts_as_in_use(state: StateFolder, monkeypatch: pytest.MonkeyPatch) -> None:
    found, clock, _, stops = watch(state, 1, [None], monkeypatch)

    def unreadable(*args: object) -> str:
        raise PermissionError("/proc/1/environ")

    monkeypatch.setattr(idle, "in_use", unreadable)
    assert not run_for(found, clock, 600) and stops == []


def test_on_colab_the_runtime_is_given_back_with_googles_call(state: StateFolder,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    google, colab, runtime = (types.ModuleType(name) for name in ("google", "google.colab", "google.colab.runtime"))
    runtime.unassign = lambda: calls.append("unassign")  # type: ignore[attr-defined]
    for name, module in (("google", google), ("google.colab", colab), ("google.colab.runtime", runtime)):
        monkeypatch.setitem(sys.modules, name, module)
    found, clock, said, stops = watch(state, 1, [None], monkeypatch, runtime="colab")
    assert run_for(found, clock, 90) and stops == [1] and calls == ["unassign"]
    assert said[1:] == [idle.notice(1, "", "colab")]
    assert said[1].endswith("for 1 min: stopping the server and ending the Colab runtime to give the GPU back")

    idle.end_runtime("kaggle", said.append)  # Kaggle offers a notebook no such call
    idle.end_runtime("generic", said.append)
    assert calls == ["unassign"] and len(said) == 2

    def refused() -> None:
        raise RuntimeError("Unable to request VM unassignment.")

    runtime.unassign = refused  # type: ignore[attr-defined]
    idle.end_runtime("colab", said.append)
    assert said[-1].startswith("rdev: asking Colab to end the runtime raised RuntimeError (Unable to request")


def test_the_supervisor_ticks_each_round_until_the_server_is_stopped() -> None:
    ticks: list[float] = []
    stopped = [False]

    def tick() -> None:
        ticks.append(time.monotonic())
        stopped[0] = len(ticks) >= 2

    supervisor = Supervisor([], stopped=lambda: stopped[0], replaced=lambda: False, finish=lambda: None,
                            say=lambda _: None, ticks=(tick,))
    supervisor.start()
    supervisor._thread.join(10)
    assert not supervisor._thread.is_alive()
    assert len(ticks) == 2

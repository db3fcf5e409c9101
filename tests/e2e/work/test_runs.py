"""`rdev run`, `runs`, `logs`, `kill`, `attach` end to end: a real sshd on this machine, reached through rdev's config,
whose sessions get a home of the test's own (the Colab stand-in's Runtime sets HOME with SetEnv), with tmux on their
PATH or without it, and a tmux socket folder of the test's own (TMUX_TMPDIR), so that no tmux of this machine's is
touched. Each test runs once with tmux on the host and once without, unless it says otherwise. The host's nvidia-smi
is the stand-in (tests/stand_ins/nvidia_smi.py): GPU 0 busy with a process, GPU 1 free."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import pwd
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bootstrap.ticket import Ticket, utc_timestamp
from colab_side import processes
from tests.colab_side.long_runs.test_runs import path_without_tmux
from tests.commands.test_runs import RDEV, rdev_runs
from tests.conftest import REPO, read_or_empty, ssh_through
from tests.stand_ins import nvidia_smi
from tests.stand_ins.colab_runtime import Runtime

HOST_PATH = "/usr/local/bin:/usr/bin:/bin"
UUIDS = ["GPU-00000000-0000-4000-8000-000000000000", "GPU-00000000-0000-4000-8000-000000000001"]
ONE_BUSY_ONE_FREE = {
    "gpus": [{"index": i, "uuid": UUIDS[i], "name": "NVIDIA A100-SXM4-80GB", "memory.used": used,
              "memory.total": 81920, "utilization.gpu": load} for i, used, load in ((0, 40536, 97), (1, 4, 0))],
    "processes": [{"gpu_uuid": UUIDS[0], "pid": 4242, "used_memory": 40500, "process_name": "python3"}],
}
Rdev = Callable[..., subprocess.CompletedProcess]


def tmux_env(tmux_dir: Path, **more: str) -> dict[str, str]:
    """This environment for tmux with the test's own socket folder: never a tmux server this test may run inside."""
    return {**{k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}, "TMUX_TMPDIR": str(tmux_dir),
            **more}


@dataclass
class Box:
    name: str
    vm: Runtime
    work: Path  # the host's folder (the ticket's), where runs start
    tmux: bool
    tmux_dir: Path

    @property
    def runs(self) -> Path:
        return self.vm.home / ".rdev" / "runs"

    def record(self, run: str) -> dict:
        return json.loads((self.runs / f"{run}.json").read_text())

    def log(self, run: str) -> str:
        return read_or_empty(self.runs / f"{run}.log").decode(errors="replace")

    def tmux_has(self, session: str) -> bool:
        return subprocess.run(["tmux", "has-session", "-t", f"={session}"], check=False, capture_output=True,
                              env=tmux_env(self.tmux_dir)).returncode == 0


@pytest.fixture(params=["tmux", "no-tmux"])
def box(request: pytest.FixtureRequest, home: Path, rdev: Rdev) -> Iterator[Box]:
    """The far host, connected as `box`: tmux on its sessions' PATH, or a PATH with all but tmux."""
    with_tmux = request.param == "tmux"
    vm = Runtime(home.parent / "far", "runs-host")
    tmux_dir = home.parent / "tmux"
    tmux_dir.mkdir(mode=0o700)
    path = HOST_PATH if with_tmux else path_without_tmux(home.parent / "no-tmux")
    path = f"{nvidia_smi.install(home.parent / 'gpu-bin', ONE_BUSY_ONE_FREE).parent}:{path}"
    vm._sshd.environment.update({"PATH": path, "TMUX_TMPDIR": str(tmux_dir)})
    work = vm.home / "work"
    work.mkdir()
    vm.start()
    try:
        vm.authorize(rdev("key").stdout.strip())
        ticket = Ticket(tunnel="direct", host="127.0.0.1", port=vm.port, user=pwd.getpwuid(os.getuid()).pw_name,
                        host_keys=(vm.host_key(),), workdir=str(work), runtime="generic",
                        started=utc_timestamp(datetime.now(timezone.utc)), expires=None).encode()
        result = rdev("connect", "box", "--ticket", ticket, "--no-open")
        assert result.returncode == 0, result.stderr
        found = ssh_through(home, "box", "command -v tmux || echo none").stdout.strip()
        assert (found == "/usr/bin/tmux") if with_tmux else (found == "none"), found
        yield Box("box", vm, work, with_tmux, tmux_dir)
    finally:
        for record in (vm.home / ".rdev" / "runs").glob("*.json"):
            subprocess.run([sys.executable, "-m", "colab_side.long_runs.runs", "kill", record.stem], check=False,
                           cwd=REPO, capture_output=True, timeout=60,
                           env=tmux_env(tmux_dir, HOME=str(vm.home), PATH=path))
        subprocess.run(["tmux", "kill-server"], check=False, capture_output=True, env=tmux_env(tmux_dir))
        vm.stop()


def until(check: Callable[[], object], timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.1)


def processes_with(text: str) -> list[int]:
    return [int(c.parent.name) for c in Path("/proc").glob("[0-9]*/cmdline")
            if text.encode() in read_or_empty(c) and processes.alive(int(c.parent.name))]


def followed_to_its_end(name: str, run: str, stop: Path, flag: str = "-f") -> tuple[str, str]:
    """`rdev logs NAME RUN -f` while the run goes on, then `stop` made (the run's sign to end): what the follower
    printed once the run ended."""
    following = subprocess.Popen([*RDEV, "logs", name, run, flag], cwd=REPO, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    assert following.poll() is None, "the follower ended while the run runs"
    stop.touch()
    out, err = following.communicate(timeout=60)
    assert following.returncode == 0, err
    return out, err


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def row(listing: str, run: str) -> str:
    return next(line for line in listing.splitlines() if line.split()[:2] == ["box", run])


def test_a_run_outlives_the_laptops_ssh_and_its_master_and_ends_with_its_own_status(box: Box, home: Path) -> None:
    said = ok(rdev_runs("run", "box", "--name", "tick", "--", "sh", "-c",
                        "while [ ! -e stop ]; do echo tick; sleep 0.2; done; echo done; exit 3"))
    assert "Started tick on box" in said and ("tmux session rdev-tick" in said) == box.tmux
    assert ("rdev attach box tick" in said) == box.tmux
    wrapper = box.record("tick")["wrapper"]
    assert not processes.under(wrapper, ("sshd",)), "the run hangs below an SSH session"

    # The laptop's ssh dies (a follower, killed with the rdev that ran it), and the master connection is closed.
    follower = subprocess.Popen([*RDEV, "logs", "box", "tick", "-f"], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    assert follower.stdout is not None and follower.stdout.readline().strip() == b"tick"
    os.killpg(follower.pid, signal.SIGKILL)
    follower.wait()
    ssh_through(home, "-O", "exit", "box")
    assert ssh_through(home, "-O", "check", "box").returncode != 0
    # ...and the follower it had on the host notices within its heartbeat, and ends.
    until(lambda: not processes_with("colab_side.long_runs.runs log tick"), 15, "the host's follower ends")

    size = len(box.log("tick"))
    until(lambda: len(box.log("tick")) > size + 20, 10, "the log grows")
    assert row(ok(rdev_runs("runs", "box")), "tick").split()[2] == "running"

    out, err = followed_to_its_end("box", "tick", box.work / "stop", "--follow")
    lines = out.splitlines()
    assert lines[-1] == "done" and set(lines[:-1]) == {"tick"} and len(lines) > 5  # the growth itself is checked above
    assert err.strip().startswith("rdev: tick on box: exited 3, for ")

    listing = ok(rdev_runs("runs"))
    assert row(listing, "tick").split()[2:4] == ["exited", "3"] and row(listing, "tick").endswith(" done")
    assert box.record("tick")["status"] == 3
    assert ok(rdev_runs("logs", "box", "tick")).splitlines() == lines
    assert not processes_with("colab_side.long_runs.run_wrapper tick")
    if box.tmux:
        assert not box.tmux_has("rdev-tick")  # the pane closed with the run


def test_kill_ends_the_run_and_every_process_it_started(box: Box) -> None:
    # A child in the background that ignores SIGTERM and hangups: only the SIGKILL after it ends it.
    ok(rdev_runs("run", "box", "--name", "k", "--", "sh", "-c",
                 "(trap '' TERM HUP; exec sleep 5151) & echo up; while :; do sleep 1; done"))
    until(lambda: "up" in box.log("k"), 20, "the run starts")
    leader, children = box.record("k")["pid"], processes_with("sleep 5151")
    assert processes.alive(leader) and children
    if box.tmux:
        assert box.tmux_has("rdev-k")

    said = ok(rdev_runs("kill", "box", "k"))
    assert said.startswith("Killed k on box: ") and ("its tmux session rdev-k" in said) == box.tmux
    assert not processes.alive(leader) and not processes_with("sleep 5151")
    assert not processes_with("colab_side.long_runs.run_wrapper k")
    assert not box.tmux_has("rdev-k")
    assert row(ok(rdev_runs("runs", "box")), "k").split()[2] == "killed"
    assert box.record("k")["state"] == "killed"
    assert ok(rdev_runs("kill", "box", "k")).strip() == "k on box had already ended (killed)."


@pytest.mark.parametrize("box", ["tmux"], indirect=True)
def test_bad_input_exits_2_and_starts_nothing_and_a_running_name_is_one_sentence(box: Box) -> None:
    for args in (["--name", "a b", "--", "touch", "made"], ["--name", "x" * 65, "--", "touch", "made"], ["--"],
                 ["--", ""], ["--gpus", "0", "--", "touch", "made"], ["--gpus", "-1", "--", "touch", "made"],
                 ["--gpus", "65", "--", "touch", "made"], ["--slurm", "--time=1:00", "--", "touch", "made"]):
        result = rdev_runs("run", "box", *args)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not box.runs.exists() and not (box.work / "made").exists()

    ok(rdev_runs("run", "box", "--name", "dup", "--", "sleep", "300"))
    result = rdev_runs("run", "box", "--name", "dup", "--", "touch", "made")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("rdev: box: a run named dup is still running on ")
    assert not (box.work / "made").exists()


def test_the_words_of_the_command_reach_it_as_typed(box: Box) -> None:
    words = ["$HOME", "a b", "it's", '"q"', "; touch made", "$(touch made)", "`touch made`", "--lr", "0.1", "*"]
    ok(rdev_runs("run", "box", "--name", "argv", "--", "python3", "-c",
                 "import json, os, sys; print(json.dumps([sys.argv[1:], os.getcwd()]))", *words))
    until(lambda: box.record("argv").get("state") == "exited", 20, "the run ends")
    assert json.loads(box.log("argv")) == [words, str(box.work)]
    assert not (box.work / "made").exists()


def test_attach_gives_the_runs_live_terminal_or_says_to_follow_the_log(box: Box) -> None:
    if not box.tmux:  # stdin is /dev/null there: nothing could be typed into it
        ok(rdev_runs("run", "box", "--name", "talk", "--", "sleep", "300"))
        result = rdev_runs("attach", "box", "talk")
        assert result.returncode == 1 and "talk on box has no tmux session" in result.stderr
        assert "rdev logs box talk -f" in result.stderr
        return
    ok(rdev_runs("run", "box", "--name", "talk", "--", "sh", "-c", "echo ready; read line; echo \"got $line\"; exit 7"))
    main, side = pty.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    attached = subprocess.Popen([*RDEV, "attach", "box", "talk"], cwd=REPO, stdin=side, stdout=side, stderr=side,
                                start_new_session=True, env={**os.environ, "TERM": "xterm"})
    os.close(side)
    seen = b""

    def shows(text: bytes) -> bool:
        nonlocal seen
        if select.select([main], [], [], 0.2)[0]:
            try:
                seen += os.read(main, 65536)
            except OSError:
                pass
        return text in seen

    try:
        until(lambda: shows(b"ready"), 30, "the pane shows the run")
        os.write(main, b"hello\r")
        until(lambda: shows(b"got hello"), 30, "the run reads what is typed")
        assert attached.wait(timeout=30) == 0  # the run ended, so did its tmux session and the attach
    finally:
        if attached.poll() is None:
            os.killpg(attached.pid, signal.SIGKILL)
        os.close(main)
    until(lambda: box.record("talk").get("state") == "exited", 20, "the end is recorded")
    assert box.record("talk")["status"] == 7 and "got hello" in box.log("talk")
    result = rdev_runs("attach", "box", "talk")
    assert result.returncode == 1 and "talk on box has ended (exited 7)" in result.stderr


@pytest.mark.parametrize("box", ["no-tmux"], indirect=True)
def test_gpus_n_runs_on_gpus_that_look_free_and_more_than_are_free_is_refused(box: Box) -> None:
    said = ok(rdev_runs("run", "box", "--gpus", "1", "--name", "g", "--", "sh", "-c",
                        'echo "gpus=$CUDA_VISIBLE_DEVICES order=$CUDA_DEVICE_ORDER"; sleep 300'))
    assert said.startswith("Started g on box on GPU 1 (pid ")
    until(lambda: "gpus=" in box.log("g"), 20, "the run prints its GPUs")
    assert box.log("g").splitlines()[0] == "gpus=1 order=PCI_BUS_ID"
    assert row(ok(rdev_runs("runs", "box")), "g").split()[2:7:4] == ["running", "1"]  # STATE, GPUS

    # GPU 1 still looks free (g does not use it yet), but it is g's: a second run does not get it too.
    result = rdev_runs("run", "box", "--gpus", "1", "--name", "g2", "--", "touch", "made")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "of the GPUs that look free only 0 (none) are not given to a run of rdev's already" in result.stderr
    result = rdev_runs("run", "box", "--gpus", "2", "--name", "g3", "--", "touch", "made")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("rdev: 2 GPUs asked for, but only 1 of box's 2 looks free (1), so nothing was "
                                    "started: 'rdev gpus box' shows what runs on them")
    assert not (box.work / "made").exists() and sorted(p.name for p in box.runs.glob("*.json")) == ["g.json"]


"""`rdev run`, `runs`, `logs`, `kill`, `attach` on the laptop: what is refused before anything reaches a host, and
how the host's answers are shown."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from client_side.commands import runs as run_commands
from client_side.errors import BadInput, RdevError
from tests.conftest import REPO

# `rdev`, as a child process (run it in REPO).
RDEV = [sys.executable, "-m", "client_side"]


def rdev_runs(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """rdev as a child process in the current HOME."""
    return subprocess.run([*RDEV, *args], check=False, capture_output=True, text=True, cwd=REPO,
                          env=env or os.environ.copy(), timeout=timeout)


@pytest.mark.parametrize(("args", "said"), [
    (["run", "box", "--name", "bad name", "--", "true"], "The run name 'bad name' cannot be used"),
    (["run", "box", "--name", "x" * 65, "--", "true"], "cannot be used"),
    (["run", "box", "--name", "a/b", "--", "true"], "cannot be used"),
    (["run", "box", "--"], "There is no command to run"),
    (["run", "box", "--", ""], "There is no command to run"),
    (["logs", "box", "../x"], "The run name '../x' cannot be used"),
    (["kill", "box", "a;b"], "cannot be used"),
    (["attach", "box", ""], "cannot be used"),
    (["run", "nowhere", "--", "true"], "There is no host named 'nowhere'"),
])
def test_bad_input_is_one_sentence_and_exit_2_before_any_host_is_asked(home: Path, args: list[str], said: str) -> None:
    """No host is registered: what is refused is refused before the host is even looked up (the end-to-end tests
    show nothing starts on a real one)."""
    result = rdev_runs(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert said in result.stderr and len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_the_default_name_is_the_commands_first_word_and_the_time() -> None:
    when = datetime(2026, 4, 12, 15, 30, 12)
    assert run_commands.default_name(["python", "train.py"], when) == "python-0412-153012"
    assert run_commands.default_name(["/usr/bin/env"], when) == "env-0412-153012"
    assert run_commands.default_name(["./my script!.sh"], when) == "myscript.sh-0412-153012"
    assert run_commands.default_name([".."], when) == "run-0412-153012"
    assert run_commands.RUN_NAME.fullmatch(run_commands.default_name(["é" * 80], when))


def test_a_run_name_is_checked_as_the_host_checks_it() -> None:
    for good in ("a", "train-1.2_x", "-x", "x" * 64):
        assert run_commands.run_name(good) == good
    for bad in ("", "x" * 65, "a b", "a/b", "é", "a\n"):
        with pytest.raises(BadInput):
            run_commands.run_name(bad)


def test_a_terminals_line_is_shown_as_the_terminal_shows_it() -> None:
    shown = run_commands._shown
    assert shown("\x1b[31mred\x1b[0m plain") == "red plain"
    assert shown(" 10%|#    |\r 50%|###  |\r100%|#####|\r") == "100%|#####|"
    assert shown("a\tb") == "a       b"
    assert shown("title\x1b]0;evil\x07 bell\x07 back\x08") == "title bell? back?"
    assert shown(None) == ""


def test_durations_and_states_read_as_people_say_them() -> None:
    assert [run_commands._duration(s) for s in (None, 5, 65, 3725, 90061)] == ["-", "5s", "1m05s", "1h02m", "1d01h"]
    assert run_commands._state({"state": "exited", "status": 3}) == "exited 3"
    assert run_commands._state({"state": "exited", "status": None, "signal": 9}) == "exited (signal 9)"
    assert run_commands._state({"state": "killed", "status": None}) == "killed"
    assert run_commands._when("2026-04-12T13:30:12+00:00").startswith("2026-04-1")
    assert run_commands._when("garbage") == "?"


@pytest.mark.parametrize(("args", "said"), [
    (["--gpus", "0"], "--gpus 0 is not a number of GPUs from 1 to 64"),
    (["--gpus", "65"], "--gpus 65 is not a number of GPUs from 1 to 64"),
    (["--slurm", "--time=1:00"], "--slurm is for a run on a Slurm cluster, which box is not"),
])
def test_gpus_and_slurm_options_that_cannot_be_used_are_exit_2_before_the_host_is_asked(
        home: Path, args: list[str], said: str) -> None:
    """`box` is registered but nothing listens there: a refusal that needed it would fail otherwise (exit 1)."""
    assert rdev_runs("add", "box", "--host", "127.0.0.1", "--port", "9").returncode == 0
    result = rdev_runs("run", "box", *args, "--", "true")
    assert result.returncode == 2 and said in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_clusters_runs_are_asked_of_its_login_node_and_listed_once_with_their_gpus(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert rdev_runs("add", "hpc", "--host", "127.0.0.1", "--port", "9", "--slurm", "--time=1:00").returncode == 0
    asked: list[str] = []

    def call(name: str, remote: str, **_: object) -> dict:
        asked.append(name)
        return {"runs": [{"run": "train", "state": "running", "started": "2026-04-12T13:30:12+00:00", "duration": 65,
                          "gpus": "0,1", "last_line": "epoch 3", "job": "42"}]}

    monkeypatch.setattr(run_commands.helper_call, "call", call)
    table = run_commands.listing(None).splitlines()
    assert asked == ["hpc-login"]  # hpc-login's runs are hpc's (one home): not asked, nor listed, twice
    assert table[0].split() == ["HOST", "RUN", "STATE", "STARTED", "TIME", "GPUS", "LAST", "LINE"]
    assert table[1].split()[:3] == ["hpc", "train", "running"] and table[1].split()[5:] == ["1m05s", "0,1", "epoch", "3"]


def test_a_clusters_gpu_options_give_way_to_gpus_n() -> None:
    without = run_commands._without_gpus
    assert without(["--partition=gpu", "--gres=gpu:a100:2", "-G", "2", "--gpus-per-node=1", "-t", "1:00"]) == \
        ["--partition=gpu", "-t", "1:00"]
    assert without(["--gres=shard:1", "-p", "gpu"]) == ["--gres=shard:1", "-p", "gpu"]


def test_gpus_n_is_refused_with_a_sentence_when_fewer_look_free(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from client_side.commands import gpus

    found = gpus.HostGpus("box", "ok", gpus=[gpus.Gpu(0, "A100", 40000, 81920, 97),
                                              gpus.Gpu(1, "A100", 4, 81920, 0, free=True),
                                              gpus.Gpu(2, "A100", 0, 81920, 0, free=True)])
    monkeypatch.setattr(gpus, "answers", lambda names, timeout: (answer for answer in [found]))
    assert run_commands._free_gpus("box", 2) == [1, 2]
    with pytest.raises(RdevError) as refused:
        run_commands._free_gpus("box", 3)
    assert refused.value.exit_code == 1 and str(refused.value) == (
        "3 GPUs asked for, but only 2 of box's 3 look free (1, 2), so nothing was started: 'rdev gpus box' shows what "
        "runs on them; ask for fewer with --gpus, or wait.")
    monkeypatch.setattr(gpus, "answers", lambda names, timeout: (a for a in [gpus.HostGpus("box", "no-nvidia-smi")]))
    with pytest.raises(RdevError, match="box has no nvidia-smi, so rdev cannot tell which GPUs are free"):
        run_commands._free_gpus("box", 1)

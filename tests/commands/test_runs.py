
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
from client_side.errors import BadInput
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

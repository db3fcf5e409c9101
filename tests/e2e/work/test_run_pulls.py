"""A run's `--pull` end to end: the watcher `rdev run` leaves behind copies the path back when the run ends, and
where the watcher is gone (a laptop that slept), the next `rdev runs` does. The far host is tests/e2e/work/test_runs.py's
`box`, with tmux and without."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from client_side.commands import run_pulls
from tests.commands.test_runs import RDEV
from tests.e2e.work.test_runs import Box, box, ok, processes_with, until

__all__ = ["box"]  # the fixture, used by name below


def rdev_in(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """rdev run from `folder`, which a run's pull comes back into."""
    return subprocess.run([*RDEV, *args], check=False, capture_output=True, text=True, cwd=folder,
                          timeout=120)


def test_the_watcher_pulls_when_the_run_ends(box: Box, tmp_path: Path) -> None:
    here = tmp_path / "laptop"
    here.mkdir()
    said = ok(rdev_in(here, "run", "box", "--name", "train", "--pull", "out", "--", "sh", "-c",
                      "mkdir -p out/sub && echo weights > 'out/sub/model 1.pt' && sleep 1"))
    assert "Started train on box" in said
    until(lambda: (here / "out" / "sub" / "model 1.pt").exists(), 60, "the pull after the run")
    assert (here / "out" / "sub" / "model 1.pt").read_text() == "weights\n"
    until(lambda: not run_pulls.pending("box"), 10, "the pull forgotten once copied")
    until(lambda: not processes_with("pull-after\x00box\x00train"), 10, "the watcher ends")


def test_without_its_watcher_the_next_rdev_runs_pulls(box: Box, tmp_path: Path) -> None:
    here = tmp_path / "laptop"
    here.mkdir()
    ok(rdev_in(here, "run", "box", "--name", "late", "--pull", "out", "--", "sh", "-c",
               "while [ ! -e go ]; do sleep 0.2; done; mkdir -p out && echo late > out/b.txt"))
    until(lambda: processes_with("pull-after\x00box\x00late"), 10, "the watcher starts")
    for pid in processes_with("pull-after\x00box\x00late"):  # the laptop slept: the watcher is gone
        os.kill(pid, signal.SIGKILL)
    (box.work / "go").touch()
    until(lambda: box.record("late").get("state") == "exited", 30, "the run ends")
    assert not (here / "out").exists() and [p.run for p in run_pulls.pending("box")] == ["late"]

    listed = rdev_in(tmp_path, "runs", "box")
    ok(listed)
    assert f"Pulled box:{box.work}/out into {here}" in listed.stderr, listed.stderr
    assert (here / "out" / "b.txt").read_text() == "late\n"
    assert run_pulls.pending("box") == []
    again = rdev_in(tmp_path, "runs", "box")
    assert "Pulled" not in ok(again) + again.stderr


def test_a_pull_path_that_could_mean_something_else_starts_nothing(box: Box, tmp_path: Path) -> None:
    result = rdev_in(tmp_path, "run", "box", "--name", "bad", "--pull", "-e sh", "--", "true")
    assert result.returncode == 2 and "starts with '-'" in result.stderr
    assert not (box.runs / "bad.json").exists() and run_pulls.pending("box") == []

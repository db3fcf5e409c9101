"""A run's `--pull` without a host: where the path is taken from, what is refused, how the record is kept, and
which runs' pulls `rdev runs` takes up. The copies themselves: tests/e2e/work/test_run_pulls.py."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from client_side.commands import run_pulls
from client_side.commands.run_pulls import PendingPull
from client_side.errors import BadInput, RdevError
from client_side.local import locking, paths, registry
from client_side.local.registry import HostEntry


def entry(workdir: str) -> HostEntry:
    return HostEntry(name="box", host="127.0.0.1", port=22, user="me", workdir=workdir)


@pytest.fixture
def workdir(home: Path, monkeypatch: pytest.MonkeyPatch) -> Callable:
    def use(folder: str) -> None:
        monkeypatch.setattr(registry, "load", lambda: {"box": entry(folder)})
    return use


@pytest.mark.parametrize(("folder", "given", "remote"), [
    ("/content", "checkpoints", "/content/checkpoints"),
    ("/content/", "out/run 1", "/content/out/run 1"),
    ("~", "checkpoints", "~/checkpoints"),
    ("~/proj", "ckpt", "~/proj/ckpt"),
    ("/content", "/storage/ckpt", "/storage/ckpt"),
    ("/content", "~/ckpt", "~/ckpt"),
])
def test_a_relative_path_is_in_the_hosts_folder_and_the_copy_comes_here(
        folder: str, given: str, remote: str, workdir: Callable, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    workdir(folder)
    monkeypatch.chdir(tmp_path)
    assert run_pulls.plan("box", "r1", given, via="box") == PendingPull("box", "r1", "box", remote, str(tmp_path))


@pytest.mark.parametrize("given", ["", "-rf", "~root/x", "a\nb", "x\u202ey", ".", "..", "~", "/", "out/..", "a/."])
def test_a_path_that_could_mean_something_else_is_refused(given: str, workdir: Callable) -> None:
    workdir("/content")
    with pytest.raises(BadInput):
        run_pulls.plan("box", "r1", given, via="box")


def test_a_kept_pull_is_private_and_read_back(home: Path) -> None:
    pull = PendingPull("box", "r1", "box", "/content/out", "/tmp/here")
    run_pulls.keep(pull)
    path = paths.pending_pull("box", "r1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert all(stat.S_IMODE(folder.stat().st_mode) == 0o700 for folder in path.parents[:3])
    assert run_pulls.pending("box") == [pull]
    assert run_pulls.pending("other") == []
    run_pulls.drop(pull)
    assert run_pulls.pending("box") == []


def test_a_record_rdev_cannot_read_is_left_alone(home: Path) -> None:
    run_pulls.keep(PendingPull("box", "good", "box", "/x", "/y"))
    bad = paths.pending_pull("box", "bad")
    bad.write_text('{"name": "box"}')
    assert [p.run for p in run_pulls.pending("box")] == ["good"]
    assert bad.exists()


def test_runs_pulls_for_ended_runs_and_drops_the_pulls_of_runs_that_are_gone(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for run in ("done", "killed", "lost", "going", "gone", "just-kept"):
        run_pulls.keep(PendingPull("box", run, "box", f"/out/{run}", "/here"))
    long_ago = time.time() - run_pulls.START_WAIT - 60
    os.utime(paths.pending_pull("box", "gone"), (long_ago, long_ago))
    copied: list[str] = []
    monkeypatch.setattr(run_pulls, "settle", lambda pull, say: copied.append(pull.run) or True)
    said: list[str] = []
    listed = [{"run": "done", "state": "exited"}, {"run": "killed", "state": "killed"},
              {"run": "lost", "state": "lost"}, {"run": "going", "state": "running"}]
    run_pulls.settle_ended("box", listed, said.append)
    assert copied == ["done", "killed", "lost"]
    assert said == ["Run gone is no longer on box, so its pull of /out/gone was dropped."]
    # "just-kept" is not listed yet: its run may still be starting, so its pull stays.
    assert sorted(p.run for p in run_pulls.pending("box")) == ["done", "going", "just-kept", "killed", "lost"]


def test_the_copy_goes_through_the_hosts_way_in_and_then_the_pull_is_forgotten(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from client_side.commands import transfer

    pull = PendingPull("hpc", "r1", "hpc-login", "~/out", str(home))
    run_pulls.keep(pull)
    copied: list[tuple] = []
    monkeypatch.setattr(transfer, "pull", lambda *args, **_kwargs: copied.append(args))
    assert run_pulls.settle(pull, lambda _words: None)
    assert copied == [("hpc-login", "~/out", str(home))]
    assert run_pulls.pending("hpc") == []


def test_a_refused_start_puts_back_the_pull_it_replaced(home: Path) -> None:
    running = PendingPull("box", "train", "box", "/content/out", "/first")
    assert run_pulls.keep(running) is None
    again = PendingPull("box", "train", "box", "/content/other", "/second")
    earlier = run_pulls.keep(again)  # `rdev run --name train` again, while train still runs there
    run_pulls.put_back(again, earlier)  # the host refused the second start
    assert run_pulls.pending("box") == [running]
    run_pulls.put_back(running, None)
    assert run_pulls.pending("box") == []


def test_removing_a_host_forgets_its_pulls(home: Path) -> None:
    run_pulls.keep(PendingPull("box", "r1", "box", "/x", "/y"))
    run_pulls.keep(PendingPull("other", "r1", "other", "/x", "/y"))
    run_pulls.forget_host("box")
    assert run_pulls.pending("box") == [] and len(run_pulls.pending("other")) == 1


def test_a_local_folder_that_cannot_be_written_is_a_sentence_and_the_pull_stays(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from client_side.commands import transfer

    pull = PendingPull("box", "r1", "box", "/out", "/mnt/gone/here")
    run_pulls.keep(pull)

    def unwritable(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", "/mnt/gone/here")

    monkeypatch.setattr(transfer, "pull", unwritable)
    said: list[str] = []
    assert not run_pulls.settle(pull, said.append)
    assert run_pulls.pending("box") == [pull]
    assert said == [("The pull of /out for run r1 on box failed: Permission denied (/mnt/gone/here). "
                     "'rdev runs box' tries again.")]


def test_a_failed_copy_keeps_the_pull_and_says_so(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from client_side.commands import transfer

    pull = PendingPull("box", "r1", "box", "/out", str(home))
    run_pulls.keep(pull)

    def fails(*_args: object, **_kwargs: object) -> None:
        raise RdevError("box does not answer", "check the link.")

    monkeypatch.setattr(transfer, "pull", fails)
    said: list[str] = []
    assert not run_pulls.settle(pull, said.append)
    assert run_pulls.pending("box") == [pull]
    assert said and "The pull of /out for run r1 on box failed: box does not answer" in said[0]


def test_a_pull_another_rdev_is_copying_is_left_to_it(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from client_side.commands import transfer

    pull = PendingPull("box", "r1", "box", "/out", str(home))
    run_pulls.keep(pull)
    monkeypatch.setattr(transfer, "pull", lambda *a, **k: pytest.fail("copied while another rdev holds the pull"))
    with locking.pulling("box", "r1") as mine:
        assert mine
        assert not run_pulls.settle(pull, lambda _words: None)
    assert run_pulls.pending("box") == [pull]

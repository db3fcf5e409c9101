"""The locks that keep two rdev runs apart: taken at once with flock when free, waited for with filelock when busy,
re-entrant in one thread, exclusive between threads and processes, whichever of the two took them."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from client_side.errors import RdevError
from client_side.local import locking, paths
from tests.conftest import REPO

# Another process holding `path` until its stdin closes: with filelock (as a waiting rdev holds it) or a bare flock.
HOLDER = {
    "filelock": "import sys; from filelock import FileLock; lock = FileLock(sys.argv[1]); lock.acquire()",
    "flock": ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600); "
              "fcntl.flock(fd, fcntl.LOCK_EX)"),
}


def hold_elsewhere(path: Path, how: str) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER[how] + "; print('held', flush=True); sys.stdin.read()",
                               str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_a_holder_takes_its_lock_again_without_waiting(home: Path) -> None:
    with locking.setting_up("gpu"), locking.changing_files(), locking.changing_files(), locking.setting_up("gpu"):
        pass
    with locking.changing_files():  # released whole: the next take is at once again
        pass


@pytest.mark.parametrize("how", ["filelock", "flock"])
def test_a_lock_another_process_holds_is_waited_for_then_refused_in_one_sentence(
        home: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    monkeypatch.setattr(locking, "SETUP_TIMEOUT", 0.3)
    paths.host_lock_file("gpu").parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    holder = hold_elsewhere(paths.host_lock_file("gpu"), how)
    try:
        start = time.monotonic()
        with pytest.raises(RdevError, match="Another rdev is setting up gpu"), locking.setting_up("gpu"):
            pass
        assert time.monotonic() - start >= 0.3
    finally:
        holder.communicate("")
    with locking.setting_up("gpu"):  # free again once the holder ends
        pass


def test_a_lock_held_here_keeps_another_process_out(home: Path) -> None:
    code = ("import sys; from filelock import FileLock, Timeout\n"
            "try:\n    FileLock(sys.argv[1]).acquire(timeout=0.2)\nexcept Timeout:\n    print('busy')")
    with locking.changing_files():
        taken = subprocess.run([sys.executable, "-c", code, str(paths.lock_file())], capture_output=True, text=True,
                               cwd=REPO, check=True)
    assert taken.stdout.strip() == "busy"


def test_a_waiting_rdev_gets_the_lock_once_the_holder_lets_go(home: Path) -> None:
    paths.rdev_ssh_dir().mkdir(mode=0o700, parents=True, exist_ok=True)
    holder = hold_elsewhere(paths.lock_file(), "flock")
    threading.Timer(0.3, lambda: holder.communicate("")).start()
    start = time.monotonic()
    with locking.changing_files():
        assert time.monotonic() - start >= 0.2


def test_another_thread_waits_for_a_lock_this_one_holds(home: Path) -> None:
    order: list[str] = []
    with locking.changing_files():
        other = threading.Thread(target=lambda: _take_and_note(order))
        other.start()
        time.sleep(0.3)
        order.append("released")
    other.join(10)
    assert order == ["released", "taken"]


def _take_and_note(order: list[str]) -> None:
    with locking.changing_files():
        order.append("taken")

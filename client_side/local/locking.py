"""The locks that keep two `rdev` runs from stepping on each other.

`changing_files` is held around every change to rdev's files, so writes never interleave.
`setting_up(name)` is held while one run sets a host up end to end (write, master connection,
probe), so that concurrent connects to one host do not close or race each other's master.
Both are taken re-entrantly (a holder may take its lock again; it counts, not blocks). A free lock
is taken at once with flock(), the primitive filelock itself uses on POSIX (it leaves the file in
place, so both contend on one inode); filelock waits for a busy one, and covers Windows and file
systems without flock. Its import (~20 ms, and more at exit) is a tenth of a reconnect's own time
on the laptop, so it is imported only then.

A Colab session has two more, which `rdev stop` and the ProxyCommand guard (`colab.guard`) share, so
that no CLI a guard let through can read the CLI's session file once `rdev stop` may remove the
session from it (a CLI that finds its session gone creates a new, paid, runtime). A guard takes both
shared and at once, never waiting: "stopping" for the moment of its check, "in use" for the rest of
the CLI's life (the descriptor survives the exec into the CLI). `rdev stop` takes "stopping"
exclusively, so guards refuse from then on, then ends connections until it has "in use"
exclusively too. They are flock()s, which filelock cannot take shared; Google's CLI runs only where
flock exists.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bootstrap.files import ensure_private_dir
from client_side.errors import RdevError
from client_side.local import paths

FILES_TIMEOUT = 30.0
# A setup may wait for a whole probe of another one (PROBE_TIMEOUT) and a password prompt.
SETUP_TIMEOUT = 300.0
# A guard holds "stopping" while it checks, which may include renewing a token (120 s, colab.guard).
COLAB_CHECK_TIMEOUT = 150.0
# The CLIs left once guards refuse are ended with their master connection; one still connecting is
# ended by ssh's own timeouts, or once it has become the master.
COLAB_DRAIN_TIMEOUT = 60.0
_ENDING_EVERY = 1.0


@contextmanager
def changing_files() -> Iterator[None]:
    ensure_private_dir(paths.ssh_dir())
    ensure_private_dir(paths.rdev_ssh_dir())
    with _held(paths.lock_file(), FILES_TIMEOUT, "Another rdev is changing the SSH config"):
        yield


@contextmanager
def setting_up(name: str) -> Iterator[None]:
    lock = paths.host_lock_file(name)
    ensure_private_dir(lock.parent)
    with _held(lock, SETUP_TIMEOUT, f"Another rdev is setting up {name}"):
        yield


# How deep each thread holds each lock path: taken again, a lock counts instead of blocking. As with filelock's
# default (thread-local) locks, another thread of this process waits for it like another process.
_depths: dict[tuple[str, int], int] = {}


@contextmanager
def _held(path: Path, timeout: float, who: str) -> Iterator[None]:
    key = (str(path), threading.get_ident())
    if key in _depths:
        _depths[key] += 1
        try:
            yield
        finally:
            _depths[key] -= 1
        return
    release = _taken_at_once(path) or _waited_for(path, timeout, who)
    _depths[key] = 1
    try:
        yield
    finally:
        del _depths[key]
        release()


def _taken_at_once(path: Path) -> Callable[[], None] | None:
    """`path` locked exclusively if it is free now (its release), else None: busy, no flock here (Windows, some
    network file systems), or a path that cannot be opened, all left to filelock as before."""
    if os.name != "posix":
        return None
    import fcntl

    try:
        fd = _lock_descriptor(path)
    except OSError:
        return None
    try:
        if _flocked(fd, fcntl.LOCK_EX):
            return lambda: os.close(fd)  # closing the only descriptor releases the flock
    except OSError:
        pass
    os.close(fd)
    return None


def _waited_for(path: Path, timeout: float, who: str) -> Callable[[], None]:
    """`path` locked exclusively by filelock, waiting up to `timeout`; its release."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(path), timeout=timeout, mode=0o600)
    try:
        lock.acquire()
    except Timeout:
        raise RdevError(f"{who} (lock {path})", "wait for it to finish and run again.") from None
    return lock.release


@contextmanager
def pulling(name: str, run: str) -> Iterator[bool]:
    """True for the block if this rdev now holds `run`'s pending pull on `name`, False if another one is copying
    it: that one finishes it, so nobody waits."""
    from filelock import FileLock, Timeout

    path = paths.pending_pull_lock(name, run)
    ensure_private_dir(path.parent)
    lock = FileLock(str(path), mode=0o600)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def enter_colab_session(session: str) -> bool:
    """For a ProxyCommand guard, before it checks `session`: False while `rdev stop` is ending it. Else
    both locks are held shared until this process ends, "in use" on past its exec into the CLI."""
    import fcntl

    stopping, in_use = _colab_locks(session)
    gate = _lock_descriptor(stopping)  # not inherited: released when this process becomes the CLI
    if not _flocked(gate, fcntl.LOCK_SH):
        return False
    held = _lock_descriptor(in_use)
    if not _flocked(held, fcntl.LOCK_SH):
        return False
    os.set_inheritable(held, True)
    return True


@contextmanager
def ending_colab_session(session: str, end_connections: Callable[[], None]) -> Iterator[None]:
    """Held by `rdev stop` around ending `session`, from before it closes the editor's connection (which
    then reconnects) until the CLI has removed the session: guards refuse meanwhile, and no CLI they
    let through earlier is left (`end_connections` is called until none is)."""
    if os.name == "nt":  # Google's CLI does not run there, so neither does a guard
        yield
        return
    stopping, in_use = _colab_locks(session)
    gate = _lock_descriptor(stopping)
    held = None
    try:
        _exclusive(gate, COLAB_CHECK_TIMEOUT, lambda: None, RdevError(
            f"A connection to Colab session {session} is still being checked after {COLAB_CHECK_TIMEOUT:.0f} s "
            f"(perhaps renewing its token; lock {stopping})", "run the stop again once it has finished."))
        held = _lock_descriptor(in_use)
        _exclusive(held, COLAB_DRAIN_TIMEOUT, end_connections, RdevError(
            f"A connection to Colab session {session} through Google's colab CLI did not end",
            f"close it (an ssh that does not share its host's master connection, e.g. one with -S none) and run "
            f"again; 'colab stop -s {session}' ends the runtime regardless."))
        yield
    finally:
        for fd in (held, gate):  # "in use" first: a guard that gets "stopping" then finds it free
            if fd is not None:
                os.close(fd)


def _colab_locks(session: str) -> tuple[Path, Path]:
    """("stopping", "in use") for `session`. Named by the session's hex, since session names may differ
    only in case where the file system does not, after a "_" no host name starts with."""
    folder = ensure_private_dir(paths.rdev_ssh_dir() / "locks")
    stem = f"_colab-{session.encode().hex()}"
    return folder / f"{stem}.stopping", folder / f"{stem}.in-use"


def _lock_descriptor(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)


def _flocked(fd: int, how: int) -> bool:
    """Whether `fd` got the lock (`how`: LOCK_SH or LOCK_EX) without waiting."""
    import fcntl

    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _exclusive(fd: int, timeout: float, between: Callable[[], None], failure: RdevError) -> None:
    """Take `fd`'s lock exclusively within `timeout`, calling `between` now and every second until then."""
    import fcntl

    deadline = time.monotonic() + timeout
    next_call = time.monotonic()
    while not _flocked(fd, fcntl.LOCK_EX):
        now = time.monotonic()
        if now > deadline:
            raise failure
        if now >= next_call:
            between()
            next_call = now + _ENDING_EVERY
        time.sleep(0.05)

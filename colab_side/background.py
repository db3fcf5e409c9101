"""Running work in a background process that outlives the command which started it."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from colab_side import processes


def detach(work: Callable[[], None], *, pid_file: Path, log_file: Path) -> int:
    """Run `work` in a forked child in a session of its own, and return the child's pid.

    The child reads /dev/null and writes to `log_file`, so it holds none of this process's pipes:
    a caller reading our output to its end is not kept waiting by the child. Fork with only one
    thread running: a lock another thread held would stay locked in the child for good.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        # Recorded before we return, so a `stop` or a new serve right after finds the child.
        processes.record(pid_file, pid)
        return pid
    code = 0
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        log = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        # Nothing else of the caller's: a pipe it reads to its end, or a folder it wants to unmount.
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        os.chdir("/")
        for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)  # the caller may hold them during the hand-off; `stop` sends SIGTERM
        work()
    except BaseException:  # noqa: BLE001 - whatever ends the child goes to its log
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        # Never return into the caller's code, and skip its atexit handlers: they belong to the parent.
        os._exit(code)

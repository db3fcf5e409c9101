"""Tunnels that are a binary rdev runs itself: cloudflared and ngrok.

The binary runs in its own session and logs to a file in the state folder, so it outlives
`serve` (after --no-keep-alive or an interrupt) and a full pipe can never block it. A thread
follows the log until the provider sees the line that says the tunnel is up.
"""

from __future__ import annotations

import collections
import subprocess
import threading
import time
from abc import abstractmethod
from collections.abc import Callable

from bootstrap.binaries import BinaryUnavailable
from colab_side import runtime
from colab_side.errors import ServeError
from colab_side.state import StateFolder, record_tunnel, stop_tunnel, tunnel_running
from colab_side.tunnels.base import Tunnel

START_TIMEOUT = 60.0


class ProcessTunnel(Tunnel):
    find_binary: Callable[[str | None], str]  # bootstrap.binaries' finder for this provider
    has_binary = True

    def __init__(self, state: StateFolder, binary: str | None) -> None:
        self.state = state
        self.explicit_binary = binary
        self.binary = ""
        self.process: subprocess.Popen | None = None
        self.lines: collections.deque[str] = collections.deque(maxlen=20)

    def prepare(self) -> None:
        """Find (or download) the binary; `serve` runs this while sshd is being set up."""
        try:
            self.binary = self.find_binary(self.explicit_binary)
        except BinaryUnavailable as err:
            raise ServeError(str(err)) from None

    @abstractmethod
    def _ready(self, line: str) -> bool:
        """Look at one log line; True once the tunnel is up."""

    def _failure(self) -> str:
        """The sentence for a tunnel that did not come up."""
        last = " | ".join(list(self.lines)[-3:]) or "it printed nothing"
        fix = (runtime.KAGGLE_INTERNET if runtime.detect() == "kaggle"
               else "Check that this machine reaches the internet, then serve again.")
        return f"{self.name} gave no tunnel within {START_TIMEOUT:.0f} s (its last lines: {last}). {fix}"

    def _launch(self, argv: list[str], env: dict[str, str], halt: threading.Event | None) -> None:
        """Start `argv` detached and wait until `_ready` says the tunnel is up; else (no tunnel in time,
        or `halt` set) stop it and raise: a half-started tunnel must not count as alive."""
        self.lines.clear()
        up = threading.Event()
        with open(self.state.tunnel_log, "w") as log:
            self.process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            start_new_session=True)
        record_tunnel(self.state, self.process.pid)
        threading.Thread(target=self._follow, args=(self.process, up), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while not up.wait(0.1):
            if (halt is not None and halt.is_set()) or time.monotonic() > deadline:
                break
        if not up.is_set() or self.process.poll() is not None:
            self.stop()
            raise ServeError("The tunnel's start was interrupted." if halt is not None and halt.is_set()
                             else self._failure())

    def _follow(self, process: subprocess.Popen, up: threading.Event) -> None:
        with open(self.state.tunnel_log, errors="replace") as log:
            while not up.is_set():
                line = log.readline()
                if not line:
                    if process.poll() is not None:
                        break
                    time.sleep(0.05)
                    continue
                self.lines.append(line.rstrip())
                if self._ready(line):
                    up.set()
        up.set()  # the process ended: wake the waiter, which then sees it has exited

    def alive(self) -> bool:
        # From the state folder, not self.process: a background supervisor forked from the starting
        # process cannot wait for (or poll) its parent's children.
        return tunnel_running(self.state) is not None

    def stop(self) -> None:
        stop_tunnel(self.state)
        if self.process is not None:
            self.process.wait(timeout=10)  # reap it, if this process started it

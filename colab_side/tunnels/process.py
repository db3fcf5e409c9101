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
from pathlib import Path
from typing import Callable

from bootstrap.binaries import BinaryUnavailable
from colab_side import processes
from colab_side.errors import ServeError
from colab_side.tunnels import Tunnel

START_TIMEOUT = 60.0


class ProcessTunnel(Tunnel):
    find_binary: Callable[[str | None], str]  # bootstrap.binaries' finder for this provider

    def __init__(self, state: Path, binary: str | None) -> None:
        self.state = state
        self.explicit_binary = binary
        self.binary = ""
        self.process: subprocess.Popen | None = None
        self.lines: collections.deque[str] = collections.deque(maxlen=20)

    @property
    def pid_file(self) -> Path:
        return self.state / "tunnel.pid"

    @property
    def log_file(self) -> Path:
        return self.state / "tunnel.log"

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
        return f"{self.name} gave no tunnel within {START_TIMEOUT:.0f} s; its last lines: {last}"

    def _launch(self, argv: list[str], env: dict[str, str]) -> None:
        """Start `argv` detached and wait until `_ready` says the tunnel is up; else stop it and raise."""
        self.lines.clear()
        up = threading.Event()
        with open(self.log_file, "w") as log:
            self.process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            start_new_session=True)
        self.pid_file.write_text(f"{self.process.pid}\n")
        threading.Thread(target=self._follow, args=(self.process, up), daemon=True).start()
        if not up.wait(START_TIMEOUT) or self.process.poll() is not None:
            self.stop()
            raise ServeError(self._failure())

    def _follow(self, process: subprocess.Popen, up: threading.Event) -> None:
        with open(self.log_file, errors="replace") as log:
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
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        stop_tunnel(self.state)
        if self.process is not None:
            self.process.wait(timeout=10)


def stop_tunnel(state: Path) -> bool:
    """Stop the tunnel of `state`, from this process or a later one; False if none was running."""
    # Both binaries are started with a path inside the state folder on their command line.
    return processes.stop_tree(state / "tunnel.pid", str(state))

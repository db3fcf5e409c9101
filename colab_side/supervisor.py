"""The supervisor: a background thread that keeps sshd and the tunnel alive.

What died is restarted, the first time at once and then with a doubling backoff, so a crash loop
does not spin. When the tunnel comes back with a new endpoint (a quick tunnel's new name), the
server publishes a new ticket: printed, and rewritten in the ticket file.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Callable

from colab_side.errors import ServeError

if TYPE_CHECKING:
    from colab_side.server import Server

CHECK_EVERY = 0.5
MAX_BACKOFF = 30.0


class Backoff:
    """When the next restart of one part may happen: now at first, then 1, 2, 4 ... 30 s after failures."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.next_try = 0.0

    def due(self) -> bool:
        return time.monotonic() >= self.next_try

    def failed(self) -> None:
        self.delay = min(MAX_BACKOFF, max(1.0, self.delay * 2))
        self.next_try = time.monotonic() + self.delay

    def succeeded(self) -> None:
        self.delay, self.next_try = 0.0, 0.0


class Supervisor:
    def __init__(self, server: "Server", say: Callable[[str], None]) -> None:
        self.server = server
        self.say = say
        self.restarts = 0
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rdev-supervisor", daemon=True)
        self._backoff = {"sshd": Backoff(), "tunnel": Backoff()}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        from colab_side.server import stopped

        while not self._halt.wait(CHECK_EVERY) and not stopped(self.server.state_dir):
            if not self.server.sshd.alive():
                self._restart("sshd", self.server.sshd.start)
            if not self._halt.is_set() and not self.server.tunnel.alive():
                self._restart("tunnel", self._restart_tunnel)

    def _restart(self, part: str, action: Callable[[], None]) -> None:
        backoff = self._backoff[part]
        if not backoff.due():
            return
        try:
            action()
        except (ServeError, OSError) as err:
            backoff.failed()
            self.say(f"{part} died and could not be restarted ({err}); next try in {backoff.delay:.0f} s.")
            return
        backoff.succeeded()
        self.restarts += 1
        self.say(f"{part} died and was restarted.")

    def _restart_tunnel(self) -> None:
        endpoint = self.server.tunnel.start(self.server.sshd.port)
        if endpoint != self.server.endpoint:
            self.say("The tunnel's address changed: use the new ticket below.")
            self.server.publish(endpoint)

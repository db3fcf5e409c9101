"""The supervisor: a loop that keeps sshd and the tunnel alive, in a thread or a background process.

What died is restarted, the first time at once and then with a doubling backoff, so a crash loop
does not spin. It knows the parts only through callbacks (alive? restart!), so the server decides
what a restart means: a restarted tunnel publishes a new ticket.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from colab_side.errors import ServeError

CHECK_EVERY = 0.5
MAX_BACKOFF = 30.0
JOIN_TIMEOUT = 30.0


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


@dataclass(frozen=True)
class Part:
    """One thing the supervisor keeps alive."""

    name: str
    alive: Callable[[], bool]
    restart: Callable[[threading.Event], None]  # gets the halt event: a restart gives up once it is set
    # What the status says after a restart; a part that is not a process (the ticket file) says it its way.
    restarted: str = "{name} died and was restarted."
    failed: str = "{name} died and could not be restarted ({error}); next try in {delay:.0f} s."


class Supervisor:
    """Checks the parts every CHECK_EVERY seconds until `stop()`, until `replaced()` says a later serve
    owns the state folder (its parts are no longer ours to touch), or until `stopped()` says the server
    was stopped (from any process); then `finish()` ends what a restart brought back meanwhile."""

    def __init__(self, parts: list[Part], *, stopped: Callable[[], bool], replaced: Callable[[], bool],
                 finish: Callable[[], object], say: Callable[[str], None],
                 ticks: tuple[Callable[[], object], ...] = ()) -> None:
        self.parts = parts
        self.stopped = stopped
        self.replaced = replaced
        self.finish = finish
        self.say = say
        self.ticks = ticks  # the rest of each round's work (the idle stop's check, the notices before the end)
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self.run, name="rdev-supervisor", daemon=True)
        self._backoff = {part.name: Backoff() for part in parts}

    def start(self) -> None:
        """Run in a thread of this process."""
        self._thread.start()

    def stop(self) -> bool:
        """End the loop and wait for it (a restart under way gives up); False if it did not end in time."""
        self._halt.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=JOIN_TIMEOUT)
        return not self._thread.is_alive()

    def run(self) -> None:
        """The loop itself: in the thread, or as the whole work of a background process."""
        while not self._halt.wait(CHECK_EVERY):
            for part in self.parts:
                # Asked before every part: a stop or a new serve may come while a part restarts.
                if self._ended():
                    return
                if not part.alive():
                    self._restart(part)
            for tick in self.ticks:
                if self._ended():
                    return
                try:
                    tick()
                except Exception as err:  # noqa: BLE001 (a failed notice or idle check must not end the keep-alive)
                    self.say(f"A check of this server failed ({err}); it keeps serving.")

    def _ended(self) -> bool:
        if self._halt.is_set():
            return True
        if self.replaced():
            self.say("A later serve of this state folder took over; this supervisor ends.")
            return True
        if self.stopped():
            self.finish()
            return True
        return False

    def _restart(self, part: Part) -> None:
        backoff = self._backoff[part.name]
        if not backoff.due():
            return
        try:
            part.restart(self._halt)
        except (ServeError, OSError) as err:
            if self._halt.is_set():
                return  # given up because we stop: nothing to report
            backoff.failed()
            self.say(part.failed.format(name=part.name, error=err, delay=backoff.delay))
            return
        backoff.succeeded()
        self.say(part.restarted.format(name=part.name))

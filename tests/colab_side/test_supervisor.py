"""The supervisor's loop on its own (its parts end to end: tests/e2e/runtime/test_supervisor.py): a check that fails
is said and the loop goes on, so a notice or an idle check can never end the keep-alive."""

from __future__ import annotations

import time

import pytest

from colab_side import supervisor


def test_a_failing_check_is_said_and_the_loop_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor, "CHECK_EVERY", 0.01)
    rounds: list[float] = []
    said: list[str] = []

    def failing() -> None:
        raise OSError(5, "Input/output error")

    watcher = supervisor.Supervisor([], stopped=lambda: False, replaced=lambda: False, finish=lambda: None,
                                    say=said.append, ticks=(failing, lambda: rounds.append(time.monotonic())))
    watcher.start()
    try:
        deadline = time.monotonic() + 10
        while len(rounds) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        watcher.stop()
    assert len(rounds) >= 3, "the loop ended at the failing check"
    assert said[0] == "A check of this server failed ([Errno 5] Input/output error); it keeps serving."

"""The runtime side's errors: a sentence for the notebook or the laptop, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable


class ServeError(Exception):
    """Something the server could not do; the message says what and how to fix it."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Failure(Exception):
    """What went wrong on the host and what the user can do, sent to the laptop as one sentence."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


def emit(message: dict) -> None:
    """One JSON line to the laptop: a helper's only channel back."""
    print(json.dumps(message), flush=True)


def answer(act: Callable[[], dict], where: Path) -> int:
    """Emit what `act` returns (exit status 0), or its Failure or OSError (about `where` unless it names a file)
    as {"error", "fix"} with exit status 1."""
    try:
        result = act()
    except Failure as failure:
        emit({"error": failure.problem, "fix": failure.fix})
        return 1
    except OSError as err:
        emit({"error": f"{err.strerror or err} ({err.filename or where})", "fix": "fix that and run again."})
        return 1
    emit(result)
    return 0

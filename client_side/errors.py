"""The one error type the CLI turns into a sentence and an exit code (no traceback)."""

from __future__ import annotations

USAGE = 2
FAILED = 1


class RdevError(Exception):
    """A failure with a message that names the problem and the fix."""

    def __init__(self, message: str, exit_code: int = FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class BadInput(RdevError):
    """The user gave something rdev will not use; nothing was written."""

    def __init__(self, message: str) -> None:
        super().__init__(message, USAGE)

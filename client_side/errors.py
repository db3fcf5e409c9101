"""The one error type the CLI turns into a sentence and an exit code (no traceback).

Every error carries the problem and its fix apart, so that the CLI can print them as one line and
`rdev doctor` as the two columns of a row.
"""

from __future__ import annotations

USAGE = 2
FAILED = 1


class RdevError(Exception):
    """A failure: what went wrong (`problem`) and what the user can do about it (`fix`)."""

    def __init__(self, problem: str, fix: str = "", exit_code: int = FAILED) -> None:
        self.problem = problem.rstrip()
        self.fix = fix.strip()
        self.exit_code = exit_code
        super().__init__(self.sentence())

    def sentence(self) -> str:
        """Problem and fix as one line: "problem: fix." (or "Problem. Fix." when the problem is a sentence)."""
        if not self.fix:
            return self.problem
        if self.problem.endswith((".", "?", "!")):
            return f"{self.problem} {self.fix[0].upper()}{self.fix[1:]}"
        return f"{self.problem}: {self.fix}"


class BadInput(RdevError):
    """The user gave something rdev will not use; nothing was written."""

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(problem, fix, USAGE)


def printable(text: str) -> str:
    """Text from elsewhere (a host, a log) as it may reach the terminal: control characters become "?"."""
    return "".join(c if c.isprintable() else "?" for c in text)


def split(sentence: str) -> tuple[str, str]:
    """(problem, fix) of a sentence that reads "problem: fix", as bootstrap's messages do."""
    problem, _, fix = sentence.partition(": ")
    return problem, fix

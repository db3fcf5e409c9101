"""rdev's errors carry the problem and the fix apart; the CLI joins them into one line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from client_side.errors import BadInput, RdevError, split

CLIENT = Path(__file__).resolve().parent.parent / "client_side"


@pytest.mark.parametrize(("problem", "fix", "line"), [
    ("The lock is held", "wait and run again.", "The lock is held: wait and run again."),
    ("Cannot reach gpu: the connection timed out.", "Check your VPN.", "Cannot reach gpu: the connection timed out. Check your VPN."),
    ("Cannot reach gpu.", "check your VPN.", "Cannot reach gpu. Check your VPN."),
    ("Interrupted.", "", "Interrupted."),
])
def test_the_sentence_joins_problem_and_fix(problem: str, fix: str, line: str) -> None:
    err = RdevError(problem, fix)
    assert str(err) == err.sentence() == line
    assert (err.problem, err.fix, err.exit_code) == (problem, fix, 1)


def test_bad_input_is_exit_2() -> None:
    assert BadInput("x", "y").exit_code == 2


def test_split_reads_bootstraps_sentences() -> None:
    assert split("The name 'a b' cannot be used: use letters.") == ("The name 'a b' cannot be used", "use letters.")


def constructions() -> list[tuple[str, int, ast.Call]]:
    found = []
    for path in sorted(CLIENT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
                    "RdevError", "BadInput", "PasswordRefused"):
                found.append((path.relative_to(CLIENT).as_posix(), node.lineno, node))
    return found


def test_every_error_rdev_raises_names_a_fix() -> None:
    """So that `rdev doctor` shows problem and fix apart without splitting sentences."""
    assert len(constructions()) > 40
    missing = [f"{name}:{line}" for name, line, call in constructions()
               if len(call.args) < 2 and not any(k.arg == "fix" for k in call.keywords)
               and not any(isinstance(a, ast.Starred) for a in call.args)]
    assert missing == []

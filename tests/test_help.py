"""The command line is a contract: every command's `--help` is compared with its golden text.

A change to a command's options or words shows up here as a diff to review. After a deliberate
change, regenerate with `RDEV_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_help.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from client_side.cli import main

GOLDEN = Path(__file__).parent / "golden" / "help"
COMMANDS = [(), ("key",), ("connect",), ("add",), ("password",), ("ssh",), ("gpus",), ("jupyter",), ("run",), ("runs",), ("logs",),
            ("kill",), ("attach",), ("pull",), ("push",), ("list",), ("remove",), ("stop",),
            ("doctor",), ("colab",), ("colab", "cell"), ("demo",)]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: "-".join(c) or "rdev")
def test_help_matches_its_golden_text(command: tuple[str, ...], home: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code in (0, None)
    shown = capsys.readouterr().out
    golden = GOLDEN / f"{'-'.join(command) or 'rdev'}.txt"
    if os.environ.get("RDEV_UPDATE_GOLDEN"):
        golden.write_text(shown)
    assert shown == golden.read_text()


def test_every_command_has_a_golden_text() -> None:
    """A new command is added to COMMANDS (and gets its golden text), not left out of the contract."""
    from client_side.cli import app, colab

    names = {(c.name or c.callback.__name__,) for c in app.registered_commands if not c.hidden}
    names |= {("colab", c.name or c.callback.__name__) for c in colab.registered_commands}
    assert names <= set(COMMANDS)

"""The user documentation holds: the site builds strictly, every `rdev ...` it shows is a real command with real
options, and the troubleshooting page lists the errors the code has now.

After changing an error's words, regenerate the page with `.venv/bin/python scripts/troubleshooting.py` (or
`RDEV_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_docs.py`).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer

from client_side.cli import app
from tests.conftest import REPO

DOCS = REPO / "docs"
# Research notes (google-colab-cli.md, editor-servers.md) quote other tools' command lines, not rdev's.
NOTES = {"google-colab-cli.md", "editor-servers.md"}
PAGES = [p for p in sorted(DOCS.glob("*.md")) if p.name not in NOTES] + [REPO / "README.md"]
# Options the docs describe from an open issue while their command is being built (issue 20). Each must not exist
# yet: once it does, this test says to take it out of here (and any "being finished" note out of the page).
_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE = re.compile(r"`(rdev [^`]+)`")


def _commands_in(text: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of each command line in the page's code blocks and of each inline `rdev ...` span."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            yield number, line
        else:
            for span in _INLINE.findall(line):
                yield number, span


def _words(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:  # an unbalanced quote, as in prose: read what can be read
        return line.split("#", 1)[0].split()


def _rdev_calls(line: str) -> Iterator[list[str]]:
    """Each `rdev ...` in a shell line (after a `$ ` prompt, between `&&`, `;` and `|`), without the word rdev."""
    words = _words(line.strip().removeprefix("$ "))
    start = 0
    for i, word in enumerate([*words, ";"]):
        if word in ("&&", "||", ";", "|"):
            call = words[start:i]
            if call and Path(call[0]).name == "rdev":
                yield call[1:]
            start = i + 1


def _placeholder(word: str) -> bool:
    """A stand-in the docs write for a command (CMD, ...), not a command of its own."""
    return word.strip("[]").isupper() or word.strip("[].…") == ""


def _subcommands(command: object) -> dict[str, Any] | None:
    """A group's commands by name (None for a command that is no group). Read by duck typing, since typer may bring
    its own copy of click's classes."""
    return getattr(command, "commands", None)


def problems(call: list[str]) -> list[str]:
    """What in `rdev CALL` is not a command or option of rdev's (empty when all is real)."""
    command: Any = typer.main.get_command(app)
    path: list[str] = []
    words = list(call)
    found: list[str] = []
    while words:
        word = words.pop(0)
        if word == "--":
            return found
        if word.startswith("-") and len(word) > 1 and not word.strip("-[]|").isupper():
            for option in (w for w in word.strip("[]").split("|") if re.match(r"^--?[A-Za-z]", w)):
                flag = option.split("=", 1)[0]
                declared = next((p for p in command.params if flag in (*p.opts, *p.secondary_opts)), None)
                if declared is None:
                    found.append(f"rdev {' '.join(path)} has no option {flag}")
                elif not getattr(declared, "is_flag", False) and "=" not in option and words and not word.endswith("]"):
                    words.pop(0)  # the option's value
            continue
        subcommands = _subcommands(command)
        if subcommands is not None:
            if _placeholder(word):
                return found
            sub = subcommands.get(word)
            if sub is None:
                return [*found, f"rdev {' '.join([*path, word])} is not a command"]
            command = sub
            path.append(word)
    return found


def test_the_checker_refuses_a_made_up_command_or_option() -> None:
    assert problems(["connect", "colab", "--ticket", "rdev1.x", "--no-open"]) == []
    assert problems(["add", "hpc", "--host", "h", "--slurm", "--partition=gpu --gres=gpu:1"]) == []
    assert problems(["colab", "cell", "[--tunnel", "cloudflared|ngrok]", "[--drive]"]) == []
    assert problems(["logs", "gpu1", "train", "-f"]) == []
    assert problems(["ssh", "gpu1", "--", "nvidia-smi", "--made-up"]) == []
    assert problems(["connect", "colab", "--made-up"]) == ["rdev connect has no option --made-up"]
    assert problems(["colab", "cell", "--runtime=kaggle", "--colour"]) == ["rdev colab cell has no option --colour"]
    assert problems(["conect", "colab"]) == ["rdev conect is not a command"]
    assert problems(["password", "gpu1", "--stdin|--delete|--forget"]) == ["rdev password has no option --forget"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_rdev_line_in_the_docs_is_a_real_command(page: Path) -> None:
    wrong = [f"{page.name}:{number}: {problem} ({line.strip()})"
             for number, line in _commands_in(page.read_text())
             for call in _rdev_calls(line) for problem in problems(call)]
    assert not wrong, "\n".join(wrong)


def _troubleshooting() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rdev_troubleshooting", REPO / "scripts" / "troubleshooting.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_troubleshooting_page_lists_the_errors_the_code_has() -> None:
    generator = _troubleshooting()
    page = generator.PAGE.read_text()
    current = generator.updated(page)
    if os.environ.get("RDEV_UPDATE_GOLDEN") and current != page:
        generator.PAGE.write_text(current)
        page = current
    assert page == current, "docs/troubleshooting.md is out of date: run .venv/bin/python scripts/troubleshooting.py"


def test_the_error_reader_shows_a_sentence_with_its_values_as_placeholders() -> None:
    source = ('HINT = "check the VPN."\n'
              'raise RdevError(f"Cannot reach {name} (job {entry.job}, {err})", HINT)\n'
              'raise BadInput("The port " + f"{port!r} is not a number", "give 22.")\n'
              'raise RdevError(*split(text))\n')
    entries = list(_troubleshooting().entries(source))
    assert [(e.problem, e.fix, e.usage) for e in entries] == [
        ("Cannot reach NAME (job JOB, …)", "check the VPN.", False), ("The port PORT is not a number", "give 22.", True)]


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})  # Material's banner about MkDocs 2
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "troubleshooting" / "index.html").is_file()

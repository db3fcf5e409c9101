"""The `rdev` command line: help for every command, and bad input refused with exit 2, one line,
no traceback and no file written."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest

from bootstrap.ticket import Ticket
from tests.conftest import REPO, snapshot

COMMANDS = ["key", "connect", "add", "password", "ssh", "gpus", "list", "remove", "doctor", "demo"]
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBE+xhRFLLxxd3SfP8sMd79hDgoYCVaMFDCAV8EmNVOL"
GOOD = Ticket(tunnel="direct", host="127.0.0.1", port=2222, user="root", host_keys=(HOST_KEY,), workdir="/content",
              runtime="colab", started="2026-11-22T01:00:00Z", expires="2026-11-22T13:00:00Z")
BAD_TOKENS = ["two words", "new\nline", 'quo"te', "it's", "hash#tag", "per%cent", "equals=sign", "-leading", "tab\there"]


def tampered(**fields: object) -> str:
    raw = json.loads(base64.urlsafe_b64decode(GOOD.encode()[6:] + "=="))
    raw.update(fields)
    return "rdev1." + base64.urlsafe_b64encode(json.dumps(raw).encode()).rstrip(b"=").decode()


def test_top_level_help(rdev) -> None:
    result = rdev("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout


def test_version_is_the_packages(rdev) -> None:
    from importlib.metadata import version

    from bootstrap import __version__

    result = rdev("--version")
    assert result.returncode == 0 and result.stdout == f"rdev {version('rdev')}\n"
    assert version("rdev") == __version__


def test_rdev_leaves_at_once_with_its_output_and_status_whole(home: Path) -> None:
    """`rdev` ends with os._exit after flushing (cli.command_line): nothing it printed is lost, its status is kept, and a
    reader that stops early gets no traceback."""
    import sys

    many = subprocess.run([sys.executable, "-m", "client_side", "--help"], check=False, capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert many.returncode == 0 and many.stdout.rstrip().endswith("what to paste into Colab or Kaggle."), many.stdout
    bad = subprocess.run([sys.executable, "-m", "client_side", "list", "--bogus"], check=False, capture_output=True,
                         text=True, cwd=REPO, timeout=60)
    assert bad.returncode == 2 and bad.stderr == "rdev: No such option: --bogus. See 'rdev list --help'.\n"
    cut = subprocess.run(f'"{sys.executable}" -m client_side --help | head -c 10', shell=True, check=False,
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert cut.stdout == "Usage: rde" and "Traceback" not in cut.stderr, cut.stderr


def test_only_typers_public_names_are_used() -> None:
    """typer vendors click in a private module that can change in any release: rdev must not reach into it."""
    import re

    private = [f"{path.relative_to(REPO)}: {line.strip()}" for path in (REPO / "client_side").rglob("*.py")
               for line in path.read_text().splitlines() if re.search(r"\btyper\._|\bfrom typer import _", line)]
    assert not private, private


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(rdev, command: str) -> None:
    result = rdev(command, "--help")
    assert result.returncode == 0 and "Usage: rdev " + command in result.stdout


def test_runtime_side_help() -> None:
    from tests.conftest import run_module

    for args in (["--help"], ["serve", "--help"], ["stop", "--help"]):
        result = run_module("colab_side", *args)
        assert result.returncode == 0 and "usage:" in result.stdout


def assert_refused(result: subprocess.CompletedProcess, home: Path, before: dict[str, bytes]) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("rdev: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(home.parent) == before


@pytest.mark.parametrize("name", BAD_TOKENS + ["star*", "q?", "bang!", "com,ma", ""])
def test_bad_name_is_refused_before_anything_is_written(home: Path, rdev, name: str) -> None:
    before = snapshot(home.parent)
    # After `--` a leading '-' reaches rdev instead of being read as an option.
    assert_refused(rdev("connect", "--ticket", GOOD.encode(), "--no-open", "--", name), home, before)


@pytest.mark.parametrize("field", ["host", "user"])
@pytest.mark.parametrize("value", BAD_TOKENS)
def test_bad_host_or_user_in_ticket_is_refused(home: Path, rdev, field: str, value: str) -> None:
    before = snapshot(home.parent)
    result = rdev("connect", "box", "--ticket", tampered(**{field: value}), "--no-open")
    assert_refused(result, home, before)
    assert f"'{field}'" in result.stderr


@pytest.mark.parametrize("ticket", [
    "hello",
    "rdev1.",
    "rdev1.!!!notbase64",
    GOOD.encode()[:40],
    GOOD.encode()[:-7],
    GOOD.encode().replace("rdev1.", "rdev2."),
    tampered(v=2),
    tampered(port=0),
    tampered(tunnel="teleport"),
    tampered(host_keys=["ssh-ed25519 AAAAnotakey"]),
    "rdev1." + base64.urlsafe_b64encode(b"[1, 2]").decode(),
])
def test_bad_ticket_is_refused(home: Path, rdev, ticket: str) -> None:
    before = snapshot(home.parent)
    assert_refused(rdev("connect", "box", "--ticket", ticket, "--no-open"), home, before)


def test_ticket_from_stdin_is_checked_too(home: Path, rdev) -> None:
    before = snapshot(home.parent)
    assert_refused(rdev("connect", "box", input="not a ticket\n"), home, before)


def test_missing_editor_is_refused_before_writing(home: Path, rdev) -> None:
    before = snapshot(home.parent)
    assert_refused(rdev("connect", "box", "--ticket", GOOD.encode(), "--editor", "/nonexistent/code"), home, before)


def test_remove_unknown_host(home: Path, rdev) -> None:
    before = snapshot(home.parent)
    assert_refused(rdev("remove", "nothere"), home, before)


def test_key_is_stable_and_private(home: Path, rdev) -> None:
    first = rdev("key")
    assert first.returncode == 0 and first.stdout.startswith("ssh-ed25519 ")
    assert rdev("key").stdout == first.stdout
    check = subprocess.run(["ssh-keygen", "-y", "-f", str(home / ".ssh" / "rdev" / "id_ed25519")], check=False,
                           capture_output=True, text=True)
    assert check.stdout.split()[:2] == first.stdout.split()[:2]


def test_list_empty(rdev) -> None:
    assert rdev("list").stdout.startswith("No hosts yet")
    assert json.loads(rdev("list", "--json").stdout) == []


def test_colab_cell_help(rdev) -> None:
    result = rdev("colab", "cell", "--help")
    assert result.returncode == 0 and "--tunnel" in result.stdout and "--source" in result.stdout


# --- hostile input: one line, exit 2, nothing written ----------------------------------------------------------


def refused_cleanly(result: subprocess.CompletedProcess, root: Path, before: dict[str, bytes]) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("rdev: ")
    assert snapshot(root) == before


def spliced(junk: str) -> str:
    line = GOOD.encode()
    return line[:30] + junk + line[30:]


@pytest.mark.parametrize("args", [
    ["connect", "box", "--ticket", spliced("!!")],
    ["connect", "box", "--ticket", "-", spliced("\x00")],  # NUL cannot be in argv: on stdin
    ["connect", "box", "--ticket", spliced("%")],
    ["connect", "box", "--ticket", "rdev1." + base64.urlsafe_b64encode(b"[" * 2000 + b"]" * 2000).decode()],
    ["connect", "box", "--ticket", "-", "rdev1." + base64.urlsafe_b64encode(b"[" * 100000 + b"]" * 100000).decode()],
    ["connect", "box", "--ticket-file", "/dev/zero"],
    ["connect", "\u212aolab", "--ticket", GOOD.encode()],  # KELVIN SIGN lower-cases to an ASCII 'k'
    ["add", "gpu", "--host", "10.0.0.1", "--port", "22abc"],
    ["add", "gpu", "--host", "10.0.0.1", "--bogus"],
    ["colab", "cell", "--tunnel", "direct"],
    ["colab", "cell", "--runtime", "binder"],
    ["colab", "cell", "--source", "relative/path"],
    ["colab", "cell", "--source", "https://user:tok@example.com/rdev.whl"],
], ids=["junk", "nul", "percent", "nested", "nested-long", "dev-zero", "kelvin", "port", "option", "cell-tunnel", "cell-runtime",
        "cell-source", "cell-login"])
def test_hostile_input_is_one_line_exit_2_and_writes_nothing(home: Path, rdev, args: list[str]) -> None:
    before = snapshot(home.parent)
    stdin = args.pop() if "-" in args else None
    refused_cleanly(rdev(*args, input=stdin), home.parent, before)


def test_a_missing_home_is_refused_and_not_created(home: Path, rdev) -> None:
    gone = home.parent / "no-such-home"
    for args in (["key"], ["connect", "box", "--ticket", GOOD.encode()], ["add", "gpu", "--host", "10.0.0.1"]):
        result = rdev(*args, env={**os.environ, "HOME": str(gone)})
        assert result.returncode == 2 and "does not exist" in result.stderr and "HOME" in result.stderr, result.stderr
        assert not gone.exists()


def test_a_paste_with_several_tickets_takes_the_newest(home: Path, rdev) -> None:
    older = GOOD.encode()
    newer = Ticket(**{**GOOD.__dict__, "port": 2299, "started": "2026-11-22T02:00:00Z"}).encode()
    cell_output = f"sshd ... On your laptop run: rdev connect NAME\n{newer}\nThe tunnel's address changed\n{older}\n"
    # Nothing listens on either port: the connect fails at the probe, after writing the newer endpoint.
    result = rdev("connect", "box", "--ticket", "-", "--no-open", input=cell_output)
    assert result.returncode == 1 and "Cannot reach box" in result.stderr
    assert json.loads(rdev("list", "--json").stdout)[0]["port"] == 2299


def test_an_empty_home_is_refused(home: Path, rdev) -> None:
    result = rdev("key", env={**os.environ, "HOME": ""})
    assert result.returncode == 2 and "HOME is set but empty" in result.stderr


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "601"])
def test_gpus_timeout_out_of_range_is_bad_input(home: Path, rdev, value: str) -> None:
    result = rdev("gpus", "--timeout", value)
    assert result.returncode == 2 and "timeout" in result.stderr and "Traceback" not in result.stderr


def test_damaged_known_hosts_is_one_sentence(home: Path, rdev) -> None:
    assert rdev("add", "gpu", "--host", "10.0.0.1").returncode == 0
    (home / ".ssh" / "rdev" / "known_hosts").write_bytes(b"rdev-gpu \xff\xfe\n")
    result = rdev("remove", "gpu")
    assert result.returncode == 1 and "not text rdev wrote" in result.stderr and "Traceback" not in result.stderr

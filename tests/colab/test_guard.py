"""The ProxyCommand guard of a Colab CLI host: it hands over to the CLI only for the pinned runtime's
live session, and never lets a background connection create, log in or refresh on the SSH stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from client_side.local import locking
from tests.conftest import REPO


@pytest.fixture
def fake_colab(home: Path) -> tuple[Path, Path]:
    """A `colab` that records its arguments; `status` renews the session's token, as the real one does."""
    record = home.parent / "colab-calls"
    script = home.parent / "colab"
    script.write_text(f"""#!{sys.executable}
import json, sys, datetime, pathlib
open({str(record)!r}, "a").write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1] == "status":
    print("[colab] Session refreshed")  # stdout: must not reach the SSH stream
    f = pathlib.Path({str(home)!r}) / ".config/colab-cli/sessions.json"
    data = json.loads(f.read_text())
    soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    data[sys.argv[3]]["token_expires_at"] = soon.isoformat()
    f.write_text(json.dumps(data))
else:
    sys.stdout.write("BRIDGE " + sys.stdin.read())
""")
    script.chmod(0o755)
    return script, record


def session_file(home: Path, **sessions: dict) -> None:
    folder = home / ".config" / "colab-cli"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sessions.json").write_text(json.dumps({name: {"name": name, "token": "t", "url": "http://127.0.0.1:9",
                                                             **fields} for name, fields in sessions.items()}))
    (folder / "sessions.json").chmod(0o600)


def in_an_hour() -> str:
    return (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()


def guard_argv(colab: Path, endpoint: str = "ep-1") -> list[str]:
    return [sys.executable, "-I", "-m", "client_side.colab_proxy", "colab", endpoint, "--", str(colab), "ssh",
            "--proxy-mode", "-s", "gpu", "-i", "/k/id_ed25519"]


def guard(colab: Path, endpoint: str = "ep-1", stdin: str = "SSH-2.0-OpenSSH_9.2\n") -> subprocess.CompletedProcess:
    return subprocess.run(guard_argv(colab, endpoint), check=False, input=stdin, capture_output=True, text=True, timeout=60,
                          cwd=REPO, env=os.environ.copy())


def calls(record: Path) -> list[list[str]]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def test_a_live_session_of_the_pinned_runtime_becomes_the_cli_itself(home: Path, fake_colab: tuple[Path, Path]) -> None:
    colab, record = fake_colab
    session_file(home, gpu={"endpoint": "ep-1", "token_expires_at": in_an_hour()})
    result = guard(colab)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "BRIDGE SSH-2.0-OpenSSH_9.2\n"  # the stream passes untouched
    assert calls(record) == [["ssh", "--proxy-mode", "-s", "gpu", "-i", "/k/id_ed25519"]]


def test_a_missing_session_is_never_created_in_the_background(home: Path, fake_colab: tuple[Path, Path]) -> None:
    colab, record = fake_colab
    session_file(home, other={"endpoint": "ep-9", "token_expires_at": in_an_hour()})
    result = guard(colab)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("rdev: Colab session gpu no longer exists")
    assert "rdev connect colab" in result.stderr
    assert calls(record) == []  # the CLI, which would create it, never ran


def test_a_session_that_now_names_another_runtime_is_refused(home: Path, fake_colab: tuple[Path, Path]) -> None:
    colab, record = fake_colab
    session_file(home, gpu={"endpoint": "ep-2", "token_expires_at": in_an_hour()})
    result = guard(colab, endpoint="ep-1")
    assert result.returncode == 1
    assert "another runtime" in result.stderr and "rdev connect colab" in result.stderr
    assert calls(record) == []


@pytest.mark.parametrize("expires", [None, "2020-01-01T00:00:00+00:00"])
def test_a_stale_token_is_renewed_off_the_stream_first(home: Path, fake_colab: tuple[Path, Path],
                                                       expires: str | None) -> None:
    colab, record = fake_colab
    session_file(home, gpu={"endpoint": "ep-1", "token_expires_at": expires})
    result = guard(colab)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "BRIDGE SSH-2.0-OpenSSH_9.2\n"  # the status line went to stderr
    assert "[colab] Session refreshed" in result.stderr
    assert [c[0] for c in calls(record)] == ["status", "ssh"]


def test_a_token_that_needs_a_login_stops_before_the_cli_bridges(home: Path, tmp_path: Path) -> None:
    colab = tmp_path / "colab"
    colab.write_text("#!/bin/sh\n[ \"$1\" = status ] && read code && exit 0\necho BRIDGED\n")  # a login reads stdin
    colab.chmod(0o755)
    session_file(home, gpu={"endpoint": "ep-1", "token_expires_at": "2020-01-01T00:00:00"})
    result = guard(colab)
    assert result.returncode == 1
    assert "BRIDGED" not in result.stdout
    assert "needs you" in result.stderr and "rdev connect colab" in result.stderr


def test_a_command_line_rdev_did_not_write_is_refused(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "client_side.colab_proxy", "colab"], check=False, capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("rdev: ") and "rdev connect" in result.stderr


def test_a_session_file_the_cli_cannot_read_is_refused_not_handed_over(home: Path, fake_colab: tuple[Path, Path]) -> None:
    # The CLI would take it for "no sessions" and create a runtime for gpu.
    colab, record = fake_colab
    session_file(home, gpu={"endpoint": "ep-1", "token_expires_at": in_an_hour()})
    data = json.loads((home / ".config" / "colab-cli" / "sessions.json").read_text())
    data["old"] = {"name": "old", "endpoint": "ep0"}
    (home / ".config" / "colab-cli" / "sessions.json").write_text(json.dumps(data))
    result = guard(colab)
    assert result.returncode == 1 and "would start a new runtime" in result.stderr
    assert calls(record) == []


@pytest.mark.parametrize("fields", [
    {"last_execution": [None, None, None]}, {"token_expires_at": "2026-W49-1"},
    {"token_expires_at": "20261201T100000Z"}, {"token_expires_at": "2026-12-01T10:00:00+05"},
], ids=["null-last-execution", "week-date", "basic-format", "zone-hours-only"])
def test_an_entry_the_clis_model_refuses_is_refused_here_too(home: Path, fake_colab: tuple[Path, Path],
                                                            fields: dict) -> None:
    # Python's fromisoformat reads those times; the CLI's pydantic does not (tests/colab/test_sessions.py
    # checks rdev against the real CLI), and would then find no session and create one.
    colab, record = fake_colab
    session_file(home, gpu={"endpoint": "ep-1", "token_expires_at": in_an_hour(), **fields})
    result = guard(colab)
    assert result.returncode == 1 and "would start a new runtime" in result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert calls(record) == []


def test_a_connection_while_rdev_stop_ends_the_session_is_refused(home: Path, fake_colab: tuple[Path, Path]) -> None:
    colab, record = fake_colab
    session_file(home, gpu={"endpoint": "ep-1", "token_expires_at": in_an_hour()})
    with locking.ending_colab_session("gpu", lambda: None):
        result = guard(colab)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == ("rdev: 'rdev stop' is ending Colab session gpu, so rdev does not connect colab to it: once "
                             "the stop has finished, 'rdev connect colab' starts a new runtime.\n")
    assert calls(record) == []
    assert guard(colab).returncode == 0  # the stop is over (and here left the session): connections go through


def test_the_cli_keeps_the_session_in_use_until_it_ends(home: Path, fake_colab: tuple[Path, Path]) -> None:
    # A stop removes the session only once no CLI that a guard let through can read the file again.
    colab, record = fake_colab
    session_file(home, gpu={"endpoint": "ep-1", "token_expires_at": in_an_hour()})
    cli = subprocess.Popen(guard_argv(colab), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           cwd=REPO, env=os.environ.copy())
    deadline = time.monotonic() + 30
    while not calls(record) and time.monotonic() < deadline:  # the guard has become the CLI
        time.sleep(0.05)
    running_when_ended: list[int | None] = []

    def end_connections() -> None:  # as closing the master connection ends its ProxyCommand
        running_when_ended.append(cli.poll())
        cli.stdin.close()

    with locking.ending_colab_session("gpu", end_connections):
        pass
    assert running_when_ended[:1] == [None]  # the stop had to end the CLI, which held the session in use
    assert cli.wait(10) == 0 and cli.stdout.read() == b"BRIDGE "


def test_a_cli_that_is_gone_is_a_sentence(home: Path, tmp_path: Path) -> None:
    session_file(home, gpu={"endpoint": "ep-1", "token_expires_at": in_an_hour()})
    result = guard(tmp_path / "gone" / "colab")
    assert result.returncode == 1
    assert result.stderr.startswith("rdev: ") and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "rdev connect colab" in result.stderr


def test_refusals_are_kept_in_the_hosts_log_too(home: Path, fake_colab: tuple[Path, Path]) -> None:
    colab, _ = fake_colab
    session_file(home)
    result = guard(colab)
    log = home / ".ssh" / "rdev" / "logs" / "colab.log"
    assert log.read_text() == result.stderr and "no longer exists" in result.stderr
    assert log.stat().st_mode & 0o777 == 0o600


def test_a_name_that_is_not_rdevs_is_refused(home: Path, fake_colab: tuple[Path, Path]) -> None:
    colab, record = fake_colab
    argv = [sys.executable, "-I", "-m", "client_side.colab_proxy", "../../x", "ep-1", "--", str(colab), "ssh",
            "--proxy-mode", "-s", "gpu", "-i", "/k/id_ed25519"]
    result = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 1 and calls(record) == []
    assert not list(home.rglob("*.log"))

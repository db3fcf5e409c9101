"""End to end: a real private sshd on loopback, `rdev connect` with its ticket, the real ssh client
through the config rdev wrote, then `rdev remove`."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from bootstrap import ticket as tickets
from tests.conftest import editor_calls, editor_standin, read_or_empty, run_module, ssh_through


def test_connect_runs_commands_through_written_config(home: Path, rdev, server) -> None:
    env = {**os.environ, "RDEV_E2E_MARK": "x", "NOTEBOOK_VAR": "seen in the session"}
    ticket = server("--workdir", "/tmp", env=env)
    result = rdev("connect", "box", "--ticket", ticket, "--no-open")
    assert result.returncode == 0, result.stderr
    assert "ssh works" in result.stdout

    remote = ssh_through(home, "box", 'echo "$NOTEBOOK_VAR|$(whoami)"; echo "$PATH"')
    assert remote.returncode == 0, remote.stderr
    first, path = remote.stdout.splitlines()[:2]
    assert first == f"seen in the session|{tickets.parse(ticket).user}"
    for part in os.environ["PATH"].split(os.pathsep):
        assert part in path.split(":")
    assert "RDEV_E2E_MARK" not in ssh_through(home, "box", "env").stdout

    listed = json.loads(rdev("list", "--json").stdout)
    assert [(h["name"], h["workdir"]) for h in listed] == [("box", "/tmp")]


def test_connect_says_when_the_runtimes_rdev_is_another_version(home: Path, rdev, server) -> None:
    from dataclasses import replace

    from bootstrap import __version__

    ticket = server()
    assert tickets.parse(ticket).rdev == __version__
    same = rdev("connect", "box", "--ticket", ticket, "--no-open")
    assert same.returncode == 0 and "The runtime runs" not in same.stdout + same.stderr
    other = replace(tickets.parse(ticket), rdev="0.1.9", started="2099-01-01T00:00:00Z").encode()
    said = rdev("connect", "box", "--ticket", other, "--no-open")
    assert said.returncode == 0, said.stderr
    assert f"The runtime runs rdev 0.1.9, this laptop rdev {__version__}" in said.stdout, said.stdout
    older = replace(tickets.parse(ticket), rdev=None, started="2099-01-01T00:00:01Z").encode()
    assert "The runtime runs an rdev older than 0.2.0" in rdev("connect", "box", "--ticket", older, "--no-open").stdout


def test_connect_opens_editor_with_remote_folder(home: Path, rdev, server, monkeypatch: pytest.MonkeyPatch) -> None:
    editor, record = editor_standin(home, monkeypatch)
    ticket = server("--workdir", "/srv/my project")
    result = rdev("connect", "box", "--ticket", ticket, env={**os.environ, "RDEV_EDITOR": str(editor)})
    assert result.returncode == 0, result.stderr
    assert editor_calls(record)[-1]["argv"] == ["--remote", "ssh-remote+box", "/srv/my project"]


def test_connect_without_editor_prints_command(home: Path, rdev, server) -> None:
    ticket = server()
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    result = rdev("connect", "box", "--ticket", "-", input=f"some output\n{ticket}\n", env=env)
    assert result.returncode == 0, result.stderr
    assert "code --remote ssh-remote+box" in result.stdout


def test_wrong_pinned_key_is_refused_with_mismatch_message(home: Path, rdev, server) -> None:
    good = tickets.parse(server())
    other = home.parent / "otherkey"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    forged = good.__class__(**{**good.__dict__, "host_keys": (" ".join(Path(f"{other}.pub").read_text().split()[:2]),)})
    result = rdev("connect", "box", "--ticket", forged.encode(), "--no-open")
    assert result.returncode == 1
    assert "host key does not match" in result.stderr
    assert "Traceback" not in result.stderr


def test_reconnect_with_new_ticket_replaces_entry_and_key(home: Path, rdev, server) -> None:
    assert rdev("connect", "box", "--ticket", server(), "--no-open").returncode == 0
    # A new runtime: new state folder, so a new host key and a new port.
    (home.parent / "server" / "ssh_host_ed25519_key").unlink()
    (home.parent / "server" / "ssh_host_ed25519_key.pub").unlink()
    second = server()
    result = rdev("connect", "box", "--ticket", second, "--no-open")
    assert result.returncode == 0, result.stderr
    known = (home / ".ssh" / "rdev" / "known_hosts").read_text().splitlines()
    assert known == [f"rdev-box {tickets.parse(second).host_keys[0]}"]
    config = (home / ".ssh" / "rdev" / "config").read_text()
    assert config.count("Host box") == 1 and f"Port {tickets.parse(second).port}" in config
    assert ssh_through(home, "box", "true").returncode == 0


def test_remove_takes_host_out_everywhere(home: Path, rdev, server) -> None:
    assert rdev("connect", "box", "--ticket", server(), "--no-open").returncode == 0
    result = rdev("remove", "box")
    assert result.returncode == 0, result.stderr
    assert "Host box" not in (home / ".ssh" / "rdev" / "config").read_text()
    assert "rdev-box" not in (home / ".ssh" / "rdev" / "known_hosts").read_text()
    assert rdev("list", "--json").stdout.strip() == "[]"
    assert ssh_through(home, "-o", "ConnectTimeout=5", "box", "true").returncode != 0
    assert not list((home / ".ssh" / "rdev" / "cm").iterdir())
    assert rdev("remove", "box").returncode == 2


def test_files_are_private(home: Path, rdev, server) -> None:
    assert rdev("connect", "box", "--ticket", server(), "--no-open").returncode == 0
    for folder in (home / ".ssh", home / ".ssh" / "rdev"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("config", "rdev/config", "rdev/known_hosts", "rdev/id_ed25519", "rdev/id_ed25519.pub"):
        assert stat.S_IMODE((home / ".ssh" / name).stat().st_mode) == 0o600


@pytest.mark.parametrize("reason, make", [
    ("unreachable", lambda t: t.__class__(**{**t.__dict__, "port": 1})),
])
def test_unreachable_host_is_one_sentence(home: Path, rdev, server, reason: str, make) -> None:
    ticket = make(tickets.parse(server())).encode()
    result = rdev("connect", "box", "--ticket", ticket, "--no-open")
    assert result.returncode == 1
    assert result.stderr.startswith("rdev: Cannot reach box") and result.stderr.count("\n") == 1


def test_server_stop_leaves_no_process(home: Path, rdev, server) -> None:
    assert rdev("connect", "box", "--ticket", server(), "--no-open").returncode == 0
    state = home.parent / "server"
    pid = int((state / "sshd.pid").read_text())
    marker = home.parent / "remote-started"
    session = subprocess.Popen(["ssh", "-F", str(home / ".ssh" / "config"), "-o", "ControlPath=none", "box",
                                f"touch {marker}; exec sleep 301"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if marker.exists():
                break
            subprocess.run(["sleep", "0.1"], check=False)
        assert marker.exists(), "the remote command never started"
        remote_sleep = [p for p in Path("/proc").glob("[0-9]*/cmdline") if read_or_empty(p) == b"sleep\x00301\x00"]
        assert remote_sleep, "the remote sleep is not running"
        assert run_module("colab_side", "stop", "--state-dir", str(state)).returncode == 0
        assert session.wait(timeout=30) != 0
    finally:
        session.kill()
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    assert not [p for p in remote_sleep if read_or_empty(p)], "a session outlived stop"
    assert not (state / "sshd.pid").exists()


def test_a_failed_write_leaves_every_file_as_it_was(home: Path, rdev, server) -> None:
    """known_hosts cannot be written (a link into a folder that is gone): rdev names that file, exits 1,
    and its SSH config and host list stay as they were (no half-written host), no temporary file left."""
    from tests.conftest import snapshot

    ticket = server()
    assert rdev("connect", "first", "--ticket", ticket, "--no-open").returncode == 0
    known = home / ".ssh" / "rdev" / "known_hosts"
    known.unlink()
    known.symlink_to(home.parent / "gone" / "known_hosts")
    before = snapshot(home.parent)
    result = rdev("connect", "second", "--ticket", ticket, "--no-open")
    assert result.returncode == 1, result.stderr
    assert str(home.parent / "gone" / "known_hosts") in result.stderr and "nothing was changed" in result.stderr
    assert ".tmp" not in result.stderr and "Traceback" not in result.stderr
    after = {path: data for path, data in snapshot(home.parent).items() if "/locks/" not in path}
    assert after == {path: data for path, data in before.items() if "/locks/" not in path}  # empty lock files aside

"""The editor's server fetched ahead by `serve`, against a stand-in for the editors' download servers:
unpacked where Remote-SSH looks before the first connection; an unreachable server is a status line
and changes nothing else."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.stand_ins.downloads import Downloads

COMMIT = "1" * 40


def log(home: Path) -> str:
    path = home.parent / "server" / "editor-server.log"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (path.exists() and path.read_text().strip()):
        time.sleep(0.1)
    return path.read_text()


def test_serve_fetches_the_editor_server_before_the_first_connection(home: Path, rdev, server,
                                                                     downloads: Downloads) -> None:
    ticket = server("--editor-server", f"code:stable:{COMMIT}", env={**os.environ, "RDEV_EDITOR_DOWNLOADS": downloads.url})
    assert log(home).strip() == f"Editor server: code {COMMIT[:10]} is ready in ~/.vscode-server."
    installed = home / ".vscode-server" / "cli" / "servers" / f"Stable-{COMMIT}" / "server" / "bin" / "code-server"
    assert installed.exists() and (home / ".vscode-server" / f"code-{COMMIT}").exists()
    assert sorted(downloads.requests) == [f"/commit:{COMMIT}/cli-alpine-x64/stable",
                                          f"/commit:{COMMIT}/server-linux-x64/stable"]
    assert rdev("connect", "box", "--ticket", ticket, "--no-open").returncode == 0


def test_an_unreachable_download_is_a_status_line_and_sshd_works(home: Path, rdev, server) -> None:
    ticket = server("--editor-server", f"code:stable:{COMMIT}", env={**os.environ,
                                                                     "RDEV_EDITOR_DOWNLOADS": "http://127.0.0.1:9"})
    said = log(home)
    assert said.startswith("Editor server: not fetched (") and said.count("\n") == 1
    assert not (home / ".vscode-server" / "cli" / "servers" / f"Stable-{COMMIT}").exists()
    result = rdev("connect", "box", "--ticket", ticket, "--no-open")
    assert result.returncode == 0, result.stderr


def test_a_password_host_fetches_the_editor_server_before_the_editor_opens(home: Path, rdev, host, downloads: Downloads,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import editor_calls, editor_fetching
    from tests.stand_ins.login_host import PASSWORD

    record = editor_fetching(home, monkeypatch, COMMIT, downloads.url)
    assert rdev("add", "lab", "--host", "127.0.0.1", "--port", str(host.port), "--user", host.user).returncode == 0
    result = rdev("connect", "lab", "--password-stdin", input=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    fetched = lines.index(f"Editor server: code {COMMIT[:10]} is ready in ~/.vscode-server.")
    assert fetched < next(i for i, line in enumerate(lines) if line.startswith("Opened: "))
    server = host.home / ".vscode-server" / "cli" / "servers" / f"Stable-{COMMIT}" / "server"
    assert (server / "bin" / "code-server").exists() and server.owner() == host.user  # the user's own, in their home
    assert editor_calls(record)[-1]["argv"][:2] == ["--remote", "ssh-remote+lab"]


def test_a_password_host_fetches_vscodiums_server_where_open_remote_ssh_looks(home: Path, rdev, host,
                                                                              downloads: Downloads,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import vscodium_standin
    from tests.stand_ins.login_host import PASSWORD

    codium = vscodium_standin(home, monkeypatch)
    monkeypatch.setenv("RDEV_EDITOR", codium.path)
    monkeypatch.setenv("RDEV_EDITOR_DOWNLOADS", downloads.url)
    assert rdev("add", "lab", "--host", "127.0.0.1", "--port", str(host.port), "--user", host.user).returncode == 0
    result = rdev("connect", "lab", "--password-stdin", input=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    commit = downloads.codium_commit
    assert f"Editor server: codium {commit[:10]} is ready in ~/.vscodium-server." in result.stdout.splitlines()
    assert downloads.requests == [("/VSCodium/vscodium/releases/download/1.99.0.25017/vscodium-reh-linux-x64-"
                                  "1.99.0.25017.tar.gz")]
    server = host.home / ".vscodium-server" / "bin" / commit / "bin" / "codium-server"
    assert server.exists() and server.owner() == host.user

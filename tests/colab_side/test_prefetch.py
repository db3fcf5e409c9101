"""Fetching the editor's server ahead (colab_side.prefetch, bootstrap.editor_servers): into the place the
editor looks, whole or not at all, never over the editor's own install under way, and a failure is one line
that changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bootstrap import editor_servers
from bootstrap.validate import InvalidValue
from colab_side import prefetch
from tests.stand_ins.downloads import Downloads

COMMIT = "e" * 40


def test_vs_code_server_and_cli_land_where_remote_ssh_looks(tmp_path: Path, downloads: Downloads) -> None:
    line = prefetch.fetch(f"code:stable:{COMMIT}", tmp_path, downloads.url)
    assert line == f"Editor server: code {COMMIT[:10]} is ready in ~/.vscode-server."
    server = tmp_path / ".vscode-server" / "cli" / "servers" / f"Stable-{COMMIT}" / "server"
    assert (server / "bin" / "code-server").stat().st_mode & 0o111
    assert (server / "product.json").read_text() == f'{{"commit": "{COMMIT}", "quality": "stable"}}'
    assert (tmp_path / ".vscode-server" / f"code-{COMMIT}").read_bytes() == b"#!/bin/sh\necho code cli\n"
    assert not list((tmp_path / ".vscode-server").rglob(".rdev-fetch-*"))  # nothing half-done left


def test_insiders_has_its_own_folders(tmp_path: Path, downloads: Downloads) -> None:
    prefetch.fetch(f"code:insider:{COMMIT}", tmp_path, downloads.url)
    assert (tmp_path / ".vscode-server-insiders" / "cli" / "servers" / f"Insiders-{COMMIT}" / "server" / "node").exists()
    assert (tmp_path / ".vscode-server-insiders" / f"code-insiders-{COMMIT}").exists()
    assert downloads.requests[0] == f"/commit:{COMMIT}/server-linux-x64/insider"


def test_vscodium_server_lands_where_open_remote_ssh_looks(tmp_path: Path, downloads: Downloads) -> None:
    commit = downloads.codium_commit
    line = prefetch.fetch(f"codium:stable:{commit}:{CODIUM_URL}", tmp_path, downloads.url)
    assert line == f"Editor server: codium {commit[:10]} is ready in ~/.vscodium-server."
    assert downloads.requests == [("/VSCodium/vscodium/releases/download/1.96.4.25017/vscodium-reh-linux-x64-"
                                  "1.96.4.25017.tar.gz")]
    server = tmp_path / ".vscodium-server" / "bin" / commit
    # open-remote-ssh's test for "installed": $SERVER_DIR/bin/codium-server is a file
    assert (server / "bin" / "codium-server").stat().st_mode & 0o111
    assert sorted(p.name for p in server.iterdir()) == ["bin", "node", "product.json"]
    assert not list((tmp_path / ".vscodium-server").rglob(".rdev-fetch-*"))


CODIUM_URL = ("https://github.com/VSCodium/vscodium/releases/download/1.96.4.25017/vscodium-reh-${os}-${arch}-"
              "1.96.4.25017.tar.gz")


def aged(folder: Path) -> Path:
    """`folder`, its entries and itself last written to an hour ago: long past any install under way."""
    long_ago = time.time() - 3600
    for path in [*folder.rglob("*"), folder]:
        os.utime(path, (long_ago, long_ago), follow_symlinks=False)
    return folder


@pytest.mark.parametrize("leftover", [[], ["vscode-server.tar.gz"], ["node", "bin/"]])
def test_a_vscodium_folder_without_its_server_is_replaced(tmp_path: Path, downloads: Downloads,
                                                          leftover: list[str]) -> None:
    """open-remote-ssh makes the folder before it downloads, and leaves it when that fails."""
    server = tmp_path / ".vscodium-server" / "bin" / downloads.codium_commit
    server.mkdir(parents=True)
    for name in leftover:
        (server / name).mkdir() if name.endswith("/") else (server / name).write_text("partial")
    aged(server)
    line = prefetch.fetch(f"codium:stable:{downloads.codium_commit}:{CODIUM_URL}", tmp_path, downloads.url)
    assert "is ready" in line and len(downloads.requests) == 1
    assert (server / "bin" / "codium-server").is_file() and (server / "node").read_text() == "#!/bin/sh\necho v20\n"
    assert not list(server.parent.glob(".rdev-fetch-*"))


def codium_leftover(tmp_path: Path, downloads: Downloads) -> Path:
    """open-remote-ssh's folder with part of its download in it, as its install script leaves it."""
    server = tmp_path / ".vscodium-server" / "bin" / downloads.codium_commit
    server.mkdir(parents=True)
    (server / "vscode-server.tar.gz").write_text("partial")
    return server


def fetch_codium(tmp_path: Path, downloads: Downloads) -> str:
    return prefetch.fetch(f"codium:stable:{downloads.codium_commit}:{CODIUM_URL}", tmp_path, downloads.url)


def left_alone(line: str, server: Path, why: str) -> None:
    assert line.startswith(f"Editor server: not fetched (the editor may be installing it into ~/.vscodium-server/bin/"
                           f"{server.name} right now: {why}") and line.endswith("left alone for the editor to finish.")
    assert (server / "vscode-server.tar.gz").read_text() == "partial" and not (server / "bin").exists()
    assert not list(server.parent.glob(".rdev-fetch-*"))


def test_a_vscodium_folder_written_to_moments_ago_is_left_alone(tmp_path: Path, downloads: Downloads) -> None:
    """The editor connected a moment ago and is downloading into it (on this node, or another of a shared home)."""
    server = codium_leftover(tmp_path, downloads)
    left_alone(fetch_codium(tmp_path, downloads), server, "written to ")
    assert downloads.requests == []  # not even downloaded


@pytest.mark.parametrize("how", ["working folder", "open file"])
def test_a_vscodium_folder_a_process_works_in_is_left_alone(tmp_path: Path, downloads: Downloads, how: str) -> None:
    """open-remote-ssh's script `pushd`es into the folder and runs wget, then tar, there: however long ago it last
    wrote (a download stalled on a slow link), its processes show it."""
    server = codium_leftover(tmp_path, downloads)
    held = str(server / "vscode-server.tar.gz")
    if how == "working folder":
        installer = subprocess.Popen(["sleep", "60"], cwd=server)  # in it once Popen returns: chdir precedes exec
    else:
        hold = f"import time; f = open({held!r}, 'ab'); print(flush=True); time.sleep(60)"
        installer = subprocess.Popen([sys.executable, "-c", hold], cwd=tmp_path, stdout=subprocess.PIPE)
        assert installer.stdout is not None and installer.stdout.readline()  # the file is open
    try:
        aged(server)
        left_alone(fetch_codium(tmp_path, downloads), server, f"process {installer.pid} works in it")
    finally:
        installer.kill()
        installer.wait()
        if installer.stdout is not None:
            installer.stdout.close()
    assert "is ready" in fetch_codium(tmp_path, downloads)  # once the install is gone, the leftover is replaced


def test_a_folder_the_editor_begins_installing_into_while_rdev_downloads_is_left_alone(
        tmp_path: Path, downloads: Downloads, monkeypatch: pytest.MonkeyPatch) -> None:
    server = tmp_path / ".vscodium-server" / "bin" / downloads.codium_commit
    download = prefetch._download

    def editor_connects_meanwhile(url: str, archive: Path) -> None:
        download(url, archive)
        codium_leftover(tmp_path, downloads)

    monkeypatch.setattr(prefetch, "_download", editor_connects_meanwhile)
    left_alone(fetch_codium(tmp_path, downloads), server, "written to ")


def test_a_server_the_editor_installs_while_rdev_downloads_is_the_one_that_stays(
        tmp_path: Path, downloads: Downloads, monkeypatch: pytest.MonkeyPatch) -> None:
    """VS Code's CLI unpacks into Stable-COMMIT.staging and renames it into place, and may start it at once."""
    unit = tmp_path / ".vscode-server" / "cli" / "servers" / f"Stable-{COMMIT}"
    download = prefetch._download

    def editor_installs_meanwhile(url: str, archive: Path) -> None:
        download(url, archive)
        (unit / "server").mkdir(parents=True, exist_ok=True)
        (unit / "server" / "the-editors").write_text("running")

    monkeypatch.setattr(prefetch, "_download", editor_installs_meanwhile)
    assert "is ready" in prefetch.fetch(f"code:stable:{COMMIT}", tmp_path, downloads.url)
    assert (unit / "server" / "the-editors").read_text() == "running"
    assert not (unit / "server" / "node").exists() and not list(unit.parent.glob(".rdev-fetch-*"))


def test_an_installed_vscodium_server_is_left_alone(tmp_path: Path, downloads: Downloads) -> None:
    server = tmp_path / ".vscodium-server" / "bin" / downloads.codium_commit / "bin"
    server.mkdir(parents=True)
    (server / "codium-server").write_text("mine")
    assert "is ready" in prefetch.fetch(f"codium:stable:{downloads.codium_commit}:{CODIUM_URL}", tmp_path,
                                        downloads.url)
    assert downloads.requests == [] and (server / "codium-server").read_text() == "mine"


def test_a_download_that_drops_is_one_line_and_leaves_nothing(tmp_path: Path, downloads: Downloads) -> None:
    downloads.cut_after = 100
    line = prefetch.fetch(f"code:stable:{COMMIT}", tmp_path, downloads.url)
    assert line.startswith("Editor server: not fetched (the download ended after 100 of "), line
    assert line.endswith("the editor downloads it itself on first connect.")
    assert not (tmp_path / ".vscode-server" / "cli" / "servers" / f"Stable-{COMMIT}").exists()
    assert not list((tmp_path / ".vscode-server").rglob(".rdev-fetch-*"))


def test_a_server_already_there_is_left_alone(tmp_path: Path, downloads: Downloads) -> None:
    server = tmp_path / ".vscode-server" / "cli" / "servers" / f"Stable-{COMMIT}" / "server"
    server.mkdir(parents=True)
    (tmp_path / ".vscode-server" / f"code-{COMMIT}").write_text("mine")
    assert "is ready" in prefetch.fetch(f"code:stable:{COMMIT}", tmp_path, downloads.url)
    assert downloads.requests == [] and not any(server.iterdir())


def test_an_unreachable_server_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    line = prefetch.fetch(f"code:stable:{COMMIT}", tmp_path, "http://127.0.0.1:9")
    assert line.startswith("Editor server: not fetched (") and "downloads it itself" in line
    assert not (tmp_path / ".vscode-server" / "cli" / "servers" / f"Stable-{COMMIT}").exists()


@pytest.mark.parametrize("text", ["code:stable:abc", "code:nightly:" + COMMIT, "cursor:stable:" + COMMIT,
                                  "codium:1.96.4.25017:" + COMMIT, "", "code:stable:" + COMMIT + ";rm",
                                  "codium:stable:" + COMMIT, "code:stable:" + COMMIT + ":https://x.org/${arch}",
                                  "codium:stable:" + COMMIT + ":http://x.org/${arch}",
                                  "codium:stable:" + COMMIT + ":https://x.org/a.tar.gz",
                                  "codium:stable:" + COMMIT + ":https://x.org/${arch};rm",
                                  "codium:stable:" + COMMIT + ":https://x.org/${version}-${arch}",
                                  "codium:stable:" + COMMIT + ":https://evil.org@x.org/${arch}",
                                  "codium:stable:" + COMMIT + ":https://x.org/${arch}?a=1",
                                  "codium:stable:" + COMMIT + ":https://x.org/" + "a" * 400 + "${arch}"])
def test_specs_not_as_rdev_writes_them_are_refused(text: str) -> None:
    with pytest.raises(InvalidValue):
        editor_servers.parse(text)


@pytest.mark.parametrize(("machine", "arch"), [("x86_64", "x64"), ("aarch64", "arm64"), ("armv7l", None)])
def test_architectures(machine: str, arch: str | None) -> None:
    assert editor_servers.arch(machine) == arch


def test_a_background_fetch_is_reused_unless_it_failed(home: Path, downloads: Downloads,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The cell's early fetch and serve's share one process; a fetch that failed (a network blip) is
    tried again by the next caller, as each serve used to."""
    spec = "code:stable:" + "6" * 40
    log = home / "editor-server.log"
    monkeypatch.setenv(editor_servers.BASE_VARIABLE, "http://127.0.0.1:9")
    failed = prefetch.in_background(spec, log)
    assert failed.wait(timeout=60) == 1 and "not fetched" in log.read_text()
    monkeypatch.setenv(editor_servers.BASE_VARIABLE, downloads.url)
    retried = prefetch.in_background(spec, log)
    assert retried is not failed
    assert prefetch.in_background(spec, log) is retried  # running or done: the same one
    assert retried.wait(timeout=60) == 0 and "is ready in ~/.vscode-server" in log.read_text()
    assert prefetch.in_background(spec, log) is retried
    assert sorted(downloads.requests) == [f"/commit:{'6' * 40}/cli-alpine-x64/stable",
                                          f"/commit:{'6' * 40}/server-linux-x64/stable"]

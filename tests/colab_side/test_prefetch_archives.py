"""What a mirror serves is someone else's bytes (a hostile mirror, or one tampered with on the way): an editor-server
archive is unpacked only whole and inside its folder, of a server's size, and from https unless the user says
otherwise. A refusal is one line naming the entry, exit 1 (colab_side.prefetch.main), and nothing written."""

from __future__ import annotations

import functools
import os
import tarfile
from pathlib import Path

import pytest

from bootstrap import editor_servers
from bootstrap.validate import InvalidValue
from colab_side import prefetch
from tests.stand_ins.downloads import Downloads, crafted

COMMIT = "e" * 40
SPEC = f"code:stable:{COMMIT}"
SERVER = f".vscode-server/cli/servers/Stable-{COMMIT}/server"
TOP = "vscode-server-linux-x64"
# The server unpacks into ~/.vscode-server/cli/servers/.rdev-fetch-XXX/tree: five folders below the home.
CHAIN = [("x", "symlink", "."), ("x/l1", "symlink", ".."), ("l1/l2", "symlink", ".."),
         ("l1/l2/l3", "symlink", ".."), ("l1/l2/l3/l4", "symlink", ".."), ("l1/l2/l3/l4/l5", "symlink", ".."),
         ("l1/l2/l3/l4/l5/.bashrc", "file", b"echo owned\n")]


@pytest.fixture(params=["data filter", "own check only"])
def tarfile_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """tarfile as this Python has it (with the data filter), and as Pythons before 3.12 and its backports have it."""
    if request.param == "own check only":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    return request.param


def serve(downloads: Downloads, monkeypatch: pytest.MonkeyPatch, archive: bytes) -> None:
    """The mirror answers `archive` for the server; the CLI's archive stays the real one's."""
    real = downloads.answer
    monkeypatch.setattr(downloads, "answer", lambda path: archive if "/server-linux-" in path else real(path))


def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        *argv: str) -> tuple[int, list[str]]:
    """`python -m colab_side.prefetch ARGV` with the home at tmp_path/home: its exit status and every line it said."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    status = prefetch.main(list(argv))
    out, err = capsys.readouterr()
    return status, out.splitlines() + err.splitlines()


def files_under(folder: Path) -> list[str]:
    """Every file and link under `folder` (links not followed), relative to it."""
    return sorted(os.path.relpath(os.path.join(where, name), folder) for where, dirs, files in os.walk(folder)
                  for name in files + [d for d in dirs if os.path.islink(os.path.join(where, d))])


def refused(line: str, entry: str) -> bool:
    return line.startswith(f"Editor server: not fetched (the archive's entry {entry!r} ") and \
        line.endswith("); the editor downloads it itself on first connect.")


def test_a_chain_of_relative_links_cannot_write_outside_the_server(tmp_path: Path, downloads: Downloads,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 tarfile_kind: str) -> None:
    """Each link alone stays inside by its name (x/l1 -> .. is x's folder); through the links before it, the last one
    is the home, and the file after it would be ~/.bashrc."""
    serve(downloads, monkeypatch, crafted(*CHAIN))
    status, said = run(tmp_path, monkeypatch, capsys, SPEC, downloads.url)
    assert status == 1 and len(said) == 1 and refused(said[0], "x/l1"), said
    assert "link that leads out of its folder" in said[0]
    assert files_under(tmp_path) == []  # not ~/.bashrc, not a link, nothing half-installed


@pytest.mark.parametrize(("entries", "entry", "why"), [
    ([(f"{TOP}/bin/code-server", "file", b"x"), ("{tmp}/escaped", "file", b"x")], "{tmp}/escaped",
     "has an absolute name"),
    ([(f"{TOP}/../../escaped", "file", b"x")], f"{TOP}/../../escaped", "climbs out of its folder with .."),
    ([(f"{TOP}/home", "symlink", "{tmp}/home"), (f"{TOP}/home/.bashrc", "file", b"x")], f"{TOP}/home",
     "is a link to an absolute path"),
    ([(f"{TOP}/up", "symlink", "../../../../../.."), (f"{TOP}/up/escaped", "file", b"x")], f"{TOP}/up",
     "is a link that leads out of its folder"),
    ([(f"{TOP}/secret", "hardlink", "{tmp}/secret"), (f"{TOP}/secret", "file", b"overwritten")], f"{TOP}/secret",
     "is a link to an absolute path"),
    ([(f"{TOP}/secret", "hardlink", "../../../../../../secret"), (f"{TOP}/secret", "file", b"overwritten")],
     f"{TOP}/secret", "is a link that leads out of its folder"),
    # In its folder the link is the server's folder; copied by link() to the top, its target is read from there.
    ([(f"{TOP}/a/up", "symlink", "../../../../../../.."), (f"{TOP}/a/b/", "dir", ""),
      (f"{TOP}/a/b/up", "symlink", ".."), (f"{TOP}/moved", "hardlink", f"{TOP}/a/b/up")],
     f"{TOP}/a/up", "is a link that leads out"),
    ([(f"{TOP}/a/b/", "dir", ""), (f"{TOP}/a/b/up", "symlink", "../.."), (f"{TOP}/moved", "hardlink", f"{TOP}/a/b/up"),
      (f"{TOP}/moved/.bashrc", "file", b"x")], f"{TOP}/moved", "is a hard link to a symbolic link"),
    ([(f"{TOP}/a/up", "symlink", "q/../../.."), (f"{TOP}/a/q", "symlink", "../.."), (f"{TOP}/bin/code-server", "file", b"x")],
     f"{TOP}/a/up", "through the links after it"),
    ([(f"{TOP}/bin/", "dir", ""), (f"{TOP}/bin/node", "symlink", "."), (f"{TOP}/bin/node", "file", b"x")],
     f"{TOP}/bin/node", "lands on a link an entry before it made"),
    ([(f"{TOP}/a/", "dir", ""), (f"{TOP}/a/up", "symlink", "." + "/." * 2100 + "/.."),
      (f"{TOP}/a/up/.bashrc", "file", b"x")], f"{TOP}/a/up", "has a name or a target of over 1024 characters"),
    ([(f"{TOP}/bin/code-server", "file", b"x"), (f"{TOP}/tty", "chardev", "")], f"{TOP}/tty", "is a device"),
    ([(f"{TOP}/bin/code-server", "file", b"x"), (f"{TOP}/pipe", "fifo", "")], f"{TOP}/pipe", "a FIFO"),
], ids=["absolute name", "dot-dot", "absolute symlink", "symlink out", "hard link to an absolute path",
        "hard link out", "link out", "hard link to a link", "link led astray", "written through a link", "long target", "device", "fifo"])
def test_an_entry_that_would_write_outside_refuses_the_whole_archive(
        tmp_path: Path, downloads: Downloads, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tarfile_kind: str, entries: list[tuple[str, str, str | bytes]], entry: str, why: str) -> None:
    secret = tmp_path / "secret"
    secret.write_text("mine")

    def placed(text: str | bytes) -> str | bytes:
        return text.replace("{tmp}", str(tmp_path)) if isinstance(text, str) else text

    serve(downloads, monkeypatch, crafted(*[(placed(name), kind, placed(what)) for name, kind, what in entries]))
    status, said = run(tmp_path, monkeypatch, capsys, SPEC, downloads.url)
    assert status == 1 and len(said) == 1 and refused(said[0], str(placed(entry))), said
    assert why in said[0]
    assert files_under(tmp_path) == ["secret"]  # the good entries before the bad one were not written either
    assert secret.read_text() == "mine" and secret.stat().st_nlink == 1


@functools.lru_cache(maxsize=1)
def two_gigabytes() -> bytes:
    """A server whose one member unpacks to 2 GB of zeros (10 MB packed: well under the download cap)."""
    return crafted((f"{TOP}/bin/code-server", "file", b"x"), (f"{TOP}/node", "zeros", 2**31))


def test_an_archive_that_unpacks_past_the_cap_is_refused_before_it_is_written(
        tmp_path: Path, downloads: Downloads, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tarfile_kind: str) -> None:
    assert len(two_gigabytes()) < editor_servers.MAX_DOWNLOAD
    serve(downloads, monkeypatch, two_gigabytes())
    status, said = run(tmp_path, monkeypatch, capsys, SPEC, downloads.url)
    assert status == 1 and len(said) == 1 and refused(said[0], f"{TOP}/node"), said
    assert "takes the archive past 1024 MB unpacked" in said[0]
    assert files_under(tmp_path) == []


def test_a_server_with_links_inside_it_is_installed_as_the_data_filter_leaves_it(
        tmp_path: Path, downloads: Downloads, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tarfile_kind: str) -> None:
    """Links that stay inside (node_modules/.bin has them) are what a real server holds, however many hops."""
    serve(downloads, monkeypatch, crafted(
        (f"{TOP}/lib/", "dir", ""), (f"{TOP}/lib/real", "file", b"#!/bin/sh\n"), (f"{TOP}/bin/here", "symlink", "."),
        (f"{TOP}/bin/alias", "symlink", "here/../lib/real"), (f"{TOP}/bin/code-server", "file", b"#!/bin/sh\n"),
        (f"{TOP}/copy", "hardlink", f"{TOP}/bin/here/code-server")))
    status, said = run(tmp_path, monkeypatch, capsys, SPEC, downloads.url)
    assert status == 0 and said == [f"Editor server: code {COMMIT[:10]} is ready in ~/.vscode-server."]
    server = tmp_path / "home" / SERVER
    assert os.readlink(server / "bin" / "alias") == "here/../lib/real"
    assert (server / "copy").samefile(server / "bin" / "code-server")
    assert (server / "bin" / "alias").read_bytes() == b"#!/bin/sh\n"
    # Group-writable in the archive; as the data filter leaves them (and the own check where there is none), not.
    assert (server / "lib").stat().st_mode & 0o777 == 0o755 and (server / "lib" / "real").stat().st_mode & 0o777 == 0o644


def test_a_download_past_the_cap_is_one_line_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(editor_servers, "MAX_DOWNLOAD", 50_000)
    downloads = Downloads(padding=100_000)  # its Content-Length says more than the cap: not a byte is read
    try:
        status, said = run(tmp_path, monkeypatch, capsys, SPEC, downloads.url)
    finally:
        downloads.close()
    assert status == 1 and len(said) == 1 and said[0].startswith("Editor server: not fetched (the download is over ")
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("accepted", [None, "variable", "flag"])
def test_a_plain_http_mirror_is_taken_only_on_loopback_or_when_the_user_says_so(
        tmp_path: Path, downloads: Downloads, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        accepted: str | None) -> None:
    # 0.0.0.0 reaches this machine's stand-in, yet is no loopback address: it stands for a mirror on the network.
    mirror = downloads.url.replace("127.0.0.1", "0.0.0.0")
    if accepted == "variable":
        monkeypatch.setenv(editor_servers.INSECURE_VARIABLE, "1")
    status, said = run(tmp_path, monkeypatch, capsys, *(["--insecure-mirror"] if accepted == "flag" else []), SPEC,
                       mirror)
    if accepted:
        assert status == 0 and said == [f"Editor server: code {COMMIT[:10]} is ready in ~/.vscode-server."]
        return
    assert status == 1 and said == [(
        f"Editor server: not fetched ({mirror!r} is plain http, which anyone on the way can alter: serve the mirror "
        "over https, or set RDEV_EDITOR_DOWNLOADS_INSECURE=1 to accept plain http); the editor downloads it itself "
        "on first connect.")]
    assert downloads.requests == [] and files_under(tmp_path) == []


@pytest.mark.parametrize(("url", "insecure", "taken"), [
    ("https://mirror.lab", False, True), ("https://mirror.lab:8443/vscode/", False, True),
    ("http://127.0.0.1:8080", False, True), ("http://127.3.4.5/x", False, True), ("http://[::1]:8080", False, True),
    ("http://localhost:8080/x", False, True),
    ("http://mirror.lab", False, False), ("http://10.0.0.5:8080", False, False), ("http://0.0.0.0:80", False, False),
    ("http://localhost.evil.org", False, False), ("http://127.0.0.1.evil.org", False, False),
    ("http://mirror.lab", True, True), ("http://10.0.0.5:8080", True, True),
    ("ftp://mirror.lab", True, False), ("file:///srv/mirror", True, False), ("mirror.lab", True, False),
    ("https://", True, False), ("https://mirror.lab:port", True, False), ("https://[::1", True, False),
])
def test_which_mirrors_are_taken(url: str, insecure: bool, taken: bool) -> None:
    if taken:
        assert editor_servers.check_source(url, insecure) == url
    else:
        with pytest.raises(InvalidValue, match=r"plain http|no download address"):
            editor_servers.check_source(url, insecure)

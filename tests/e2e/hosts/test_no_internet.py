"""A host that cannot reach the editors' download server (a compute node, a school server without internet): the
laptop downloads the editor's server, once, into its cache, and sends it over SSH to where Remote-SSH looks,
unpacked the same way. The hosts are far hosts of the zoo, in network namespaces of their own, reached through
portals; the download stand-in listens on this machine's loopback, which no namespace reaches."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import editor_calls, editor_fetching
from tests.stand_ins.downloads import Downloads
from tests.stand_ins.login_host import PASSWORD, PasswordHost, login_host
from tests.stand_ins.zoo import Zoo, zoo

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and test users need root")

COMMIT = "3" * 40
SENT = (f"Editor server: code {COMMIT[:10]} is ready in ~/.vscode-server, sent from this laptop ({{name}} cannot reach "
        "the download server).")


def connect(rdev, hosts: Zoo, host: PasswordHost, name: str) -> str:
    port = hosts.portal(host.netns, "127.0.0.1", 22) if host.netns else host.port
    assert rdev("add", name, "--host", "127.0.0.1", "--port", str(port), "--user", host.user).returncode == 0
    result = rdev("connect", name, "--password-stdin", input=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    return result.stdout


def installed(host: PasswordHost) -> Path:
    return host.home / ".vscode-server" / "cli" / "servers" / f"Stable-{COMMIT}" / "server" / "bin" / "code-server"


def test_the_laptop_sends_the_editor_server_once_and_keeps_it_for_the_next_host(
        home: Path, rdev, downloads: Downloads, monkeypatch: pytest.MonkeyPatch) -> None:
    record = editor_fetching(home, monkeypatch, COMMIT, downloads.url)
    with zoo() as hosts:
        first_ns, second_ns = hosts.namespace("offline1"), hosts.namespace("offline2")
        with login_host(home, netns=first_ns, folder="first") as first, \
                login_host(home, netns=second_ns, folder="second") as second:
            said = connect(rdev, hosts, first, "lab").splitlines()
            fetched = said.index(SENT.format(name="lab"))
            assert fetched < next(i for i, line in enumerate(said) if line.startswith("Opened: "))
            assert installed(first).exists() and installed(first).owner() == first.user
            assert (first.home / ".vscode-server" / f"code-{COMMIT}").exists()
            assert sorted(downloads.requests) == [f"/commit:{COMMIT}/cli-alpine-x64/stable",
                                                  f"/commit:{COMMIT}/server-linux-x64/stable"]
            assert not list((first.home / ".vscode-server").rglob(".rdev-fetch-*"))  # nothing half-done left
            assert editor_calls(record)[-1]["argv"][:2] == ["--remote", "ssh-remote+lab"]

            assert SENT.format(name="gpu2") in connect(rdev, hosts, second, "gpu2")
            assert installed(second).exists()
            assert len(downloads.requests) == 2  # the laptop's cache served the second host
            cache = home.parent / "cache" / "rdev" / "editor-servers"
            assert len(list(cache.glob("*.tar.gz"))) == 2 and not list(cache.glob(".download-*"))


def test_when_the_laptop_cannot_download_either_it_is_one_line(home: Path, rdev,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    editor_fetching(home, monkeypatch, COMMIT, "http://127.0.0.1:9")
    with zoo() as hosts:
        ns = hosts.namespace("offline")
        with login_host(home, netns=ns, folder="offline") as host:
            said = [line for line in connect(rdev, hosts, host, "lab").splitlines() if line.startswith("Editor server")]
            assert len(said) == 1 and said[0].startswith("Editor server: not fetched (neither lab nor this laptop "
                                                         "could download it: ")
            assert not installed(host).exists()


def test_jupyter_on_a_host_whose_pip_reaches_no_index_says_how_to_bring_the_packages(home: Path, rdev) -> None:
    with zoo() as hosts:
        ns = hosts.namespace("offline")
        # No pip configuration of this machine's (its local indexes): the host has only the network, and no route.
        with login_host(home, netns=ns, folder="offline", setenv={"PIP_CONFIG_FILE": "/dev/null"}) as host:
            port = hosts.portal(ns, "127.0.0.1", 22)
            assert rdev("add", "lab", "--host", "127.0.0.1", "--port", str(port), "--user", host.user).returncode == 0
            assert rdev("connect", "lab", "--password-stdin", "--no-open", input=PASSWORD + "\n").returncode == 0
            result = rdev("jupyter", "lab")
            assert result.returncode == 1
            assert result.stderr.startswith("rdev: lab: pip on this host cannot reach a package index to install "
                                            "jupyter_server ipykernel"), result.stderr
            assert "PIP_INDEX_URL" in result.stderr and "pip download" in result.stderr
            assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr

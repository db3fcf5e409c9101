"""The bridge across a jump host that refuses TCP forwarding: the remote command each login shell runs, the
byte relay under the oldest Python a login node has, nc where there is no Python, and the ProxyCommand line as
OpenSSH reads it."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from client_side.local import paths
from client_side.local.registry import HostEntry
from client_side.ssh import bridge, config as sshconfig

SHELLS = ["sh", "bash", "zsh", "fish", "tcsh"]
PYTHON36 = Path(os.environ.get("PYENV_ROOT", "/root/.pyenv")) / "versions" / "3.6.15" / "bin" / "python3.6"


def shouting_server() -> tuple[int, threading.Thread]:
    """A one-connection server on loopback that reads to the end, answers in capitals and closes."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with listener, listener.accept()[0] as conn:
            received = b""
            while chunk := conn.recv(65536):
                received += chunk
            conn.sendall(received.upper())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


def run_as_login_shell(shell: str, port: int, data: bytes, path: str) -> subprocess.CompletedProcess:
    """What sshd does with the ProxyCommand's remote command: `SHELL -c COMMAND`."""
    found = shutil.which(shell)
    if found is None:
        pytest.skip(f"no {shell} here (scripts/setup.sh installs it)")
    return subprocess.run([found, "-c", bridge.remote_command("127.0.0.1", str(port))], input=data,
                          capture_output=True, timeout=60, check=False, env={"PATH": path, "HOME": "/nonexistent"})


def bin_with(tmp_path: Path, **links: str) -> str:
    """A PATH of one folder holding the named links (python3 -> ..., nc -> ...) and sh's basics."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, target in {"sh": "/bin/sh", **links}.items():
        (folder / name).symlink_to(target)
    return str(folder)


def test_the_quoted_part_holds_nothing_a_shell_reads_differently() -> None:
    command = bridge.remote_command("%h", "%p")
    assert command.startswith("sh -c '") and command.endswith("'")
    inside = command[len("sh -c '"):-1]
    assert not set(inside) & set("'\\!"), "csh expands !, fish and sh treat ' and \\ each their own way"
    assert re.search(r"[A-Za-z0-9+/=]{200,}", inside), "the bridge's code travels as one base64 word"


@pytest.mark.parametrize("shell", SHELLS)
def test_every_login_shell_runs_the_bridge(shell: str, tmp_path: Path) -> None:
    port, server = shouting_server()
    path = bin_with(tmp_path, python3=sys.executable)
    result = run_as_login_shell(shell, port, b"hello through the bridge\n", path)
    server.join(10)
    assert result.stdout == b"HELLO THROUGH THE BRIDGE\n", result.stderr
    assert result.returncode == 0


@pytest.mark.skipif(not PYTHON36.exists(), reason="pyenv's Python 3.6 (RHEL 8's python3) is not on this machine")
def test_the_bridge_runs_on_python_3_6(tmp_path: Path) -> None:
    port, server = shouting_server()
    path = bin_with(tmp_path, python3=str(PYTHON36))
    version = subprocess.run([str(PYTHON36), "--version"], capture_output=True, text=True, check=False)
    assert version.stdout.startswith("Python 3.6") or version.stderr.startswith("Python 3.6")
    result = run_as_login_shell("sh", port, b"old python\n" * 10000, path)
    server.join(10)
    assert result.stdout == b"OLD PYTHON\n" * 10000, result.stderr


def test_without_python_nc_bridges(tmp_path: Path) -> None:
    nc = shutil.which("nc")
    if nc is None:
        pytest.skip("no nc here (scripts/setup.sh installs it)")
    port, server = shouting_server()
    result = run_as_login_shell("sh", port, b"no python here\n", bin_with(tmp_path, nc=nc, grep="/usr/bin/grep"))
    server.join(10)
    assert result.stdout == b"NO PYTHON HERE\n", result.stderr


def test_with_neither_it_says_so(tmp_path: Path) -> None:
    result = run_as_login_shell("sh", 9, b"", bin_with(tmp_path))
    assert result.returncode == 127
    assert b"neither python3 nor nc" in result.stderr


def test_a_closed_port_is_one_line_from_the_bridge(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    result = run_as_login_shell("sh", port, b"", bin_with(tmp_path, python3=sys.executable))
    assert result.returncode == 1
    assert result.stderr.decode().startswith(f"rdev bridge: cannot reach 127.0.0.1 port {port} from this host")
    assert b"Traceback" not in result.stderr


def test_the_proxycommand_is_what_ssh_reads(home: Path) -> None:
    entry = HostEntry(name="inner", host="10.1.2.3", port=2222, user="u", jump="me@gw.example.edu:2200", bridge=True)
    proxy = sshconfig.host_options(entry)["ProxyCommand"]
    assert "ProxyJump" not in sshconfig.host_options(entry)
    paths.rdev_ssh_config().parent.mkdir(parents=True, exist_ok=True)
    paths.rdev_ssh_config().write_text(sshconfig.HEADER + "\n" + "\n".join(
        ["Host inner", *(f"  {key} {value}" for key, value in sshconfig.host_options(entry).items())]) + "\n")
    paths.user_ssh_config().write_text(sshconfig.include_line() + "\n")
    seen = subprocess.run(["ssh", "-F", str(paths.user_ssh_config()), "-G", "inner"], capture_output=True, text=True,
                          check=True).stdout
    line = next(line for line in seen.splitlines() if line.startswith("proxycommand "))
    expected = proxy.replace("%h", "10.1.2.3").replace("%p", "2222")
    assert line == "proxycommand " + proxy or line == "proxycommand " + expected
    assert f"-F {paths.user_ssh_config()} -T -o BatchMode=yes -o ClearAllForwardings=yes ssh://me@gw.example.edu:2200 " \
           in proxy

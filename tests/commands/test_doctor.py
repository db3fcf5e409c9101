"""`rdev doctor`: a temporary HOME with known problems planted reports each one, with its fix, and
exits 1; a laptop set up by a real connect reports none."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from tests.conftest import editor_standin


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def findings(result) -> dict[str, dict]:
    return {f["check"]: f for f in json.loads(result.stdout)}


def bare_path_with(folder: Path) -> dict[str, str]:
    # Only the stand-in editors and the system's own tools: no real editor or cloudflared from this machine.
    return {**os.environ, "PATH": f"{folder}:/usr/bin:/bin"}


def test_planted_problems_are_each_reported_with_a_fix(home: Path, rdev, monkeypatch: pytest.MonkeyPatch) -> None:
    code, _ = editor_standin(home, monkeypatch, "code", extensions=("ms-python.python",))
    assert rdev("key").returncode == 0
    assert rdev("add", "gpu1", "--host", "127.0.0.1", "--port", str(closed_port())).returncode == 0
    ssh = home / ".ssh"
    config = ssh / "config"
    # A Host block above rdev's Include changes what rdev's options mean.
    config.write_text("Host *\n    User someone\n\n" + config.read_text() if config.exists() else
                      "Host *\n    User someone\n")
    config.chmod(0o664)
    (ssh / "rdev" / "id_ed25519").chmod(0o644)
    env = {**bare_path_with(code.parent), "RDEV_CLOUDFLARED": "/nonexistent/cloudflared"}

    result = rdev("doctor", "--check", "--json", env=env)
    assert result.returncode == 1, result.stderr
    found = findings(result)
    problems = {check for check, f in found.items() if f["status"] == "problem"}
    assert problems == {str(config), str(ssh / "rdev" / "id_ed25519"), "Include line", "cloudflared", "keyring",
                        "VS Code", "host gpu1"}
    assert found[str(config)]["fix"] == f"chmod 600 {config}"
    assert found[str(ssh / "rdev" / "id_ed25519")]["fix"] == f"chmod 600 {ssh / 'rdev' / 'id_ed25519'}"
    assert found["VS Code"]["fix"] == f"{code} --install-extension ms-vscode-remote.remote-ssh"
    assert "not first" in found["Include line"]["detail"]
    assert "/nonexistent/cloudflared" in found["cloudflared"]["detail"]
    assert "Secret Service" in found["keyring"]["fix"]
    assert "gpu1" in found["host gpu1"]["fix"]

    text = rdev("doctor", "--check", env=env)
    assert text.returncode == 1
    lines = text.stdout.splitlines()
    assert lines[-1] == "7 problems found."
    assert sum(line.startswith("PROBLEM") for line in lines) == 7
    assert all(" Fix: " in line for line in lines if line.startswith("PROBLEM"))
    assert "Traceback" not in text.stderr


def test_missing_key_and_include_with_a_host_registered(home: Path, rdev, monkeypatch: pytest.MonkeyPatch) -> None:
    code, _ = editor_standin(home, monkeypatch, "code")
    assert rdev("add", "gpu1", "--host", "127.0.0.1").returncode == 0
    (home / ".ssh" / "config").unlink()
    found = findings(rdev("doctor", "--json", env=bare_path_with(code.parent)))
    assert found["rdev's key"]["status"] == "problem" and found["rdev's key"]["fix"].startswith("run 'rdev key'")
    assert found["Include line"]["status"] == "problem"
    assert found["VS Code"]["status"] == "ok"


def test_no_editor_and_a_bad_rdev_editor(home: Path, rdev, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    found = findings(rdev("doctor", "--json", env=bare_path_with(empty)))
    assert found["editor"]["status"] == "problem" and "install VS Code" in found["editor"]["fix"]
    found = findings(rdev("doctor", "--json", env={**bare_path_with(empty), "RDEV_EDITOR": "/nowhere/code"}))
    assert found["editor"]["status"] == "problem" and "RDEV_EDITOR" in found["editor"]["fix"]


def test_a_laptop_after_a_real_connect_has_no_problems(home: Path, rdev, server, monkeypatch: pytest.MonkeyPatch) -> None:
    cursor, _ = editor_standin(home, monkeypatch, "cursor", extensions=("Anysphere.Remote-SSH",))
    assert rdev("connect", "box", "--ticket", server(), "--no-open").returncode == 0
    result = rdev("doctor", "--check", env=bare_path_with(cursor.parent))
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1] == "No problems found."
    assert any(line.startswith("ok") and "host box" in line and "answers" in line for line in result.stdout.splitlines())
    assert any(line.startswith("ok") and "Cursor" in line for line in result.stdout.splitlines())


def test_a_damaged_host_list_is_a_problem_not_a_traceback(home: Path, rdev) -> None:
    registry = home.parent / "cfg" / "rdev" / "hosts.toml"
    registry.parent.mkdir(parents=True)
    registry.write_text("[hosts\n")
    result = rdev("doctor")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert any(line.startswith("PROBLEM  hosts:") for line in result.stdout.splitlines())


def test_a_colab_cli_host_whose_cli_is_gone_is_a_problem(home: Path, rdev, tmp_path: Path) -> None:
    from client_side.local import store
    from client_side.local.registry import HostEntry

    colab = tmp_path / "colab"
    colab.write_text("#!/bin/sh\n")
    colab.chmod(0o755)
    store.put(HostEntry(name="colab", host="colab-runtime", port=22, user="root", tunnel="colab-cli",
                        colab_session="gpu", colab_endpoint="ep-1", colab=str(colab)))
    env = {**bare_path_with(tmp_path / "nothing"), "RDEV_COLAB": ""}
    assert findings(rdev("doctor", "--json", env=env))["colab CLI"] == {"check": "colab CLI", "status": "ok",
                                                                        "detail": str(colab), "fix": ""}
    colab.unlink()
    found = findings(rdev("doctor", "--json", env=env))["colab CLI"]
    assert found["status"] == "problem" and "pipx install google-colab-cli" in found["fix"]


def test_no_colab_line_without_a_colab_cli_host(home: Path, rdev) -> None:
    assert "colab CLI" not in findings(rdev("doctor", "--json"))

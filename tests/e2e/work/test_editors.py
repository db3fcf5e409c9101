"""End to end with each supported editor: a real sshd, `rdev connect`, a recording stand-in for the
editor's launcher found on PATH, its Remote-SSH settings in settings.json, then `rdev remove`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import json5
import pytest

from client_side.editors import jsonc
from client_side.editors.editor import BY_NAME
from tests.conftest import editor_calls, editor_standin

WORKDIR = "/srv/work dir"
NAMES = ["code", "code-insiders", "cursor", "codium", "windsurf"]
REMOTE = ["--remote", "ssh-remote+box", WORKDIR]


def installed(home: Path, monkeypatch: pytest.MonkeyPatch, *names: str) -> tuple[dict[str, str], Path]:
    """Stand-ins for `names`, each with its own Remote-SSH extension; the environment for rdev (PATH is
    /usr/bin:/bin, where ssh lives, and the stand-ins' folder) and the record of their calls."""
    extensions = tuple(ext for name in names for ext in BY_NAME[name].extensions[:1])
    record = Path()
    for name in names:
        _, record = editor_standin(home, monkeypatch, name, extensions)
    env = {**os.environ, "PATH": f"/usr/bin:/bin:{home.parent / 'bin'}"}
    return env, record


def settings(home: Path, name: str) -> Path:
    return home.parent / "cfg" / BY_NAME[name].config_folder / "User" / "settings.json"


def expected_calls(name: str) -> list[dict]:
    """What the launcher should see: the extension check (not for windsurf, which bundles it), then the window."""
    listing = [] if name == "windsurf" else [{"as": name, "argv": ["--list-extensions"]}]
    return listing + [{"as": name, "argv": REMOTE}]


@pytest.mark.parametrize("flag", [True, False], ids=["with-editor-flag", "found-on-path"])
@pytest.mark.parametrize("name", NAMES)
def test_each_editor_opens_the_remote_folder(home: Path, rdev, server, monkeypatch: pytest.MonkeyPatch,
                                             name: str, flag: bool) -> None:
    """The editor's launcher, found on PATH by name, gets exactly --remote ssh-remote+box WORKDIR."""
    env, record = installed(home, monkeypatch, name)
    ticket = server("--workdir", WORKDIR)
    result = rdev("connect", "box", "--ticket", ticket, *(["--editor", name] if flag else []), env=env)
    assert result.returncode == 0, result.stderr
    assert editor_calls(record) == expected_calls(name)
    assert "Opened: " in result.stdout and "ssh-remote+box" in result.stdout


@pytest.mark.parametrize("name", NAMES)
def test_connect_writes_remote_platform_in_that_editors_settings(home: Path, rdev, server,
                                                                monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """After connect, the editor's own settings.json (created by rdev) says box runs Linux.
    Fails today for the missing file: see test_jsonc::test_get_and_remove_on_empty_file."""
    env, _ = installed(home, monkeypatch, name)
    result = rdev("connect", "box", "--ticket", server("--workdir", WORKDIR), env=env)
    assert result.returncode == 0, result.stderr
    assert "not JSON rdev can edit" not in result.stdout + result.stderr
    path = settings(home, name)
    assert json5.loads(path.read_text())["remote.SSH.remotePlatform"] == {"box": "linux"}
    others = [n for n in NAMES if BY_NAME[n].config_folder != BY_NAME[name].config_folder]
    assert not any(settings(home, other).exists() for other in others)


def test_editor_choice_is_remembered_for_the_host(home: Path, rdev, server, monkeypatch: pytest.MonkeyPatch) -> None:
    """--editor cursor is kept for box: the next connect opens cursor, though code comes first on PATH."""
    env, record = installed(home, monkeypatch, "code", "cursor")
    ticket = server("--workdir", WORKDIR)
    first = rdev("connect", "box", "--ticket", ticket, "--editor", "cursor", env=env)
    assert first.returncode == 0, first.stderr
    assert [c["as"] for c in editor_calls(record) if c["argv"] == REMOTE] == ["cursor"]
    assert [h["editor"] for h in json.loads(rdev("list", "--json", env=env).stdout)] == ["cursor"]

    second = rdev("connect", "box", "--ticket", ticket, env=env)
    assert second.returncode == 0, second.stderr
    assert [c["as"] for c in editor_calls(record) if c["argv"] == REMOTE] == ["cursor", "cursor"]
    assert all(c["as"] == "cursor" for c in editor_calls(record))


def test_without_memory_the_first_installed_editor_is_opened(home: Path, rdev, server,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The control for the test above: with code and cursor on PATH and nothing remembered, code opens."""
    env, record = installed(home, monkeypatch, "cursor", "code")
    result = rdev("connect", "box", "--ticket", server("--workdir", WORKDIR), env=env)
    assert result.returncode == 0, result.stderr
    assert [c["as"] for c in editor_calls(record) if c["argv"] == REMOTE] == ["code"]


@pytest.mark.parametrize("name", ["code", "codium"])
def test_missing_extension_fails_without_a_window(home: Path, rdev, server, monkeypatch: pytest.MonkeyPatch,
                                                  name: str) -> None:
    """No Remote-SSH extension: exit 1, one message naming the extension and how to install it, no window."""
    _, record = editor_standin(home, monkeypatch, name, ("ms-python.python",))
    env = {**os.environ, "PATH": f"/usr/bin:/bin:{home.parent / 'bin'}"}
    result = rdev("connect", "box", "--ticket", server("--workdir", WORKDIR), "--editor", name, env=env)
    assert result.returncode == 1
    extension = BY_NAME[name].extensions[0]
    assert extension in result.stderr and "--install-extension" in result.stderr
    assert "Traceback" not in result.stderr
    assert editor_calls(record) == [{"as": name, "argv": ["--list-extensions"]}]


def test_remove_takes_the_host_out_of_a_created_settings_file(home: Path, rdev, server,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A settings.json rdev created for box no longer names box after `rdev remove box`.
    Fails today at the first assertion: the file is never created (see the bug above)."""
    env, _ = installed(home, monkeypatch, "codium")
    assert rdev("connect", "box", "--ticket", server(), "--no-open", env=env).returncode == 0
    path = settings(home, "codium")
    assert jsonc.get(path.read_text(), ("remote.SSH.remotePlatform", "box")) == "linux"
    result = rdev("remove", "box", env=env)
    assert result.returncode == 0, result.stderr
    assert "editor settings" in result.stdout
    assert jsonc.get(path.read_text(), ("remote.SSH.remotePlatform",)) is None


def test_remove_restores_the_bytes_of_an_existing_settings_file(home: Path, rdev, server,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """In a settings.json with the user's own settings and comments, connect adds box and remove gives
    back the very bytes; the backup holds them too."""
    original = '{\n    // my settings\n    "editor.fontSize": 14, // big\n    "files.autoSave": "off",\n}\n'
    path = settings(home, "code")
    path.parent.mkdir(parents=True)
    path.write_text(original)
    env, record = installed(home, monkeypatch, "code")
    result = rdev("connect", "box", "--ticket", server("--workdir", WORKDIR), env=env)
    assert result.returncode == 0, result.stderr
    assert editor_calls(record)[-1]["argv"] == REMOTE
    connected = path.read_text()
    assert jsonc.get(connected, ("remote.SSH.remotePlatform",)) == {"box": "linux"}
    assert jsonc.get(connected, ("editor.fontSize",)) == 14

    removed = rdev("remove", "box", env=env)
    assert removed.returncode == 0, removed.stderr
    assert "editor settings" in removed.stdout
    assert path.read_text() == original
    assert path.with_name("settings.json.rdev-backup").read_text() == original

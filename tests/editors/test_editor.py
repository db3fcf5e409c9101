"""Finding the editor, checking its Remote-SSH extension, and opening a remote folder in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from client_side.editors import editor
from client_side.editors.editor import BY_NAME, KINDS, Editor
from client_side.errors import BadInput, RdevError
from tests.conftest import editor_calls, editor_standin

EXTENSIONS = {"code": "ms-vscode-remote.remote-ssh", "code-insiders": "ms-vscode-remote.remote-ssh",
              "cursor": "anysphere.remote-ssh", "codium": "jeanp413.open-remote-ssh", "windsurf": ""}


def on_path(home: Path, monkeypatch: pytest.MonkeyPatch, *names: str) -> Path:
    """Stand-ins for `names` in one folder, and PATH set to that folder alone; returns the folder."""
    for name in names:
        editor_standin(home, monkeypatch, name)
    folder = home.parent / "bin"
    folder.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(folder))
    return folder


LINUX = {
    "code": ["/usr/bin/code", "/usr/share/code/bin/code", "/snap/bin/code"],
    "code-insiders": ["/usr/bin/code-insiders", "/usr/share/code-insiders/bin/code-insiders",
                      "/snap/bin/code-insiders"],
    "cursor": ["/usr/bin/cursor", "/usr/share/cursor/bin/cursor", "/opt/Cursor/resources/app/bin/cursor"],
    "codium": ["/usr/bin/codium", "/usr/share/codium/bin/codium", "/snap/bin/codium"],
    "windsurf": ["/usr/bin/windsurf", "/usr/share/windsurf/bin/windsurf"],
}
MAC = {
    "code": "Visual Studio Code.app/Contents/Resources/app/bin/code",
    "code-insiders": "Visual Studio Code - Insiders.app/Contents/Resources/app/bin/code-insiders",
    "cursor": "Cursor.app/Contents/Resources/app/bin/cursor",
    "codium": "VSCodium.app/Contents/Resources/app/bin/codium",
    "windsurf": "Windsurf.app/Contents/Resources/app/bin/windsurf",
}
WINDOWS = {
    "code": "Microsoft VS Code/bin/code.cmd",
    "code-insiders": "Microsoft VS Code Insiders/bin/code-insiders.cmd",
    "cursor": "cursor/resources/app/bin/cursor.cmd",
    "codium": "VSCodium/bin/codium.cmd",
    "windsurf": "Windsurf/bin/windsurf.cmd",
}


def test_kinds_are_the_five_supported_editors() -> None:
    assert [kind.name for kind in KINDS] == ["code", "code-insiders", "cursor", "codium", "windsurf"]


@pytest.mark.parametrize("name", LINUX)
def test_install_places_linux(name: str) -> None:
    assert editor.install_places(BY_NAME[name], "Linux", {}, Path("/home/u")) == [Path(p) for p in LINUX[name]]


@pytest.mark.parametrize("name", MAC)
def test_install_places_darwin(name: str) -> None:
    """The system /Applications first, then the user's ~/Applications."""
    home = Path("/Users/u")
    assert editor.install_places(BY_NAME[name], "Darwin", {}, home) == [
        Path("/Applications") / MAC[name], home / "Applications" / MAC[name]]


@pytest.mark.parametrize("name", WINDOWS)
def test_install_places_windows(name: str) -> None:
    """The per-user install under LOCALAPPDATA\\Programs first, then Program Files (both of them)."""
    env = {"LOCALAPPDATA": "C:/Users/u/AppData/Local", "ProgramFiles": "C:/Program Files",
           "ProgramFiles(x86)": "C:/Program Files (x86)"}
    assert editor.install_places(BY_NAME[name], "Windows", env, Path("C:/Users/u")) == [
        Path("C:/Users/u/AppData/Local/Programs") / WINDOWS[name], Path("C:/Program Files") / WINDOWS[name],
        Path("C:/Program Files (x86)") / WINDOWS[name]]


def test_install_places_windows_without_env() -> None:
    """No LOCALAPPDATA: only Program Files; nothing set: nowhere."""
    kind = BY_NAME["code"]
    assert editor.install_places(kind, "Windows", {"ProgramFiles": "D:/P"}, Path("C:/u")) == [
        Path("D:/P") / WINDOWS["code"]]
    assert editor.install_places(kind, "Windows", {}, Path("C:/u")) == []


def test_choose_given_beats_remembered_beats_env_beats_installed(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--editor, then the host's remembered editor, then RDEV_EDITOR, then the first installed."""
    folder = on_path(home, monkeypatch, "codium", "cursor", "windsurf", "code-insiders")
    monkeypatch.setenv("RDEV_EDITOR", "windsurf")
    assert editor.choose("codium", "cursor") == Editor(BY_NAME["codium"], str(folder / "codium"))
    assert editor.choose(None, "cursor") == Editor(BY_NAME["cursor"], str(folder / "cursor"))
    assert editor.choose(None, None) == Editor(BY_NAME["windsurf"], str(folder / "windsurf"))
    monkeypatch.delenv("RDEV_EDITOR")
    # The first installed in the order of KINDS, not of the folder.
    assert editor.choose(None, None) == Editor(BY_NAME["code-insiders"], str(folder / "code-insiders"))


def test_choose_nothing_installed(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No editor anywhere (this machine has none in the install places): None, no error."""
    if any(p.exists() for kind in KINDS for p in editor.install_places(kind)):
        pytest.skip("an editor is installed on this machine")
    on_path(home, monkeypatch)
    assert editor.choose(None, None) is None
    assert editor.installed() == []


@pytest.mark.parametrize("source", ["given", "env"])
def test_choose_name_not_installed_is_bad_input(home: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    """A known name that is not installed: exit 2, saying where the choice came from and how to fix it."""
    on_path(home, monkeypatch, "code")
    if source == "env":
        monkeypatch.setenv("RDEV_EDITOR", "cursor")
    with pytest.raises(BadInput) as caught:
        editor.choose("cursor" if source == "given" else None, None)
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert "Cursor" in message and "install it" in message and "--editor" in message
    assert {"given": "(--editor)", "env": "RDEV_EDITOR"}[source] in message


def test_choose_path_not_executable_is_bad_input(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file without the execute bit, or no such file: exit 2, naming the accepted values."""
    on_path(home, monkeypatch)
    plain = home / "code"
    plain.write_text("#!/bin/sh\n")
    plain.chmod(0o644)
    for value in (str(plain), str(home / "nothing-here"), "no-such-editor"):
        with pytest.raises(BadInput) as caught:
            editor.choose(value)
        assert caught.value.exit_code == 2
        message = str(caught.value)
        assert repr(value) in message and "not an executable" in message and "full path" in message
        assert editor.NAMES in message


def test_path_file_name_picks_the_fork(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A path is driven as the editor its file is named after; an unknown name like VS Code."""
    on_path(home, monkeypatch)
    codium, _ = editor_standin(home, monkeypatch, "codium")
    mine, _ = editor_standin(home, monkeypatch, "myeditor")
    assert editor.choose(str(codium)) == Editor(BY_NAME["codium"], str(codium))
    assert editor.choose(str(mine)) == Editor(BY_NAME["code"], str(mine))
    # A bare command on PATH that is not one of the five names is found and made absolute.
    assert editor.choose("myeditor") == Editor(BY_NAME["code"], str(mine))


def test_relative_path_is_made_absolute(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """./bin/cursor from the folder above becomes an absolute path of the Cursor kind."""
    on_path(home, monkeypatch)
    cursor, _ = editor_standin(home, monkeypatch, "cursor")
    monkeypatch.chdir(home.parent)
    assert editor.choose("./bin/cursor") == Editor(BY_NAME["cursor"], str(cursor))


def test_remembered_value(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A name is remembered as it is, a command or relative path as an absolute path."""
    on_path(home, monkeypatch)
    mine, _ = editor_standin(home, monkeypatch, "myeditor")
    assert editor.remembered_value(None) is None
    assert editor.remembered_value("cursor") == "cursor"
    assert editor.remembered_value("myeditor") == str(mine)
    monkeypatch.chdir(home.parent)
    assert editor.remembered_value("./bin/myeditor") == str(mine)
    assert editor.remembered_value("/no/such/editor") == "/no/such/editor"


@pytest.mark.parametrize("name", ["code", "code-insiders", "cursor", "codium"])
def test_missing_extension_none_when_installed(home: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Installed under any case, the extension is found."""
    script, record = editor_standin(home, monkeypatch, name, ("other.ext", EXTENSIONS[name].upper()))
    assert editor.missing_extension(Editor(BY_NAME[name], str(script))) is None
    assert [c["argv"] for c in editor_calls(record)] == [["--list-extensions"]]


def test_missing_extension_accepts_either_cursor_extension(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cursor's older open-remote-ssh fork also counts."""
    script, _ = editor_standin(home, monkeypatch, "cursor", ("anysphere.open-remote-ssh",))
    assert editor.missing_extension(Editor(BY_NAME["cursor"], str(script))) is None


@pytest.mark.parametrize("name", ["code", "code-insiders", "cursor", "codium"])
def test_missing_extension_names_the_first_id(home: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Not installed: the kind's first extension id, the one to install."""
    script, _ = editor_standin(home, monkeypatch, name, ("ms-python.python", "jeanp413.open-remote-ssh-not"))
    assert editor.missing_extension(Editor(BY_NAME[name], str(script))) == BY_NAME[name].extensions[0]
    assert BY_NAME[name].extensions[0] == EXTENSIONS[name]


def test_missing_extension_windsurf_bundles_it(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Windsurf's own SSH extension is bundled: no question asked at all."""
    script, record = editor_standin(home, monkeypatch, "windsurf", ())
    assert editor.missing_extension(Editor(BY_NAME["windsurf"], str(script))) is None
    assert editor_calls(record) == []


def test_missing_extension_none_when_launcher_fails(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A launcher that exits non-zero, or does not run, cannot say: None, and rdev goes on."""
    failing = home / "failing-code"
    failing.write_text("#!/bin/sh\necho nothing >&2\nexit 3\n")
    failing.chmod(0o755)
    assert editor.missing_extension(Editor(BY_NAME["code"], str(failing))) is None
    assert editor.missing_extension(Editor(BY_NAME["code"], str(home / "gone"))) is None


def test_open_folder_runs_the_remote_command(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the extension, the window is opened with --remote ssh-remote+NAME FOLDER."""
    script, record = editor_standin(home, monkeypatch, "codium", ("jeanp413.open-remote-ssh",))
    line = editor.open_folder("box", "/srv/my project", Editor(BY_NAME["codium"], str(script)))
    assert line == f"Opened: {script} --remote ssh-remote+box '/srv/my project'"
    assert [c["argv"] for c in editor_calls(record)] == [
        ["--list-extensions"], ["--remote", "ssh-remote+box", "/srv/my project"]]


def test_open_folder_without_extension_opens_no_window(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No Remote-SSH extension: RdevError (exit 1) with the install command, and no window."""
    script, record = editor_standin(home, monkeypatch, "cursor", ("ms-vscode-remote.remote-ssh",))
    with pytest.raises(RdevError) as caught:
        editor.open_folder("box", "/work", Editor(BY_NAME["cursor"], str(script)))
    message = str(caught.value)
    assert caught.value.exit_code == 1
    assert f"'{script} --install-extension anysphere.remote-ssh'" in message
    assert f"{script} --remote ssh-remote+box /work" in message
    assert [c["argv"] for c in editor_calls(record)] == [["--list-extensions"]]


def test_open_folder_editor_failing_is_rdev_error(home: Path) -> None:
    """A window call that exits non-zero is reported with the command to run by hand."""
    failing = home / "windsurf"
    failing.write_text("#!/bin/sh\nexit 4\n")
    failing.chmod(0o755)
    with pytest.raises(RdevError, match="exited with code 4.*--remote ssh-remote\\+box /w"):
        editor.open_folder("box", "/w", Editor(BY_NAME["windsurf"], str(failing)))


def test_open_folder_without_editor_prints_command() -> None:
    """No editor: a line with the command to run, nothing raised."""
    line = editor.open_folder("box", "/srv/x y", None)
    assert line.endswith("code --remote ssh-remote+box '/srv/x y'")
    assert editor.NAMES in line


def test_a_remembered_editor_that_is_gone_is_passed_over(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cursor, _ = editor_standin(home, monkeypatch, "cursor")
    monkeypatch.setenv("PATH", f"{cursor.parent}:/usr/bin:/bin")
    for gone in ("/gone/code", "windsurf"):  # a path removed, an editor uninstalled
        chosen = editor.choose(None, gone)
        assert chosen is not None and chosen.kind.name == "cursor"

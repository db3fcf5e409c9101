"""The Remote-SSH settings rdev keeps in editors' settings.json: added, taken out, and the user's bytes kept."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import json5
import pytest

from client_side.editors import jsonc, settings as editor_settings
from client_side.editors.editor import BY_NAME, KINDS
from client_side.local import paths

CODE, CURSOR = BY_NAME["code"], BY_NAME["cursor"]
USER = '{\n    "editor.fontSize": 14\n}\n'
PLATFORM_BLOCK = '    "remote.SSH.remotePlatform": {\n        "box": "linux"\n    },\n'


def settings(home: Path, folder: str = "Code") -> Path:
    """The settings file of the editor with this config folder, under the test's XDG_CONFIG_HOME."""
    return home.parent / "cfg" / folder / "User" / "settings.json"


def existing(home: Path, text: str, folder: str = "Code", mode: int = 0o600) -> Path:
    path = settings(home, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())
    path.chmod(mode)
    return path


def value(path: Path) -> dict:
    return json5.loads(path.read_text())


class Said(list):
    """Collects what rdev says."""

    def __call__(self, line: str) -> None:
        self.append(line)


def test_add_creates_missing_files_private(home: Path) -> None:
    """Each given editor's settings.json is created (folder too), mode 0600, with our host only.
    Fails today: jsonc.get raises Unreadable on the empty text of a missing file (see test_jsonc)."""
    said = Said()
    editor_settings.add("box", "direct", [CODE, CURSOR], said)
    assert said == []
    for folder in ("Code", "Cursor"):
        path = settings(home, folder)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert value(path) == {"remote.SSH.remotePlatform": {"box": "linux"}}
    assert not settings(home, "VSCodium").exists()


@pytest.mark.parametrize("tunnel, timeout", [("direct", None), ("cloudflared", 60), ("ngrok", 60)])
def test_direct_host_gets_platform_only_tunnel_host_also_timeout(home: Path, tunnel: str, timeout: int | None) -> None:
    """Only tunnel hosts need the longer connect timeout."""
    path = existing(home, USER)
    editor_settings.add("box", tunnel, [CODE], Said())
    text = path.read_text()
    expected = '{\n' + ('    "remote.SSH.connectTimeout": 60,\n' if timeout else '') + PLATFORM_BLOCK \
        + '    "editor.fontSize": 14\n}\n'
    assert text == expected
    assert jsonc.get(text, ("remote.SSH.connectTimeout",)) == timeout


def test_raised_timeout_is_put_back_when_no_tunnel_host_is_left(home: Path) -> None:
    """20 becomes 60 for a tunnel host; removing the last tunnel host gives the original bytes back."""
    original = '{\n    "remote.SSH.connectTimeout": 20, // mine\n    "a": 1\n}\n'
    path = existing(home, original)
    editor_settings.add("box", "cloudflared", [CODE], Said())
    assert jsonc.get(path.read_text(), ("remote.SSH.connectTimeout",)) == 60
    assert editor_settings.forget("box", False, Said()) is True
    assert path.read_text() == original


def test_raised_timeout_stays_while_tunnel_hosts_are_left(home: Path) -> None:
    """With another tunnel host left the timeout stays at 60; the last one out puts 20 back."""
    original = '{\n    "remote.SSH.connectTimeout": 20,\n    "a": 1\n}\n'
    path = existing(home, original)
    editor_settings.add("box", "ngrok", [CODE], Said())
    editor_settings.add("lab", "cloudflared", [CODE], Said())
    assert editor_settings.forget("box", True, Said()) is True
    text = path.read_text()
    assert jsonc.get(text, ("remote.SSH.connectTimeout",)) == 60
    assert jsonc.get(text, ("remote.SSH.remotePlatform",)) == {"lab": "linux"}
    editor_settings.forget("lab", False, Said())
    assert path.read_text() == original


def test_timeout_rdev_added_is_taken_out_again(home: Path) -> None:
    """A timeout that was not there before goes again with the last tunnel host."""
    path = existing(home, USER)
    editor_settings.add("box", "cloudflared", [CODE], Said())
    editor_settings.forget("box", False, Said())
    assert path.read_text() == USER


def test_higher_timeout_of_the_user_is_never_touched(home: Path) -> None:
    """A timeout already >= 60 is the user's: not raised, not recorded, not put back."""
    original = '{\n    "remote.SSH.connectTimeout": 90,\n    "a": 1\n}\n'
    path = existing(home, original)
    editor_settings.add("box", "cloudflared", [CODE], Said())
    assert path.read_text() == '{\n' + PLATFORM_BLOCK + original[2:]
    editor_settings.forget("box", False, Said())
    assert path.read_text() == original


def test_timeout_changed_by_user_after_rdev_raised_it_is_theirs(home: Path) -> None:
    """If the user set 45 after rdev raised 20 to 60, forget() leaves 45."""
    path = existing(home, '{\n    "remote.SSH.connectTimeout": 20,\n    "a": 1\n}\n')
    editor_settings.add("box", "cloudflared", [CODE], Said())
    path.write_text(path.read_text().replace('"remote.SSH.connectTimeout": 60', '"remote.SSH.connectTimeout": 45'))
    editor_settings.forget("box", False, Said())
    assert path.read_text() == '{\n    "remote.SSH.connectTimeout": 45,\n    "a": 1\n}\n'


@pytest.mark.parametrize("tunnel", ["direct", "cloudflared"])
def test_unparseable_file_is_left_alone_with_one_message(home: Path, tunnel: str) -> None:
    """A file rdev cannot parse keeps its bytes; the user is told which file and what to add."""
    broken = b'{\n    "a": 1,, /* oops\n'
    path = settings(home)
    path.parent.mkdir(parents=True)
    path.write_bytes(broken)
    said = Said()
    editor_settings.add("box", tunnel, [CODE], said)
    assert path.read_bytes() == broken
    assert not path.with_name("settings.json.rdev-backup").exists()
    assert len(said) == 1 and "\n" not in said[0]
    assert str(path) in said[0]
    assert '"remote.SSH.remotePlatform": {"box": "linux"}' in said[0]
    assert ('"remote.SSH.connectTimeout": 60' in said[0]) == (tunnel == "cloudflared")

    said.clear()
    assert editor_settings.forget("box", False, said) is False
    assert path.read_bytes() == broken
    assert len(said) == 1 and str(path) in said[0] and '"box"' in said[0]


def test_non_utf8_file_is_left_alone(home: Path) -> None:
    """Bytes that are not UTF-8 are not text rdev can edit."""
    path = settings(home)
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"a": "\xff"}')
    said = Said()
    editor_settings.add("box", "direct", [CODE], said)
    assert path.read_bytes() == b'{"a": "\xff"}'
    assert len(said) == 1 and "UTF-8" in said[0]


def test_backup_holds_original_bytes_and_is_not_overwritten(home: Path) -> None:
    """The first change keeps the original beside the file; later changes leave that backup alone."""
    path = existing(home, USER)
    backup = path.with_name("settings.json.rdev-backup")
    editor_settings.add("box", "direct", [CODE], Said())
    assert backup.read_bytes() == USER.encode()
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    editor_settings.add("lab", "cloudflared", [CODE], Said())
    editor_settings.forget("box", True, Said())
    assert jsonc.get(path.read_text(), ("remote.SSH.remotePlatform",)) == {"lab": "linux"}
    assert backup.read_bytes() == USER.encode()


def test_no_backup_and_no_write_when_nothing_changes(home: Path) -> None:
    """A file that already says what rdev wants is not rewritten."""
    path = existing(home, '{\n    "remote.SSH.remotePlatform": {"box": "linux"}\n}\n')
    before = path.stat().st_mtime_ns
    editor_settings.add("box", "direct", [CODE], Said())
    assert path.stat().st_mtime_ns == before
    assert not path.with_name("settings.json.rdev-backup").exists()


def test_existing_mode_is_kept(home: Path) -> None:
    """A 0644 settings.json stays 0644 after rdev's edit and after the undo."""
    path = existing(home, USER, mode=0o644)
    editor_settings.add("box", "direct", [CODE], Said())
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert editor_settings.forget("box", False, Said()) is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.read_text() == USER


def test_symlinked_settings_stays_a_symlink(home: Path) -> None:
    """A dotfiles symlink is followed: the link stays, its target is edited."""
    target = home / "dotfiles" / "vscode-settings.json"
    target.parent.mkdir()
    target.write_text(USER)
    link = settings(home)
    link.parent.mkdir(parents=True)
    link.symlink_to(target)
    editor_settings.add("box", "direct", [CODE], Said())
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == '{\n' + PLATFORM_BLOCK + '    "editor.fontSize": 14\n}\n'
    editor_settings.forget("box", False, Said())
    assert link.is_symlink() and target.read_text() == USER


def test_forget_returns_false_when_nothing_changed(home: Path) -> None:
    """No settings files, or files without the host: nothing to do, False."""
    assert editor_settings.forget("box", False, Said()) is False
    path = existing(home, USER)
    assert editor_settings.forget("box", False, Said()) is False
    assert path.read_text() == USER
    assert not path.with_name("settings.json.rdev-backup").exists()


def test_forget_covers_every_editor(home: Path) -> None:
    """forget() looks in every editor's file, not only those add() was given this time."""
    files = {kind.config_folder: existing(home, USER, kind.config_folder) for kind in KINDS}
    editor_settings.add("box", "direct", KINDS, Said())
    assert all(jsonc.get(p.read_text(), ("remote.SSH.remotePlatform", "box")) == "linux" for p in files.values())
    assert editor_settings.forget("box", False, Said()) is True
    assert all(p.read_text() == USER for p in files.values())


def test_record_is_emptied_after_put_back(home: Path) -> None:
    """The record of a raised timeout is dropped once the timeout went back."""
    existing(home, '{"remote.SSH.connectTimeout": 20}')
    editor_settings.add("box", "cloudflared", [CODE], Said())
    record = paths.editor_settings_record()
    assert str(settings(home)) in record.read_text() and "20" in record.read_text()
    editor_settings.forget("box", False, Said())
    assert str(settings(home)) not in record.read_text()


def test_wanted_is_valid_jsonc_members() -> None:
    """The text the user is told to add parses as object members."""
    assert json5.loads("{" + editor_settings.wanted("box", "ngrok") + "}") == {
        "remote.SSH.remotePlatform": {"box": "linux"}, "remote.SSH.connectTimeout": 60}
    assert json.loads("{" + editor_settings.wanted("box", "direct") + "}") == {
        "remote.SSH.remotePlatform": {"box": "linux"}}


FOLDERS = ["Code", "Code - Insiders", "Cursor", "VSCodium", "Windsurf"]


def test_config_folders_of_kinds() -> None:
    """Each editor's config folder is the one it really uses."""
    assert [kind.config_folder for kind in KINDS] == FOLDERS


@pytest.mark.parametrize("folder", FOLDERS)
def test_settings_path_per_os(home: Path, monkeypatch: pytest.MonkeyPatch, folder: str) -> None:
    """Darwin: ~/Library/Application Support; Windows: %APPDATA%; Linux: $XDG_CONFIG_HOME (else ~/.config)."""
    tail = Path(folder) / "User" / "settings.json"
    monkeypatch.setenv("APPDATA", r"C:\Users\me\AppData\Roaming")
    assert paths.editor_settings(folder, "Darwin") == home / "Library" / "Application Support" / tail
    assert paths.editor_settings(folder, "Windows") == Path(r"C:\Users\me\AppData\Roaming") / tail
    assert paths.editor_settings(folder, "Linux") == home.parent / "cfg" / tail
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert paths.editor_settings(folder, "Linux") == home / ".config" / tail
    monkeypatch.delenv("APPDATA")
    assert paths.editor_settings(folder, "Windows") == home / "AppData" / "Roaming" / tail


def test_a_settings_path_that_is_a_folder_is_passed_over_with_a_message(home: Path) -> None:
    """One editor's broken settings place never stops a connect; the others are still written."""
    broken = paths.editor_settings("VSCodium")
    broken.mkdir(parents=True)
    said: list[str] = []
    editor_settings.add("box", "direct", [BY_NAME["codium"], BY_NAME["code"]], said.append)
    assert len(said) == 1 and str(broken) in said[0] and '"remote.SSH.remotePlatform"' in said[0]
    assert jsonc.get(paths.editor_settings("Code").read_text(), ("remote.SSH.remotePlatform", "box")) == "linux"


def test_a_hand_edited_record_puts_nothing_back_and_does_not_fail(home: Path) -> None:
    settings = paths.editor_settings("Code")
    settings.parent.mkdir(parents=True)
    settings.write_text('{\n    "remote.SSH.connectTimeout": 20\n}\n')
    editor_settings.add("box", "cloudflared", [BY_NAME["code"]], lambda line: None)
    paths.editor_settings_record().write_text(f'[raised_timeout]\n"{settings}" = {{ previous = "thirty" }}\n')
    assert editor_settings.forget("box", False, lambda line: None)
    assert jsonc.get(settings.read_text(), ("remote.SSH.connectTimeout",)) == 60

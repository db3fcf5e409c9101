"""Unit tests for bootstrap/files.py: private folders and atomic writes.

A crash or a full disk must never leave a user's file half written (DESIGN.md, "SSH config": a
temporary file in the same folder, fsync, rename). A write that truncates the target and rewrites
it in place looks the same when all goes well, so these tests look where the two differ: the old
file's inode, what a reader holding it sees, and what is left after a failure.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from bootstrap.files import atomic_write, ensure_private_dir

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes, hard links and symlinks as on POSIX")

OLD = b"Host old\n  HostName 203.0.113.7\n"
NEW = b"Host new\n  HostName 198.51.100.9\n\x00\xff"


def no_space(*args: object) -> None:
    """Stands in for os.fsync or os.replace on a full disk."""
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def target(tmp_path: Path) -> Path:
    path = tmp_path / "config"
    path.write_bytes(OLD)
    return path


# ------------------------------------------------------------------------------------- replaced, not rewritten


def test_reader_of_the_old_file_keeps_reading_it(target: Path) -> None:
    """The new content is a new inode renamed over the name; a reader that opened the old one is undisturbed."""
    with open(target, "rb") as reader:
        atomic_write(target, NEW)
        assert reader.read() == OLD
        assert os.fstat(reader.fileno()).st_ino != target.stat().st_ino
    assert target.read_bytes() == NEW
    assert os.listdir(target.parent) == [target.name]


def test_hard_link_keeps_the_old_bytes(target: Path) -> None:
    link = target.with_name("config.link")
    os.link(target, link)
    atomic_write(target, NEW)
    assert link.read_bytes() == OLD
    assert target.read_bytes() == NEW


def test_temporary_file_is_renamed_from_beside_the_target(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rename is atomic only within one file system: the new file is made in the target's own folder."""
    renames: list[tuple[str, str]] = []
    real_replace = os.replace

    def recording(source: str, destination: str) -> None:
        renames.append((os.fspath(source), os.fspath(destination)))
        real_replace(source, destination)

    monkeypatch.setattr(os, "replace", recording)
    atomic_write(target, NEW)
    expected = [(target.resolve().parent, target.resolve())]
    assert [(Path(source).parent, Path(destination)) for source, destination in renames] == expected


# ------------------------------------------------------------------------------------------------ failures


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_failure_leaves_the_target_as_it_was(target: Path, monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    """A full disk (fsync) or a failed rename leaves the old file byte for byte, and no temporary file."""
    target.chmod(0o644)
    before = target.stat()
    monkeypatch.setattr(os, step, no_space)
    with pytest.raises(OSError):
        atomic_write(target, NEW)
    monkeypatch.undo()
    assert target.read_bytes() == OLD
    after = target.stat()
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert os.listdir(target.parent) == [target.name]


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_failure_creates_nothing_where_there_was_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         step: str) -> None:
    monkeypatch.setattr(os, step, no_space)
    with pytest.raises(OSError):
        atomic_write(tmp_path / "config", NEW)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------------------------------- modes


@pytest.mark.parametrize("existing", [None, 0o644], ids=["new-file", "was-0644"])
def test_mode_is_0600_by_default(tmp_path: Path, existing: int | None) -> None:
    """Private whatever the umask and whatever mode the file had before."""
    path = tmp_path / "config"
    if existing is not None:
        path.write_bytes(OLD)
        path.chmod(existing)
    atomic_write(path, NEW)
    assert mode_of(path) == 0o600
    assert path.read_bytes() == NEW


@pytest.mark.parametrize("mode", [0o640, 0o400, 0o755])
def test_given_mode_is_used(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "script"
    atomic_write(path, NEW, mode)
    assert mode_of(path) == mode
    assert path.read_bytes() == NEW


# ----------------------------------------------------------------------------------------------- symlinks


@pytest.mark.parametrize("relative", [False, True])
def test_symlink_is_followed_and_stays_a_link(tmp_path: Path, relative: bool) -> None:
    """A dotfile manager's link (`~/.ssh/config -> dotfiles/ssh_config`) survives; the file it names changes."""
    real = tmp_path / "dotfiles" / "ssh_config"
    real.parent.mkdir()
    real.write_bytes(OLD)
    old_inode = real.stat().st_ino
    link = tmp_path / "ssh" / "config"
    link.parent.mkdir()
    pointed = os.path.join("..", "dotfiles", "ssh_config") if relative else str(real)
    link.symlink_to(pointed)
    atomic_write(link, NEW)
    assert link.is_symlink() and os.readlink(link) == pointed
    assert real.read_bytes() == NEW
    assert real.stat().st_ino != old_inode
    assert (os.listdir(link.parent), os.listdir(real.parent)) == (["config"], ["ssh_config"])


# ----------------------------------------------------------------------------------------- private folders


def test_private_dir_creates_parents_and_is_0700(tmp_path: Path) -> None:
    leaf = tmp_path / "a" / "b" / ".ssh" / "rdev"
    assert ensure_private_dir(leaf) == leaf
    assert leaf.is_dir() and mode_of(leaf) == 0o700


def test_private_dir_tightens_an_existing_folder(tmp_path: Path) -> None:
    folder = tmp_path / "rdev"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    (folder / "kept").write_bytes(OLD)
    ensure_private_dir(folder)
    assert mode_of(folder) == 0o700
    assert (folder / "kept").read_bytes() == OLD


# ------------------------------------------------------------------------------------- nothing to change


def test_a_file_that_holds_the_data_already_is_left_alone(target: Path) -> None:
    """A reconnect rewrites the same records: no new inode, no new mtime (an editor watching would reload)."""
    target.chmod(0o600)
    before = target.stat()
    atomic_write(target, OLD)
    after = target.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


@pytest.mark.parametrize("data, mode", [(OLD + b"#", 0o600), (OLD[:-1] + b"#", 0o600), (OLD, 0o644)])
def test_other_bytes_or_another_mode_are_written(target: Path, data: bytes, mode: int) -> None:
    target.chmod(mode)
    before = target.stat().st_ino
    atomic_write(target, data)
    assert target.stat().st_ino != before
    assert target.read_bytes() == data and mode_of(target) == 0o600


def test_a_private_file_replaces_a_link_planted_in_its_place(tmp_path: Path) -> None:
    """follow=False (rdev's own tokens and records on a host): the link is replaced, its target left as it was."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(OLD)
    planted = tmp_path / "token"
    planted.symlink_to(elsewhere)
    atomic_write(planted, NEW, follow=False)
    assert not planted.is_symlink() and planted.read_bytes() == NEW and mode_of(planted) == 0o600
    assert elsewhere.read_bytes() == OLD
    dangling = tmp_path / "record"
    dangling.symlink_to(tmp_path / "nowhere")
    atomic_write(dangling, NEW, follow=False)
    assert not (tmp_path / "nowhere").exists() and dangling.read_bytes() == NEW

"""rdev's config block, pinned keys and registry entry change together or not at all."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from bootstrap import files
from client_side.errors import RdevError
from client_side.local import paths, registry, store
from client_side.local.registry import HostEntry
from client_side.ssh import config as sshconfig, known_hosts
from tests.conftest import snapshot

GPU = HostEntry(name="gpu", host="203.0.113.7", port=2222, user="alice")
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBE+xhRFLLxxd3SfP8sMd79hDgoYCVaMFDCAV8EmNVOL"


def test_put_writes_all_three_and_drop_takes_all_three_out(home: Path) -> None:
    store.put(GPU, (KEY,))
    assert sshconfig.has_entry("gpu") and known_hosts.pinned("gpu") == [KEY] and "gpu" in registry.load()
    assert store.drop("gpu") == GPU
    assert not sshconfig.has_entry("gpu") and known_hosts.pinned("gpu") == [] and registry.load() == {}


def test_put_without_keys_keeps_what_is_pinned(home: Path) -> None:
    store.put(GPU, (KEY,))
    store.put(HostEntry(name="gpu", host="203.0.113.7", port=2222, user="alice", workdir="/data"))
    assert known_hosts.pinned("gpu") == [KEY]


def test_a_full_disk_changes_no_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store.put(GPU, (KEY,))
    before = snapshot(home.parent)
    calls = []

    def full(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 3:  # the third of the new files finds the disk full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(files.os, "fsync", full)
    moved = HostEntry(name="gpu", host="198.51.100.9", port=22, user="bob")
    with pytest.raises(RdevError) as caught:
        store.put(moved, ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDbmHVY9ryHDS1D+DtZ1Yb1XqM6A2A0ueDhlr9itjBqT",))
    assert snapshot(home.parent) == before
    message = str(caught.value)
    assert "No space left on device" in message and "nothing was changed" in message and ".tmp" not in message


def test_a_file_that_cannot_be_replaced_puts_back_the_others(home: Path) -> None:
    """The registry's place is taken by a folder: the config and known_hosts, already renamed into place,
    are put back as they were, and the error names the registry, not a temporary file."""
    store.put(GPU, (KEY,))
    registry_file = paths.registry()
    registry_file.unlink()
    registry_file.mkdir()
    before = snapshot(home.parent)
    with pytest.raises(RdevError, match=str(registry_file)) as caught:
        store.put(HostEntry(name="other", host="192.0.2.9", port=22, user="u"), (KEY,))
    assert ".tmp" not in str(caught.value)
    assert snapshot(home.parent) == before
    assert not [p for p in home.parent.rglob(".*.tmp")]


def test_reaches_differently_sees_options_and_keys(home: Path) -> None:
    assert not store.reaches_differently(GPU, None)  # not written yet: no master of rdev's to close
    store.put(GPU, (KEY,))
    assert not store.reaches_differently(GPU, (KEY,))
    assert not store.reaches_differently(GPU, None)
    assert store.reaches_differently(HostEntry(name="gpu", host="203.0.113.7", port=2223, user="alice"), None)
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDbmHVY9ryHDS1D+DtZ1Yb1XqM6A2A0ueDhlr9itjBqT"
    assert store.reaches_differently(GPU, (other,))


def test_a_failed_put_back_is_said_not_hidden(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the registry cannot be replaced and putting the config back fails too, the message does
    not claim that nothing changed."""
    store.put(GPU, (KEY,))
    real_replace = os.replace
    onto_config = []

    def failing(source: str, target: str) -> None:
        if Path(target) == paths.rdev_ssh_config():
            onto_config.append(source)
            if len(onto_config) > 1:  # the second rename onto the config is the put-back
                raise OSError(errno.EIO, os.strerror(errno.EIO))
        elif Path(target) == paths.registry():
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_replace(source, target)
    monkeypatch.setattr(files.os, "replace", failing)
    with pytest.raises(RdevError, match="may now disagree"):
        store.put(HostEntry(name="other", host="192.0.2.9", port=22, user="u"), (KEY,))
    assert not [p for p in home.parent.rglob(".*.tmp")]


def test_a_hash_in_the_home_path_is_no_change(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sshconf cuts a value at `#`; the written block is compared as text, so a reconnect of the same
    host in such a home does not look like a move (which would cut its live session)."""
    odd = home.parent / "c#d"
    odd.mkdir()
    monkeypatch.setenv("HOME", str(odd))
    store.put(GPU, (KEY,))
    assert not store.reaches_differently(GPU, (KEY,))

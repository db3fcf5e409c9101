"""rdev's own known_hosts: keys pinned under `rdev-<name>` (the config's HostKeyAlias), one name at a time."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from bootstrap.files import atomic_write, ensure_private_dir
from client_side.local import paths
from client_side.ssh import known_hosts


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Four real public host keys in OpenSSH one-line form (type and base64, no comment)."""
    if shutil.which("ssh-keygen") is None:
        pytest.skip("needs ssh-keygen")
    folder = tmp_path_factory.mktemp("hostkeys")
    found = []
    for i, kind in enumerate(["ed25519", "ecdsa", "ed25519", "ed25519"]):
        subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "", "-f", str(folder / f"k{i}")],
                       check=True, timeout=60)
        found.append((folder / f"k{i}.pub").read_text().strip())
    return found


def pin(name: str, *host_keys: str) -> None:
    ensure_private_dir(paths.rdev_ssh_dir())
    atomic_write(paths.known_hosts(), known_hosts.with_keys(name, tuple(host_keys)))


def unpin(name: str) -> None:
    pin(name)


def lines() -> list[str]:
    return paths.known_hosts().read_text().splitlines()


def keygen_find(alias: str) -> list[str]:
    """The keys `ssh-keygen -F ALIAS` finds in rdev's known_hosts: what ssh itself will accept."""
    result = subprocess.run(["ssh-keygen", "-F", alias, "-f", str(paths.known_hosts())], check=False, capture_output=True,
                            text=True, timeout=30)
    return [line.split(" ", 1)[1] for line in result.stdout.splitlines() if line and not line.startswith("#")]


def test_alias() -> None:
    assert known_hosts.alias("gpu") == "rdev-gpu"


@pytest.mark.parametrize("count", [1, 2])
def test_pin_writes_alias_lines(home: Path, keys: list[str], count: int) -> None:
    pin("gpu", *keys[:count])
    assert paths.known_hosts().read_text() == "".join(f"rdev-gpu {key}\n" for key in keys[:count])
    assert keygen_find("rdev-gpu") == keys[:count]
    assert keygen_find("gpu") == []


def test_pin_lives_in_rdev_folder_with_mode_0600(home: Path, keys: list[str]) -> None:
    pin("gpu", keys[0])
    assert paths.known_hosts() == home / ".ssh" / "rdev" / "known_hosts"
    assert stat.S_IMODE(paths.known_hosts().stat().st_mode) == 0o600
    assert not (home / ".ssh" / "known_hosts").exists()


def test_pin_makes_an_existing_loose_file_private(home: Path, keys: list[str]) -> None:
    paths.rdev_ssh_dir().mkdir(parents=True)
    paths.known_hosts().write_text(f"rdev-old {keys[3]}\n")
    paths.known_hosts().chmod(0o644)
    pin("gpu", keys[0])
    assert stat.S_IMODE(paths.known_hosts().stat().st_mode) == 0o600
    assert lines() == [f"rdev-old {keys[3]}", f"rdev-gpu {keys[0]}"]


def test_repin_replaces_only_that_names_lines(home: Path, keys: list[str]) -> None:
    pin("gpu", keys[0], keys[1])
    pin("colab", keys[2])
    pin("gpu", keys[3])
    assert lines() == [f"rdev-colab {keys[2]}", f"rdev-gpu {keys[3]}"]
    assert keygen_find("rdev-gpu") == [keys[3]]
    assert keygen_find("rdev-colab") == [keys[2]]


@pytest.mark.parametrize(("name", "neighbour"), [("gpu", "gpu1"), ("gpu1", "gpu"), ("a.b", "a"), ("a", "a-b")])
def test_names_sharing_a_prefix_do_not_touch_each_other(home: Path, keys: list[str], name: str,
                                                       neighbour: str) -> None:
    pin(neighbour, keys[0])
    pin(name, keys[1])
    pin(name, keys[2])
    assert lines() == [f"rdev-{neighbour} {keys[0]}", f"rdev-{name} {keys[2]}"]
    unpin(name)
    assert lines() == [f"rdev-{neighbour} {keys[0]}"]


def test_pin_with_no_keys_drops_the_name(home: Path, keys: list[str]) -> None:
    pin("gpu", keys[0])
    pin("colab", keys[1])
    pin("gpu")
    assert lines() == [f"rdev-colab {keys[1]}"]


def test_unpin_removes_that_names_lines_and_keeps_others(home: Path, keys: list[str]) -> None:
    pin("gpu", keys[0], keys[1])
    pin("colab", keys[2])
    pin("tpu", keys[3])
    unpin("gpu")
    assert lines() == [f"rdev-colab {keys[2]}", f"rdev-tpu {keys[3]}"]
    assert keygen_find("rdev-gpu") == []
    assert stat.S_IMODE(paths.known_hosts().stat().st_mode) == 0o600


def test_unpin_of_an_unknown_name_keeps_the_file(home: Path, keys: list[str]) -> None:
    pin("gpu", keys[0])
    before = paths.known_hosts().read_bytes()
    unpin("nosuch")
    assert paths.known_hosts().read_bytes() == before


def test_unpin_of_the_last_name_leaves_an_empty_file(home: Path, keys: list[str]) -> None:
    pin("gpu", keys[0])
    unpin("gpu")
    assert paths.known_hosts().read_bytes() == b""

"""The host registry: HostEntry values in a TOML file in the user config folder."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from bootstrap.files import atomic_write, ensure_private_dir
from client_side.errors import USAGE, BadInput, RdevError
from client_side.local import paths, registry
from client_side.local.registry import HostEntry

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

GPU = HostEntry(name="gpu", host="203.0.113.7", port=2222, user="alice")
COLAB = HostEntry(name="colab", host="0.tcp.eu.ngrok.io", port=17011, user="root", tunnel="ngrok",
                  workdir="/content", runtime="colab", expires="2030-01-02T03:04:05+00:00")
KAGGLE = HostEntry(name="k.1_x-y", host="2001:db8::1", port=22, user="kaggle@work", tunnel="direct",
                   workdir="~/work dir", runtime="kaggle", expires=None)


def save(entries: dict[str, HostEntry]) -> None:
    ensure_private_dir(paths.config_dir())
    atomic_write(paths.registry(), registry.rendered(entries))


def put(text: str | bytes) -> Path:
    """Write the registry file by hand, as a user (or a crash) might leave it."""
    path = paths.registry()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


@pytest.mark.parametrize("entries", [
    {},
    {"gpu": GPU},
    {"colab": COLAB},
    {"gpu": GPU, "colab": COLAB, "k.1_x-y": KAGGLE},
], ids=["none", "expires-none", "expires-set", "three"])
def test_save_load_round_trip(home: Path, entries: dict[str, HostEntry]) -> None:
    save(entries)
    assert registry.load() == entries
    for name, entry in entries.items():
        assert registry.get(name) == entry


def test_load_without_a_file_is_empty(home: Path) -> None:
    assert not paths.registry().exists()
    assert registry.load() == {}


def test_file_is_private_toml_in_the_config_folder(home: Path) -> None:
    save({"gpu": GPU, "colab": COLAB})
    path = paths.registry()
    assert path == home.parent / "cfg" / "rdev" / "hosts.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data == {"hosts": {
        "colab": {"host": "0.tcp.eu.ngrok.io", "port": 17011, "user": "root", "tunnel": "ngrok",
                  "workdir": "/content", "runtime": "colab", "expires": "2030-01-02T03:04:05+00:00", "login": False, "bridge": False},
        "gpu": {"host": "203.0.113.7", "port": 2222, "user": "alice", "tunnel": "direct", "workdir": "~",
                "runtime": "generic", "login": False, "bridge": False},
    }}


def test_save_replaces_the_whole_registry(home: Path) -> None:
    save({"gpu": GPU, "colab": COLAB})
    save({"colab": COLAB})
    assert registry.load() == {"colab": COLAB}
    assert "gpu" not in paths.registry().read_text()


def test_unknown_keys_in_a_table_are_ignored(home: Path) -> None:
    put('[hosts.gpu]\nhost = "203.0.113.7"\nport = 2222\nuser = "alice"\nfuture_field = true\n')
    assert registry.load() == {"gpu": GPU}


@pytest.mark.parametrize("text", [
    b"[hosts.gpu\nhost = 1\n",
    b'[hosts.gpu]\nhost = "a"\nhost = "b"\n',
    b"this is not toml at all",
    b'[hosts.gpu]\nhost = "\xff\xfe"\n',
], ids=["unclosed-table", "duplicate-key", "prose", "not-utf8"])
def test_damaged_file_gives_rdev_error_naming_the_file(home: Path, text: bytes) -> None:
    path = put(text)
    with pytest.raises(RdevError) as caught:
        registry.load()
    assert str(path) in str(caught.value)
    assert caught.value.exit_code != 0


@pytest.mark.parametrize("name", ["Bad Name", "-gpu", "a/b", "gpu;rm", "a" * 64, "", "é"])
def test_entry_with_a_bad_name_gives_rdev_error(home: Path, name: str) -> None:
    path = put(f'[hosts."{name}"]\nhost = "203.0.113.7"\nport = 2222\nuser = "alice"\n')
    with pytest.raises(RdevError) as caught:
        registry.load()
    assert str(path) in str(caught.value)
    assert repr(name) in str(caught.value)


def test_entry_missing_a_field_gives_rdev_error(home: Path) -> None:
    path = put('[hosts.gpu]\nport = 2222\nuser = "alice"\n')
    with pytest.raises(RdevError, match="damaged") as caught:
        registry.load()
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("text", [
    pytest.param("[hosts]\ngpu = 1\n", id="host-not-a-table"),
    pytest.param("hosts = 3\n", id="hosts-not-a-table"),
    pytest.param('hosts = ["gpu"]\n', id="hosts-a-list"),
])
def test_wrongly_shaped_toml_gives_rdev_error(home: Path, text: str) -> None:
    path = put(text)
    with pytest.raises(RdevError) as caught:
        registry.load()
    assert str(path) in str(caught.value)


def test_get_of_a_missing_name_is_bad_input(home: Path) -> None:
    save({"gpu": GPU})
    with pytest.raises(BadInput) as caught:
        registry.get("colab")
    assert caught.value.exit_code == USAGE == 2
    assert "'colab'" in str(caught.value)


def test_get_without_a_registry_is_bad_input(home: Path) -> None:
    with pytest.raises(BadInput):
        registry.get("gpu")

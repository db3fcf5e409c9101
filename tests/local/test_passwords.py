"""The keyring wrapper with an in-memory backend (the real Secret Service is in tests/e2e/hosts/test_login.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null
from keyring.errors import KeyringLocked

from client_side.errors import RdevError
from client_side.local import passwords


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}
        self.locked = False

    def get_password(self, service: str, username: str) -> str | None:
        if self.locked:
            raise KeyringLocked("the collection is locked")
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.items[(service, username)]


@pytest.fixture
def memory(home: Path) -> Iterator[MemoryKeyring]:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(null.Keyring())


def test_store_get_delete_under_service_rdev(memory: MemoryKeyring) -> None:
    assert passwords.store("gpu1", "pw 1") and memory.items == {("rdev", "gpu1"): "pw 1"}
    assert passwords.get("gpu1") == "pw 1" and passwords.get("gpu2") is None
    assert passwords.delete("gpu1") and not passwords.delete("gpu1") and passwords.get("gpu1") is None


@pytest.mark.parametrize("backend", [fail.Keyring, null.Keyring])
def test_backends_that_keep_nothing_are_not_usable(home: Path, backend: type) -> None:
    keyring.set_keyring(backend())
    try:
        assert not passwords.usable() and passwords.get("gpu1") is None
        assert not passwords.store("gpu1", "pw") and not passwords.delete("gpu1")
    finally:
        keyring.set_keyring(null.Keyring())
    assert "keyrings.cryptfile" in passwords.no_backend().fix and "Secret Service" in passwords.no_backend().fix


def test_a_locked_keyring_is_one_sentence_without_the_secret(memory: MemoryKeyring) -> None:
    passwords.store("gpu1", "pw-secret")
    memory.locked = True
    with pytest.raises(RdevError, match="unlock it") as caught:
        passwords.get("gpu1")
    assert "pw-secret" not in str(caught.value)

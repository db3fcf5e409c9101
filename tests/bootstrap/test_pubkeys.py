"""Public key lines: real keys of every type parse to `type base64`; anything else is refused."""

from __future__ import annotations

import base64
import struct
import subprocess
from pathlib import Path

import pytest

from bootstrap import pubkeys


def wire(*fields: bytes) -> str:
    return base64.b64encode(b"".join(struct.pack(">I", len(f)) + f for f in fields)).decode()


@pytest.mark.parametrize("kind, bits", [("ed25519", None), ("ecdsa", "256"), ("ecdsa", "521"), ("rsa", "2048")])
def test_real_keys_parse_without_their_comment(tmp_path: Path, kind: str, bits: str | None) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, *(["-b", bits] if bits else []), "-N", "", "-C", "me@laptop",
                    "-f", str(tmp_path / "k")], check=True)
    line = (tmp_path / "k.pub").read_text()
    assert pubkeys.parse(line, pubkeys.USER_KEY_TYPES) == " ".join(line.split()[:2])


def test_security_key_is_a_user_key_but_not_a_host_key() -> None:
    kind = "sk-ssh-ed25519@openssh.com"
    line = f"{kind} {wire(kind.encode(), bytes(32), b'ssh:')} yubikey"
    assert pubkeys.parse(line, pubkeys.USER_KEY_TYPES) == " ".join(line.split()[:2])
    with pytest.raises(pubkeys.NotAKey):
        pubkeys.parse(line)


@pytest.mark.parametrize("line", [
    "", "ssh-ed25519", "/home/me/.ssh/id_ed25519.pub", "-----BEGIN OPENSSH PRIVATE KEY-----",
    f"ssh-ed25519 {wire(b'ssh-ed25519', bytes(32))}\nssh-ed25519 {wire(b'ssh-ed25519', bytes(32))}",
    None,
])
def test_not_a_key(line: object) -> None:
    with pytest.raises(pubkeys.NotAKey, match="is not an SSH public key"):
        pubkeys.parse(line, pubkeys.USER_KEY_TYPES)


@pytest.mark.parametrize("line", [
    f"ssh-ed25519 {wire(b'ssh-ed25519', bytes(31))}",        # a key one byte short
    f"ssh-rsa {wire(b'ssh-ed25519', bytes(32))}",            # the blob says another type
    f"ssh-ed25519 {wire(b'ssh-ed25519', bytes(32))[:-4]}",   # cut short
    "ssh-ed25519 not*base64",
])
def test_altered_key(line: str) -> None:
    with pytest.raises(pubkeys.NotAKey, match="does not parse"):
        pubkeys.parse(line, pubkeys.USER_KEY_TYPES)

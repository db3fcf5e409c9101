"""OpenSSH public key lines (`type base64 [comment]`), checked down to the key blob.

Host keys in a ticket and the keys `serve` lets in both pass through here, so a pasted private
key, a path or an altered key is refused with a sentence instead of ending up in a file.
"""

from __future__ import annotations

import base64
import binascii
import struct

HOST_KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)
# Security-key (FIDO) types a user may log in with; their blobs carry an application string too.
USER_KEY_TYPES = HOST_KEY_TYPES + ("sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")


class NotAKey(ValueError):
    """The line is not a usable public key; the message ends a sentence ("... is not an SSH public key")."""


def parse(line: object, types: tuple[str, ...] = HOST_KEY_TYPES) -> str:
    """`type base64` of one key line whose blob parses as that type; the comment is dropped."""
    parts = line.split() if isinstance(line, str) and "\n" not in line.strip() else []
    if len(parts) < 2 or parts[0] not in types:
        raise NotAKey("is not an SSH public key")
    try:
        fields = _wire_strings(base64.b64decode(parts[1], validate=True))
    except (binascii.Error, ValueError):
        fields = []
    if not _shape_ok(parts[0], fields):
        raise NotAKey(f"is a key of type {parts[0]} that does not parse: it was altered")
    return f"{parts[0]} {parts[1]}"


def _wire_strings(blob: bytes) -> list[bytes]:
    """Split an SSH wire-format key blob into its length-prefixed fields; the blob must end exactly."""
    fields, offset = [], 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            raise ValueError("length cut short")
        (size,) = struct.unpack(">I", blob[offset : offset + 4])
        offset += 4
        if offset + size > len(blob):
            raise ValueError("field cut short")
        fields.append(blob[offset : offset + size])
        offset += size
    return fields


def _shape_ok(kind: str, fields: list[bytes]) -> bool:
    if not fields or fields[0] != kind.encode():
        return False
    if kind == "ssh-ed25519":
        return len(fields) == 2 and len(fields[1]) == 32
    if kind.startswith("sk-"):
        return len(fields) >= 3
    if kind.startswith("ecdsa-"):
        return len(fields) == 3 and fields[1] == kind.rsplit("-", 1)[1].encode() and len(fields[2]) > 32
    return len(fields) == 3 and len(fields[2]) >= 128  # ssh-rsa: exponent, then a modulus of 1024 bits or more

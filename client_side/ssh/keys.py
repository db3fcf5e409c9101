"""rdev's own key pair, `~/.ssh/rdev/id_ed25519`, made on first use.

Generated with `cryptography` (already there through paramiko) rather than ssh-keygen, so the
private key is written atomically with mode 0600 from the start on every OS.
"""

from __future__ import annotations

from bootstrap.files import atomic_write
from client_side.local import paths
from client_side.local.locking import changing_files


def public_key() -> str:
    """The public key line, creating the pair first if there is none."""
    if not paths.public_key().exists():
        with changing_files():
            if not paths.private_key().exists():
                _generate()
            elif not paths.public_key().exists():
                _write_public(_load_private())
    return paths.public_key().read_text().strip()


def _generate() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    atomic_write(paths.private_key(), private, mode=0o600)
    _write_public(key)


def _load_private():
    from cryptography.hazmat.primitives import serialization

    return serialization.load_ssh_private_key(paths.private_key().read_bytes(), password=None)


def _write_public(key) -> None:
    import socket  # only here: a start that finds the key pair needs no socket module

    from cryptography.hazmat.primitives import serialization

    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    atomic_write(paths.public_key(), public + f" rdev@{socket.gethostname()}\n".encode(), mode=0o600)

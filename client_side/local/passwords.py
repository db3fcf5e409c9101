"""Passwords of password hosts, in the system keyring only (service `rdev`, user = the host's name).

Never a plaintext file: without a usable backend rdev says what to install or how to opt in to
an encrypted file backend, and goes on without storing.
"""

from __future__ import annotations

import os

from client_side.errors import RdevError

SERVICE = "rdev"
NO_BACKEND_FIX = ("install and unlock a Secret Service (e.g. gnome-keyring or KeePassXC), or opt in to an encrypted "
                  "file with 'pip install keyrings.cryptfile' and "
                  "PYTHON_KEYRING_BACKEND=keyrings.cryptfile.cryptfile.CryptFileKeyring.")


def no_backend() -> RdevError:
    return RdevError("No system keyring is available to keep the password", NO_BACKEND_FIX)


def _backend():
    import keyring
    from keyring.backends import chainer, fail, null

    try:
        backend = keyring.get_keyring()
    except Exception as err:  # noqa: BLE001 - a backend named in PYTHON_KEYRING_BACKEND that does not load
        raise RdevError(f"The keyring backend could not be loaded ({type(err).__name__}: {err})", NO_BACKEND_FIX) from None
    # The null backend forgets everything and the fail backend refuses everything: neither keeps a password.
    if isinstance(backend, (fail.Keyring, null.Keyring)):
        return None
    parts = backend.backends if isinstance(backend, chainer.ChainerBackend) else [backend]
    # keyrings.alt's plaintext file is taken only when the user named it; never by default.
    if any(_plaintext(part) for part in parts) and "Plaintext" not in os.environ.get("PYTHON_KEYRING_BACKEND", ""):
        return None
    return backend


def _plaintext(backend: object) -> bool:
    return type(backend).__name__ == "PlaintextKeyring"


def usable() -> bool:
    return _backend() is not None


def get(name: str) -> str | None:
    backend = _backend()
    if backend is None:
        return None
    return _call(lambda: backend.get_password(SERVICE, name))


def store(name: str, password: str) -> bool:
    """Keep `password` for `name`; False when there is no keyring to keep it in."""
    backend = _backend()
    if backend is None:
        return False
    _call(lambda: backend.set_password(SERVICE, name, password))
    return True


def delete(name: str) -> bool:
    """Forget `name`'s password; False if none was kept."""
    from keyring.errors import PasswordDeleteError

    backend = _backend()
    if backend is None or _call(lambda: backend.get_password(SERVICE, name)) is None:
        return False
    try:
        _call(lambda: backend.delete_password(SERVICE, name))
    except PasswordDeleteError:
        return False
    return True


def forget(name: str) -> bool:
    """`delete` for clean-ups: a locked or missing keyring holds nothing rdev could remove now."""
    try:
        return delete(name)
    except RdevError:
        return False


def _call(action):
    from keyring.errors import KeyringError, PasswordDeleteError

    try:
        return action()
    except PasswordDeleteError:
        raise
    except KeyringError as err:
        # The backend's own words (locked, no D-Bus...) name no secret.
        raise RdevError(f"The system keyring did not answer ({type(err).__name__}: {err})",
                        "unlock it and run again.") from None

"""Validators for everything that ends up in an SSH config line, a ticket or a command line.

OpenSSH gives meaning to white space, quotes, `#`, `%`, `=`, `*`, `?`, `!` and `,` in config
lines and host patterns, and a leading `-` turns a value into an option. Such values are refused
here, before anything is written, with one sentence that names the value and says what is allowed.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_HOST_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}")
# ASCII digits only: str.isdigit() and int() also take '²' or Arabic-Indic digits.
_PORT = re.compile(r"[0-9]{1,5}")
# Control characters (C0, DEL, C1), invisible format characters (bidi overrides, zero widths),
# lone surrogates (no file can store them) and the line and paragraph separators.
_UNSAFE_IN_PATH = ("Cc", "Cf", "Cs", "Zl", "Zp")


class InvalidValue(ValueError):
    """A value a user or a ticket gave that rdev will not put into a config or a command line."""


def name(value: str) -> str:
    """A host alias rdev writes: lower case (VS Code lower-cases it), letters, digits, `.`, `_`, `-`."""
    # Lower-case only ASCII: 'K' (KELVIN SIGN) lower-cases to 'k', so a look-alike would pass.
    lowered = value.lower() if value.isascii() else ""
    if not _NAME.fullmatch(lowered):
        raise InvalidValue(
            f"The name {value!r} cannot be used: use 1 to 63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (for example 'colab' or 'gpu1')."
        )
    return lowered


def host(value: str) -> str:
    """A DNS name or an IP address; nothing OpenSSH would read as a pattern, token or option."""
    # ipaddress accepts anything after `%` as an IPv6 zone id; a zone has no use in a ticket or a
    # config, and its text could carry a newline into the config.
    if "%" not in value:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            pass
    labels = value.split(".")
    if not value or len(value) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise InvalidValue(
            f"The host {value!r} is not a host name or an IP address: "
            "use letters, digits, '-' and '.' only (for example 'gpu1.example.edu')."
        )
    return value


def user(value: str) -> str:
    """A login name: letters, digits, `_`, `.`, `@`, `-`, not starting with `-`."""
    if not _USER.fullmatch(value):
        raise InvalidValue(
            f"The user {value!r} is not a valid login name: "
            "use letters, digits, '_', '.', '@' or '-', not starting with '-'."
        )
    return value


def port(value: int | str) -> int:
    """A TCP port, 1 to 65535."""
    if isinstance(value, str):
        number = int(value) if _PORT.fullmatch(value) else 0
    else:  # booleans are ints to Python, but `true` in a ticket or flag is no port
        number = value if isinstance(value, int) and not isinstance(value, bool) else 0
    if not 1 <= number <= 65535:
        raise InvalidValue(f"The port {value!r} is not a number from 1 to 65535.")
    return number


def remote_path(value: str) -> str:
    """A folder on the remote machine: absolute (or under `~`), no control or invisible characters.

    It is only ever passed as one argument (to the editor), never written into a config line,
    so spaces are allowed.
    """
    if not value or not (value.startswith(("/", "~/")) or value == "~"):
        raise InvalidValue(f"The remote folder {value!r} must be an absolute path such as /content.")
    unsafe = next((c for c in value if unicodedata.category(c) in _UNSAFE_IN_PATH), None)
    if unsafe is not None:
        raise InvalidValue(f"The remote folder {value!r} contains the control or invisible character "
                           f"U+{ord(unsafe):04X}: give the folder without it.")
    return value


def jump(value: str) -> str:
    """A ProxyJump hop: `[user@]host[:port]` (a registered name is a host name too); one hop only."""
    rest = value
    if "@" in rest:
        login, rest = rest.rsplit("@", 1)
        user(login)
    if rest.count(":") == 1:
        rest, number = rest.split(":")
        port(number)
    try:
        host(rest)
    except InvalidValue:
        raise InvalidValue(f"The jump host {value!r} is not [user@]host[:port]: give one host, "
                           "a registered name or for example 'me@gate.example.edu'.") from None
    return value


_COLAB_SESSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# The server's assignment id, copied from the CLI's session file into a ProxyCommand line.
_COLAB_ENDPOINT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
# The CLI turns any other --gpu value into an A100 without a word, so rdev checks the name itself.
COLAB_GPUS = ("T4", "L4", "G4", "H100", "A100")


def colab_session(value: str) -> str:
    """A session name of Google's colab CLI, as it goes into a ProxyCommand: no space, quote or `%`."""
    if not isinstance(value, str) or not _COLAB_SESSION.fullmatch(value):
        raise InvalidValue(f"The Colab session name {value!r} cannot be used: use 1 to 64 letters, digits, '.', "
                           "'_' or '-', starting with a letter or digit (for example 'gpu').")
    return value


def colab_endpoint(value: object) -> str:
    if not isinstance(value, str) or not _COLAB_ENDPOINT.fullmatch(value):
        raise InvalidValue(f"The Colab runtime id {value!r} is not one Google's colab CLI writes.")
    return value


def colab_gpu(value: str) -> str:
    upper = value.upper() if value.isascii() else ""
    if upper not in COLAB_GPUS:
        raise InvalidValue(f"The GPU {value!r} is not one Colab offers: use {', '.join(COLAB_GPUS)}.")
    return upper

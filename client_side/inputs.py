"""What the user typed, checked by bootstrap's validators and turned into rdev's BadInput (exit 2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bootstrap import validate
from client_side.errors import BadInput, split

T = TypeVar("T")


def checked(check: Callable[[T], T], value: T) -> T:
    """`check(value)`, with the validator's sentence as bad input."""
    try:
        return check(value)
    except validate.InvalidValue as err:
        raise BadInput(*split(str(err))) from None


def name(value: str) -> str:
    return checked(validate.name, value)


def folder(value: str) -> str:
    return checked(validate.remote_path, value)


def key_file(value: str) -> str:
    """A private key of the user's on this laptop (`--identity`), as an absolute path to an existing file."""
    path = Path(value).expanduser().absolute()
    if not path.is_file():
        raise BadInput(f"There is no key file {value}", "give the path of your private key, e.g. ~/.ssh/id_ed25519.")
    if path.suffix == ".pub":
        raise BadInput(f"{value} is a public key", "give the private key beside it (the same name without .pub).")
    return str(path)


def python(value: str) -> str:
    """A Python on the host (`--python`): a command or a path there, one line of printable text."""
    if not value.strip() or not value.isprintable():
        raise BadInput(f"The Python {value!r} is not a command or path", "give the path of a Python on the host, "
                       "e.g. --python ~/venv/bin/python or --python python3.11.")
    return value

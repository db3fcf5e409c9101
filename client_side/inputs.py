"""What the user typed, checked by bootstrap's validators and turned into rdev's BadInput (exit 2)."""

from __future__ import annotations

from collections.abc import Callable
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

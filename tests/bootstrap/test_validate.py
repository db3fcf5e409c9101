"""Unit tests for bootstrap/validate.py: what may go into an SSH config line, a ticket or a command line.

OpenSSH gives meaning to white space, quotes, `#`, `%`, `=`, `*`, `?`, `!` and `,`, and a leading `-`
turns a value into an option, so each of those must be refused before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from bootstrap import validate
from bootstrap.validate import InvalidValue

# Characters OpenSSH reads as separators, comments, tokens, patterns or list syntax.
SPECIAL = [" ", "\t", "\n", '"', "'", "#", "%", "=", "*", "?", "!", ","]


def sentence_count(message: str) -> int:
    """Sentences in `message`: a `.`, `!` or `?` ending the text or followed by space and a capital."""
    return len(re.findall(r"[.!?](?:\s+(?=[A-Z(])|$)", message.strip()))


def refusal(check: Callable[[Any], Any], value: Any) -> str:
    """The message `check` refuses `value` with, after checking it is short, single-line and names the value."""
    with pytest.raises(InvalidValue) as caught:
        check(value)
    message = str(caught.value)
    assert "\n" not in message, f"message spans lines: {message!r}"
    assert 1 <= sentence_count(message) <= 2, message
    named = repr(value) in message or (value == "" and "empty value" in message)
    assert named, f"message does not name the value {value!r}: {message}"
    return message


def with_each_special(template: str) -> list[str]:
    return [template.replace("X", c) for c in SPECIAL]


# ------------------------------------------------------------------------------------------------ names


@pytest.mark.parametrize("value", ["colab", "gpu1", "clusteria-2", "a.b_c", "a", "9", "a" * 63])
def test_name_accepted(value: str) -> None:
    assert validate.name(value) == value


@pytest.mark.parametrize(("value", "lowered"), [("GPU1", "gpu1"), ("Colab", "colab"), ("Clusteria-2", "clusteria-2")])
def test_name_is_lowered(value: str, lowered: str) -> None:
    """VS Code lower-cases Remote-SSH host names, so rdev stores them lowered."""
    assert validate.name(value) == lowered


@pytest.mark.parametrize(
    "value",
    ["", " ", "colab ", " colab", "colab\n", *with_each_special("gpuX1"), "-colab", "-oProxyCommand", ".colab",
     "_colab", "a" * 64, "colab/x", "colab:1"],
)
def test_name_refused(value: str) -> None:
    refusal(validate.name, value)


@pytest.mark.parametrize("value", ["\u212aaggle", "gpu\u212a", "\u212a"])
def test_name_non_ascii_refused_before_lowering(value: str) -> None:
    """KELVIN SIGN lower-cases to ASCII 'k': the look-alike must not become the alias 'kaggle'."""
    assert value.lower().isascii()
    refusal(validate.name, value)


# ------------------------------------------------------------------------------------------------ hosts


@pytest.mark.parametrize(
    "value",
    ["localhost", "gpu1", "gpu1.example.edu", "abc-def.trycloudflare.com", "0.tcp.ngrok.io", "clusteria-2",
     "GPU1.Example.EDU", "127.0.0.1", "10.0.0.254", "::1", "fe80::1", "2001:db8::1", ".".join(["a" * 63] * 3)],
)
def test_host_accepted(value: str) -> None:
    assert validate.host(value) == value


def test_ipv6_is_normalised() -> None:
    assert validate.host("2001:0DB8:0000::0001") == "2001:db8::1"


@pytest.mark.parametrize(
    "value",
    ["", *with_each_special("gpuX1.example.edu"), "gpu1.example.edu\n", "-gpu1", "-oProxyCommand=sh",
     "a..b", ".a", "a.", "..", "gpu1/x", "a" * 64, ".".join(["a" * 63] * 4), "1.2.3.4:22", "[::1]"],
)
def test_host_refused(value: str) -> None:
    refusal(validate.host, value)


@pytest.mark.parametrize("value", ["fe80::1%eth0", "fe80::1%x y", "fe80::1%x\nProxyCommand sh -c id", "::1%#="])
def test_host_scoped_ipv6_refused(value: str) -> None:
    """A `%` is an ssh token character, and a zone id can hold anything, so these must not reach a config."""
    refusal(validate.host, value)


# ------------------------------------------------------------------------------------------------ users


@pytest.mark.parametrize("value", ["root", "jdoe", "j.doe@school.edu", "_svc", "j-doe", "JDoe", "a" * 64])
def test_user_accepted(value: str) -> None:
    assert validate.user(value) == value


@pytest.mark.parametrize(
    "value",
    ["", " ", *with_each_special("jXdoe"), "jdoe\n", "-root", "-oProxyCommand", ".jdoe", "@school.edu", "a" * 65,
     "j/doe", "j:doe"],
)
def test_user_refused(value: str) -> None:
    refusal(validate.user, value)


# ------------------------------------------------------------------------------------------------ ports


@pytest.mark.parametrize(("value", "number"), [(1, 1), (22, 22), (65535, 65535), ("2222", 2222)])
def test_port_accepted(value: int | str, number: int) -> None:
    assert validate.port(value) == number


@pytest.mark.parametrize("value", [0, 65536, -1, 70000, "abc", "", "0", "22x", True, False, None])
def test_port_refused(value: Any) -> None:
    """Booleans are ints to Python, but `true` in a ticket or flag is no port."""
    refusal(validate.port, value)


@pytest.mark.parametrize("value", ["\u00b2", "\u0662\u0662", "\uff12\uff12", "\u0968\u0968",
                                   pytest.param("0" * 5000 + "22", id="5002-digits")])
def test_port_takes_ascii_digits_only(value: str) -> None:
    """str.isdigit() takes '²' (which int() then refuses with a traceback) and other scripts' digits (which int()
    reads), and int() refuses more than 4300 digits: each must be a sentence, not a port or a traceback."""
    refusal(validate.port, value)


# ------------------------------------------------------------------------------------------- remote paths


@pytest.mark.parametrize(
    "value", ["/", "/content", "/kaggle/working", "~", "~/x", "~/my project", "/content/my project", "/a#b%c",
              "/content/donn\u00e9es", "~/\u6570\u636e"]
)
def test_remote_path_accepted(value: str) -> None:
    """The path is only ever passed as one argument, so spaces and config characters are fine."""
    assert validate.remote_path(value) == value


@pytest.mark.parametrize(
    "value",
    ["", "content", "./content", "../x", " /content", "~user/x",
     "/content\n", "/a\nb", "/a\rb", "/a\tb", "/a\x00b", "/a\x1bb", "/a\x7fb", "~/\x07"],
)
def test_remote_path_refused(value: str) -> None:
    refusal(validate.remote_path, value)


@pytest.mark.parametrize(
    "value",
    ["/a\x85b", "/a\x9bb", "/a\u2028b", "/a\u2029b", "/a\u202eb", "/a\u200bb", "/a\ufeffb", "/content\ud800"],
)
def test_remote_path_refuses_non_ascii_controls(value: str) -> None:
    """C1 controls, line separators, bidi overrides, zero widths and lone surrogates (which no file can store)."""
    assert "U+" in refusal(validate.remote_path, value)


@pytest.mark.parametrize("value", ["gate", "me@gate.example.edu", "gate.example.edu:2222", "me@10.0.0.1:22"])
def test_jump_accepts_one_hop(value: str) -> None:
    assert validate.jump(value) == value


@pytest.mark.parametrize("value", ["", "a b", "gate,other", "-oProxyCommand=x", "me@", "gate:0", "gate:ssh",
                                   "%h", "gate\nHost *"])
def test_jump_refuses_what_is_not_one_hop(value: str) -> None:
    with pytest.raises(validate.InvalidValue):
        validate.jump(value)


@pytest.mark.parametrize("value", ["gate:\u0662\u0662", "gate:\u00b2", "me@gate:\uff12\uff12"])
def test_jump_refuses_non_ascii_port(value: str) -> None:
    with pytest.raises(validate.InvalidValue):
        validate.jump(value)

"""JSONC edits of settings files: the exact text after an edit, and every byte outside our keys kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import json5
import pytest

from client_side.editors import jsonc

PLATFORM = ("remote.SSH.remotePlatform", "box")
TIMEOUT = ("remote.SSH.connectTimeout",)
# What set_value(PLATFORM) inserts into a multi-line top-level object, at each indent style.
BLOCK4 = '    "remote.SSH.remotePlatform": {\n        "box": "linux"\n    },\n'
BLOCK2 = '  "remote.SSH.remotePlatform": {\n    "box": "linux"\n  },\n'
BLOCK_TAB = '\t"remote.SSH.remotePlatform": {\r\n\t\t"box": "linux"\r\n\t},\r\n'


@dataclass(frozen=True)
class Case:
    original: str
    after: str  # the exact text after set_value(PLATFORM, "linux")
    inserted: str  # the text set_value added; taking it out of `after` gives `original`


CASES: dict[str, Case] = {
    "vscode-4-spaces": Case(
        '{\n    "editor.fontSize": 14,\n    "files.autoSave": "afterDelay"\n}\n',
        '{\n' + BLOCK4 + '    "editor.fontSize": 14,\n    "files.autoSave": "afterDelay"\n}\n',
        BLOCK4),
    "comments": Case(
        '{ // top\n'
        '    /* before the first member */\n'
        '    "a": 1, // the end of a\'s line\n'
        '    "b": [1, 2], /* block */\n'
        '    "c": "x"\n'
        '}\n',
        '{ // top\n' + BLOCK4 +
        '    /* before the first member */\n'
        '    "a": 1, // the end of a\'s line\n'
        '    "b": [1, 2], /* block */\n'
        '    "c": "x"\n'
        '}\n',
        BLOCK4),
    "trailing-commas": Case(
        '{\n    "files.exclude": {\n        "**/.git": true,\n    },\n'
        '    "list": [\n        "x",\n        "y",\n    ],\n}\n',
        '{\n' + BLOCK4 + '    "files.exclude": {\n        "**/.git": true,\n    },\n'
        '    "list": [\n        "x",\n        "y",\n    ],\n}\n',
        BLOCK4),
    "other-hosts": Case(
        '{\n    "remote.SSH.remotePlatform": {\n        "gpu1": "linux",\n        "mac": "macOS"\n    },\n'
        '    "x": true\n}\n',
        '{\n    "remote.SSH.remotePlatform": {\n        "box": "linux",\n        "gpu1": "linux",\n'
        '        "mac": "macOS"\n    },\n    "x": true\n}\n',
        '        "box": "linux",\n'),
    "existing-timeout": Case(
        '{\n    "remote.SSH.connectTimeout": 20,\n    "x": 1\n}\n',
        '{\n' + BLOCK4 + '    "remote.SSH.connectTimeout": 20,\n    "x": 1\n}\n',
        BLOCK4),
    "crlf-tabs": Case(
        '{\r\n\t"a": 1,\r\n\t"b": {\r\n\t\t"c": 2\r\n\t}\r\n}\r\n',
        '{\r\n' + BLOCK_TAB + '\t"a": 1,\r\n\t"b": {\r\n\t\t"c": 2\r\n\t}\r\n}\r\n',
        BLOCK_TAB),
    "bom": Case(
        '\ufeff{\n    "a": 1\n}\n',
        '\ufeff{\n' + BLOCK4 + '    "a": 1\n}\n',
        BLOCK4),
    "one-line": Case(
        '{"a": 1, "b": [true, null]}',
        '{"remote.SSH.remotePlatform": {"box": "linux"}, "a": 1, "b": [true, null]}',
        '"remote.SSH.remotePlatform": {"box": "linux"}, '),
    "one-line-spaced": Case(
        '{ "a": 1 }',
        '{ "remote.SSH.remotePlatform": {"box": "linux"}, "a": 1 }',
        '"remote.SSH.remotePlatform": {"box": "linux"}, '),
    "two-spaces": Case(
        '{\n  "a": 1,\n  "b": {\n    "c": 2\n  }\n}\n',
        '{\n' + BLOCK2 + '  "a": 1,\n  "b": {\n    "c": 2\n  }\n}\n',
        BLOCK2),
    "comment-after-last": Case(
        '{\n    "a": 1 // last\n}\n',
        '{\n' + BLOCK4 + '    "a": 1 // last\n}\n',
        BLOCK4),
}

NEW_FILE = '{\n    "remote.SSH.remotePlatform": {\n        "box": "linux"\n    }\n}\n'
# Files with no member at all: the result is exact, but removing gives an equivalent text, not the same bytes.
EMPTY_CASES: dict[str, tuple[str, str]] = {
    "zero-bytes": ("", NEW_FILE),
    "whitespace-only": ("  \n\n", NEW_FILE),
    "braces": ("{}", NEW_FILE.rstrip("\n")),
    "braces-on-two-lines": ("{\n}\n", NEW_FILE),
}


def value_of(text: str) -> Any:
    return json5.loads(text.lstrip(jsonc.BOM)) if text.strip() else {}


@pytest.mark.parametrize("name", CASES)
def test_set_gives_exact_text(name: str) -> None:
    """Adding our host gives exactly the expected text, in the file's own indent and newline style."""
    case = CASES[name]
    after = jsonc.set_value(case.original, PLATFORM, "linux")
    assert after == case.after
    assert jsonc.get(after, PLATFORM) == "linux"


@pytest.mark.parametrize("name", CASES)
def test_bytes_outside_our_member_are_unchanged(name: str) -> None:
    """Taking the inserted text back out of the result leaves the user's bytes, all of them."""
    case = CASES[name]
    after = jsonc.set_value(case.original, PLATFORM, "linux")
    assert after.count(case.inserted) == 1
    assert after.replace(case.inserted, "", 1) == case.original


@pytest.mark.parametrize("name", CASES)
def test_set_then_remove_gives_original_bytes(name: str) -> None:
    """remove() promises the original bytes back after set_value() added a member."""
    case = CASES[name]
    back = jsonc.remove(jsonc.set_value(case.original, PLATFORM, "linux"), PLATFORM)
    assert_original_back(name, back, case.original)


# In a file written on one line the new remotePlatform object is written on one line too, and an
# emptied one-line object cannot be told from one the user wrote (`{}`), so it stays: same meaning.
ONE_LINE = {"one-line", "one-line-spaced"}


def assert_original_back(name: str, back: str, original: str) -> None:
    if name in ONE_LINE:
        assert back.replace('"remote.SSH.remotePlatform": {}, ', "", 1) == original
    else:
        assert back == original


@pytest.mark.parametrize("name", ["vscode-4-spaces", "comments", "crlf-tabs", "bom", "one-line", "two-spaces"])
@pytest.mark.parametrize("order", ["timeout-first", "platform-first"])
def test_both_keys_added_then_removed_in_either_order(name: str, order: str) -> None:
    """A tunnel host's two keys come out again in either order, leaving the original bytes."""
    original = CASES[name].original
    both = jsonc.set_value(jsonc.set_value(original, PLATFORM, "linux"), TIMEOUT, 60)
    assert jsonc.get(both, TIMEOUT) == 60 and jsonc.get(both, PLATFORM) == "linux"
    assert value_of(both) == {**value_of(original), "remote.SSH.connectTimeout": 60,
                              "remote.SSH.remotePlatform": {"box": "linux"}}
    paths = [TIMEOUT, PLATFORM] if order == "timeout-first" else [PLATFORM, TIMEOUT]
    for path in paths:
        both = jsonc.remove(both, path)
    assert_original_back(name, both, original)


def test_timeout_added_to_vscode_file_exact_text() -> None:
    """The timeout goes first in the object, on its own line, at the file's indent."""
    after = jsonc.set_value(CASES["vscode-4-spaces"].original, TIMEOUT, 60)
    assert after == '{\n    "remote.SSH.connectTimeout": 60,\n    "editor.fontSize": 14,\n' \
                    '    "files.autoSave": "afterDelay"\n}\n'


@pytest.mark.parametrize("name", EMPTY_CASES)
def test_file_without_members_gets_a_new_object(name: str) -> None:
    """The empty file, whitespace and `{}` get exactly a VS Code-style object with our member."""
    original, expected = EMPTY_CASES[name]
    after = jsonc.set_value(original, PLATFORM, "linux")
    assert after == expected
    # Not the same bytes back (`{}` becomes `{\n}`, the empty file `{\n}\n`): the module only
    # promises the original bytes for an object that had members; here the JSON value is the same.
    back = jsonc.remove(after, PLATFORM)
    assert value_of(back) == value_of(original) == {}
    assert "remote.SSH" not in back


def test_our_host_with_another_value_is_replaced_in_place() -> None:
    """An existing "box": "windows" becomes "linux" where it stands; nothing else moves."""
    original = ('{\n    // mine\n    "remote.SSH.remotePlatform": {\n        "gpu1": "linux",\n'
                '        "box": "windows" // old\n    },\n    "x": 1\n}\n')
    after = jsonc.set_value(original, PLATFORM, "linux")
    assert after == original.replace('"box": "windows"', '"box": "linux"')
    removed = jsonc.remove(after, PLATFORM)
    assert removed == ('{\n    // mine\n    "remote.SSH.remotePlatform": {\n        "gpu1": "linux" // old\n'
                       '    },\n    "x": 1\n}\n')
    assert jsonc.get(removed, ("remote.SSH.remotePlatform", "gpu1")) == "linux"


def test_existing_timeout_replaced_in_place_and_put_back() -> None:
    """20 is raised to 60 in place; setting 20 again gives the original bytes."""
    original = CASES["existing-timeout"].original
    raised = jsonc.set_value(original, TIMEOUT, 60)
    assert raised == original.replace(": 20,", ": 60,")
    assert jsonc.set_value(raised, TIMEOUT, 20) == original


def test_remove_of_missing_member_returns_text_unchanged() -> None:
    """Removing what is not there returns the same string."""
    text = CASES["comments"].original
    assert jsonc.remove(text, PLATFORM) == text
    assert jsonc.remove(text, ("a", "b")) == text


def test_remove_keeps_other_hosts_and_a_comment_inside() -> None:
    """The platform object stays while it holds another host or a comment of the user's."""
    with_comment = '{\n    "remote.SSH.remotePlatform": {\n        // mine\n    },\n    "a": 1\n}\n'
    after = jsonc.set_value(with_comment, PLATFORM, "linux")
    assert after == ('{\n    "remote.SSH.remotePlatform": {\n        // mine\n        "box": "linux"\n'
                     '    },\n    "a": 1\n}\n')
    assert jsonc.remove(after, PLATFORM) == with_comment


def test_existing_empty_platform_object_survives_set_then_remove() -> None:
    """A user's own empty `"remote.SSH.remotePlatform": {}` is filled in place and left as it was."""
    original = '{\n    "remote.SSH.remotePlatform": {},\n    "a": 1\n}\n'
    after = jsonc.set_value(original, PLATFORM, "linux")
    assert jsonc.get(after, PLATFORM) == "linux"
    assert jsonc.remove(after, PLATFORM) == original


UNREADABLE = {
    "unterminated-block-comment": '{\n    /* open\n    "a": 1\n}\n',
    "missing-value": '{"a": }',
    "top-level-array": '[{"a": 1}]',
    "only-a-comment": "// nothing but a comment\n",
    "garbage": "garbage, not json",
    "unclosed-object": '{"a": 1',
    "top-level-string": '"text"',
}


@pytest.mark.parametrize("name", UNREADABLE)
def test_unparseable_raises_one_line_unreadable(name: str) -> None:
    """Every entry point refuses text it cannot edit, with a one-line reason."""
    text = UNREADABLE[name]
    for call in (lambda: jsonc.set_value(text, PLATFORM, "linux"), lambda: jsonc.get(text, PLATFORM),
                 lambda: jsonc.remove(text, PLATFORM)):
        with pytest.raises(jsonc.Unreadable) as caught:
            call()
        message = str(caught.value)
        assert message.strip() and "\n" not in message


def test_top_level_array_reason_names_it() -> None:
    """A valid JSON array is refused for being an array, not for a syntax error."""
    with pytest.raises(jsonc.Unreadable, match="top level is not an object"):
        jsonc.set_value("[1, 2]", PLATFORM, "linux")


NESTED = ('{\n    // c\n    "remote.SSH.remotePlatform": "linux",\n'
          '    "n": {"a": {"b": [1, {"c": 2},]}, /* x */ "s": "t"},\n    "z": 3.5,\n}\n')


@pytest.mark.parametrize("path, expected", [
    (("z",), 3.5),
    (("n", "s"), "t"),
    (("n", "a"), {"b": [1, {"c": 2}]}),
    (("n", "a", "b"), [1, {"c": 2}]),
    (("remote.SSH.remotePlatform",), "linux"),
    (("missing",), None),
    (("n", "missing"), None),
    (("n", "a", "b", "c"), None),  # through an array
    (("remote.SSH.remotePlatform", "box"), None),  # through a string
    (("z", "y"), None),  # through a number
])
def test_get(path: tuple[str, ...], expected: Any) -> None:
    """get() reads nested values, and None for a missing path or one through a non-object."""
    assert jsonc.get(NESTED, path) == expected


def test_intermediate_non_object_is_not_clobbered() -> None:
    """A string where our object belongs makes set_value refuse; remove leaves the text alone."""
    with pytest.raises(jsonc.Unreadable, match="remote.SSH.remotePlatform"):
        jsonc.set_value(NESTED, PLATFORM, "linux")
    assert jsonc.remove(NESTED, PLATFORM) == NESTED


@pytest.mark.parametrize("text", ["", "  \n\n"])
def test_get_and_remove_on_empty_file(text: str) -> None:
    """An empty file holds nothing to get or remove (set_value takes it as `{}`)."""
    assert jsonc.get(text, PLATFORM) is None
    assert jsonc.remove(text, PLATFORM) == text


@pytest.mark.parametrize("original, path, expected", [
    ('{\n    "remote.SSH.connectTimeout": 60 /* for colab */,\n    "editor.fontSize": 14\n}',
     TIMEOUT, '{\n    "editor.fontSize": 14\n}'),
    ('{\n    "remote.SSH.remotePlatform": {\n        "box": "linux" /* T4 */,\n        "x": "linux"\n    }\n}',
     PLATFORM, '{\n    "remote.SSH.remotePlatform": {\n        "x": "linux"\n    }\n}'),
])
def test_a_comment_before_the_comma_goes_with_the_member(original: str, path: tuple[str, ...], expected: str) -> None:
    """The user annotated rdev's line: the member, its comment and its comma go; the file still parses."""
    assert jsonc.remove(original, path) == expected

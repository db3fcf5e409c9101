"""Byte-faithful edits of a JSONC file such as an editor's settings.json.

json-five parses (it reads comments and trailing commas, and tells where each node starts and
ends); the edits are plain splices at those places, so every byte outside the member we add or
take out stays as it was. Its own round-trip dumper is not used: it hangs the comment that ends a
line on the next member, so taking a member out would take the user's comment with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

BOM = "\ufeff"
DEFAULT_INDENT = "    "  # what VS Code writes into a new settings.json


class Unreadable(Exception):
    """The text is not a JSONC object we can edit; the file must be left alone."""


@dataclass(frozen=True)
class _Member:
    key_start: int
    value_start: int
    value_end: int
    value: Any  # the json-five node


@dataclass(frozen=True)
class _Object:
    start: int  # the offset of "{"
    end: int  # the offset just after "}"
    members: dict[str, _Member]  # by key; for a repeated key the last one, which is the one editors use


def get(text: str, path: tuple[str, ...]) -> Any:
    """The value at `path` (keys from the top-level object down), or None when it is not there."""
    from json5.loader import DefaultLoader

    if not text.strip():
        return None
    member = _find(_Document(text), path)
    return None if member is None else DefaultLoader().load(member.value)


def set_value(text: str, path: tuple[str, ...], value: Any) -> str:
    """`text` with `value` at `path`: an existing value is replaced where it stands; a missing member
    is added first in its object, on a line of its own when the object spans lines."""
    result = _set(text, path, value)
    _verify(result, path, value)
    return result


def _verify(result: str, path: tuple[str, ...], value: Any) -> None:
    """The edited text parses and holds what was asked at `path`, else nothing may be written."""
    try:
        ok = get(result, path) == value
    except Unreadable:
        ok = False
    if not ok:
        raise Unreadable("rdev's edit would not come out right in this layout")


def _set(text: str, path: tuple[str, ...], value: Any) -> str:
    doc = _Document(text if text.strip() else "{}\n")
    obj, depth = doc.root, 1
    for i, key in enumerate(path):
        member = obj.members.get(key)
        if member is None:
            nested = value
            for inner in reversed(path[i + 1:]):
                nested = {inner: nested}
            return doc.bom + doc.insert(obj, key, nested, depth)
        if i == len(path) - 1:
            return doc.bom + doc.body[:member.value_start] + doc.render(value, depth) + doc.body[member.value_end:]
        obj, depth = doc.object_at(member, key), depth + 1
    raise ValueError("empty path")


def remove(text: str, path: tuple[str, ...]) -> str:
    """`text` without the member at `path` (and its comma). An object left empty by that (with no
    comment in it) goes too, so adding then removing a member gives the original bytes back. An empty
    object written on one line (`{}`) stays: `set_value` fills those in place, so it was there before."""
    if not text.strip():
        return text
    doc = _Document(text)
    if _find(doc, path) is None:
        return text
    result = _remove(doc, path)
    _verify(result, path, None)
    return result


def _remove(doc: _Document, path: tuple[str, ...]) -> str:
    parent = _parent(doc, path)
    assert parent is not None  # the caller found the member
    text = doc.bom + doc.cut(parent, parent.members[path[-1]])
    if len(path) > 1:
        after = _Document(text)
        emptied = _find(after, path[:-1])
        if emptied is not None and _is_empty(after, emptied):
            return _remove(after, path[:-1])
    return text


def _find(doc: _Document, path: tuple[str, ...]) -> _Member | None:
    parent = _parent(doc, path)
    return None if parent is None else parent.members.get(path[-1])


def _parent(doc: _Document, path: tuple[str, ...]) -> _Object | None:
    """The object that holds (or would hold) the member at `path`; None when the way there is missing."""
    obj = doc.root
    for key in path[:-1]:
        member = obj.members.get(key)
        if member is None:
            return None
        try:
            obj = doc.object_at(member, key)
        except Unreadable:
            return None
    return obj


def _is_empty(doc: _Document, member: _Member) -> bool:
    inner = doc.body[member.value_start + 1:member.value_end - 1]
    return inner.strip() == "" and "\n" in inner


class _Document:
    """The parsed text, with offsets for json-five's (line, column) positions."""

    def __init__(self, text: str) -> None:
        import json5
        from json5.loader import ModelLoader
        from json5.model import JSONObject

        self.bom = BOM if text.startswith(BOM) else ""
        self.body = text[len(self.bom):]
        try:
            model = json5.loads(self.body, loader=ModelLoader())
        except Exception as err:  # noqa: BLE001 - json-five raises more than JSON5DecodeError on bad text
            raise Unreadable(_first_error(str(err)) or type(err).__name__) from None
        if not isinstance(model.value, JSONObject):
            raise Unreadable("its top level is not an object")
        self.newline = "\r\n" if "\r\n" in self.body else "\n"
        self._line_starts = [0]
        for i, char in enumerate(self.body):
            if char == "\n":
                self._line_starts.append(i + 1)
        self.root = self._object(model.value)
        self.unit = self._indent_unit()

    def object_at(self, member: _Member, key: str) -> _Object:
        from json5.model import JSONObject

        if not isinstance(member.value, JSONObject):
            raise Unreadable(f'"{key}" is not an object')
        return self._object(member.value)

    def insert(self, obj: _Object, key: str, value: Any, depth: int) -> str:
        inner = self.body[obj.start + 1:obj.end - 1]
        rest_of_line = inner.split("\n", 1)[0]
        if not obj.members and depth > 1 and "\n" not in inner:
            return self.body[:obj.start + 1] + f"{json.dumps(key)}: {json.dumps(value)}" + self.body[obj.start + 1:]
        if not obj.members:
            close = obj.end - 1
            line_start = self._line_start(close)
            own_line = self.body[line_start:close].strip() == ""
            member = f"{json.dumps(key)}: {self.render(value, depth)}"
            if own_line:  # "}" on a line of its own: the member goes on the line before it
                return (self.body[:line_start] + self.unit * depth + member + self.newline
                        + self.body[line_start:])
            return (self.body[:close] + self.newline + self.unit * depth + member + self.newline
                    + self.unit * (depth - 1) + self.body[close:])
        if "\n" in inner and (rest_of_line.strip() == "" or rest_of_line.strip().startswith("//")):
            at = obj.start + 1 + len(rest_of_line) + 1  # the line after "{", above any comment on the first member
            indent = self._indent_of(min(m.key_start for m in obj.members.values()), depth)
            member = f"{json.dumps(key)}: {self.render(value, depth)}"
            return self.body[:at] + indent + member + "," + self.newline + self.body[at:]
        # An object on one line stays on one line.
        gap = " " if inner.startswith(" ") else ""
        member = f"{json.dumps(key)}: {json.dumps(value)}"
        return self.body[:obj.start + 1] + gap + member + "," + ("" if gap else " ") + self.body[obj.start + 1:]

    def cut(self, parent: _Object, member: _Member) -> str:
        body, start, end = self.body, member.key_start, member.value_end
        after = self._past_blanks(end)
        if after < len(body) and body[after] == ",":
            end = after + 1
        line_start = self._line_start(start)
        line_end = body.find("\n", end)
        line_end = len(body) if line_end < 0 else line_end + 1
        if body[line_start:start].strip() == "" and body[end:line_end].strip() == "":
            return body[:line_start] + body[line_end:]  # the member had its own lines: they go
        if end == member.value_end:  # the last member, written inline: take the comma before it
            before = start - 1
            while before > parent.start and body[before] in " \t\r\n":
                before -= 1
            if body[before] == ",":
                return body[:before] + body[member.value_end:]
            return body[:start] + body[end:]
        while end < len(body) and body[end] == " ":
            end += 1
        return body[:start] + body[end:]

    def _past_blanks(self, at: int) -> int:
        """The offset of the next character after `at` that is not white space or a comment."""
        body = self.body
        while at < len(body):
            if body[at] in " \t\r\n":
                at += 1
            elif body.startswith("//", at):
                at = body.find("\n", at) if "\n" in body[at:] else len(body)
            elif body.startswith("/*", at):
                at = body.index("*/", at) + 2
            else:
                break
        return at

    def render(self, value: Any, depth: int) -> str:
        """`value` as JSON, its inner lines indented for `depth`, in the file's newline style."""
        text = json.dumps(value, indent=self.unit, ensure_ascii=False)
        return text.replace("\n", self.newline + self.unit * depth)

    def _object(self, node: Any) -> _Object:
        members: dict[str, _Member] = {}
        for key, value in node.key_value_pairs:
            characters = getattr(key, "characters", None)
            name: str = getattr(key, "name", "") if characters is None else characters
            value_start, value_end = self._span(value)
            members[name] = _Member(self._span(key)[0], value_start, value_end, value)
        start, end = self._span(node)
        return _Object(start, end, members)

    def _span(self, node: Any) -> tuple[int, int]:
        return (self._line_starts[node.lineno - 1] + node.col_offset,
                self._line_starts[node.end_lineno - 1] + node.end_col_offset)

    def _line_start(self, offset: int) -> int:
        return self.body.rfind("\n", 0, offset) + 1

    def _indent_of(self, offset: int, depth: int) -> str:
        lead = self.body[self._line_start(offset):offset]
        return lead if lead.strip() == "" else self.unit * depth

    def _indent_unit(self) -> str:
        """The file's own indentation step, read off the first top-level member on a line of its own."""
        if self.root.members:
            first = min(m.key_start for m in self.root.members.values())
            lead = self.body[self._line_start(first):first]
            if lead and lead.strip() == "":
                return lead
        return DEFAULT_INDENT


def _first_error(message: str) -> str:
    """json-five's primary error on one line (it may list several, one per line)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) > 2 and lines[1].startswith("The primary error was"):
        return lines[2]
    return lines[0] if lines else ""

"""A ticket host (a notebook runtime, any box running `python -m colab_side serve`): prepared from its ticket.

The ticket says how the host is reached (its address, or cloudflared's ProxyCommand) and which
host keys to pin. It comes from `--ticket` (`-` for stdin), `--ticket-file`, piped stdin, the
host's remembered ticket file when that holds a newer ticket, or a paste at the prompt.
"""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from bootstrap import __version__, binaries, ticket as tickets
from client_side.errors import BadInput, RdevError, split
from client_side.kinds.pipeline import Prepared
from client_side.local import registry
from client_side.local.registry import HostEntry

PIPE_WAIT = 0.5  # how long piped stdin may take to show its first bytes
PASTE_WAIT = 0.2  # how long the rest of a multi-line paste may take to arrive


def prepare(name: str, *, ticket_text: str | None, ticket_file: str | None, remembered: HostEntry | None,
            cloudflared: str | None, say: Callable[[str], None]) -> Prepared:
    ticket = read_ticket(ticket_text, ticket_file, remembered, say)
    if ticket is None:  # nothing newer: the host as it is, its pinned keys kept
        assert remembered is not None  # read_ticket asks for a ticket when there is no host to keep
        binary = _cloudflared(cloudflared, remembered) if remembered.tunnel == "cloudflared" else None
        return Prepared(entry=replace(remembered, cloudflared=binary), host_keys=None)
    _compare_versions(ticket, say)
    if ticket_file and ticket_text is None:  # remembered only when it was the one read
        kept_file: str | None = str(Path(ticket_file).expanduser().absolute())
    else:
        kept_file = remembered.ticket_file if remembered else None
    binary = _cloudflared(cloudflared, remembered) if ticket.tunnel == "cloudflared" else None
    entry = registry.from_ticket(name, ticket, cloudflared=binary, ticket_file=kept_file,
                                 editor=remembered.editor if remembered else None)
    return Prepared(entry=entry, host_keys=ticket.host_keys, done="ssh works, host key pinned")


def _compare_versions(ticket: tickets.Ticket, say: Callable[[str], None]) -> None:
    """Say when the runtime's rdev is not this laptop's: the two sides are only tested together."""
    if ticket.rdev != __version__:
        theirs = f"rdev {ticket.rdev}" if ticket.rdev else "an rdev older than 0.2.0"
        say(f"The runtime runs {theirs}, this laptop rdev {__version__}: if something fails, serve it again with this "
            "laptop's version (a notebook: a new cell from 'rdev colab cell', which carries it).")


def read_ticket(value: str | None, ticket_file: str | None = None, remembered: HostEntry | None = None,
                say: Callable[[str], None] = print) -> tickets.Ticket | None:
    """The ticket from `--ticket T` (`-` for stdin), else `--ticket-file`, else stdin when something is
    piped in, else the host's remembered ticket file when it holds a newer ticket, else a paste at the
    prompt. Of several tickets in one text (a whole cell's output), the newest. None: no new ticket,
    reconnect `remembered` as it is (an empty paste, or nothing to ask without a terminal)."""
    if value is not None:
        return _parsed(_bounded(sys.stdin, "standard input") if value == "-" else value)
    if ticket_file:
        return _parsed(_read_ticket_file(ticket_file))
    if not sys.stdin.isatty():
        piped = _piped()
        if piped.strip():
            return _parsed(piped)
    newer, why_not = _newer_remembered(remembered)
    if newer and remembered:
        say(f"Using the newer ticket in {remembered.ticket_file} (published {newer.started}){_moved(remembered, newer)}.")
        return newer
    if why_not:
        say(why_not)
    if remembered is None and not sys.stdin.isatty():
        raise BadInput("No ticket was given", "pass --ticket (the line the notebook printed), --ticket-file, or pipe "
                       "the ticket in.")
    if remembered is None:
        return _parsed(_pasted("Paste the ticket line the notebook printed: "))
    if sys.stdin.isatty():
        pasted = _pasted(f"Paste the ticket line the notebook printed (Enter: reconnect to the server of "
                         f"{remembered.started}): ")
        if pasted.strip():
            return _parsed(pasted)
    say(f"No new ticket: reconnecting {remembered.name} as it is (server of {remembered.started}).")
    return None


def _pasted(prompt: str) -> str:
    """What the user pastes at the prompt. A paste of the whole cell output comes as several lines:
    read up to the first ticket line, then whatever else the paste brought (a newer ticket may
    follow), so that none of it is left for the shell to run once rdev exits."""
    lines = [input(prompt)]
    while lines[-1].strip() and not lines[-1].lstrip().startswith("rdev"):
        lines.append(input())
    while _arriving(PASTE_WAIT):
        line = sys.stdin.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
    return "\n".join(lines)


def _piped() -> str:
    """What is piped in on stdin, if it comes at once: a pipe that nobody writes to (an IDE's task
    runner, `sleep 30 | rdev ...`) is not waited on."""
    return _bounded(sys.stdin, "standard input") if _arriving(PIPE_WAIT, unknown=True) else ""


def _arriving(seconds: float, unknown: bool = False) -> bool:
    """True if stdin has something to read within `seconds`; `unknown` where that cannot be told
    (no file descriptor, or Windows, whose select takes sockets only)."""
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return unknown
    if os.name == "nt":
        return unknown
    return bool(select.select([fd], [], [], seconds)[0])


def _parsed(text: str) -> tickets.Ticket:
    try:
        return tickets.newest(text)
    except tickets.TicketError as err:
        raise BadInput(*split(str(err))) from None


def _bounded(stream: TextIO, where: str) -> str:
    """At most MAX_TEXT_BYTES of `stream`: a ticket is short, and /dev/zero is endless."""
    text = stream.read(tickets.MAX_TEXT_BYTES + 1)
    if len(text) > tickets.MAX_TEXT_BYTES:
        raise BadInput(f"{where} holds more than {tickets.MAX_TEXT_BYTES // 1024} KiB, far more than a ticket",
                       "give the ticket line itself (or the file the notebook wrote).")
    return text


def _read_ticket_file(path: str) -> str:
    try:
        with open(Path(path).expanduser(), encoding="utf-8", errors="replace") as handle:
            return _bounded(handle, f"The ticket file {path}")
    except OSError as err:
        raise BadInput(f"The ticket file {path} cannot be read ({err.strerror})",
                       "check the path, or pass --ticket.") from None


def _newer_remembered(entry: HostEntry | None) -> tuple[tickets.Ticket | None, str]:
    """The ticket in the host's ticket file if it was published after the one in use; else None and
    why not (empty when the host has no ticket file)."""
    if entry is None or not entry.ticket_file:
        return None, ""
    try:
        text = _read_ticket_file(entry.ticket_file)
    except BadInput:
        return None, f"There is no ticket in {entry.ticket_file} yet (not synced?)."
    try:
        ticket = _parsed(text)
    except BadInput:
        return None, f"The ticket in {entry.ticket_file} cannot be read (half synced?)."
    in_use, published = tickets.moment(entry.started), tickets.moment(ticket.started)
    if in_use is None or (published is not None and published > in_use):
        return ticket, ""
    return None, f"The ticket in {entry.ticket_file} is not newer than the one in use."


def _moved(entry: HostEntry, ticket: tickets.Ticket) -> str:
    """Where a ticket taken from the synced file leads, when that is not where the host led: a ticket that
    arrives by itself changes the server rdev trusts, and the user should see it."""
    was = f"{entry.user}@{entry.host}:{entry.port} ({entry.tunnel})"
    now = f"{ticket.user}@{ticket.host}:{ticket.port} ({ticket.tunnel})"
    return f": the server moved from {was} to {now}" if now != was else ""


def _cloudflared(explicit: str | None, remembered: HostEntry | None) -> str:
    """--cloudflared, else RDEV_CLOUDFLARED, else the one this host used before (if it is still there),
    else the usual search."""
    if (explicit is None and not os.environ.get("RDEV_CLOUDFLARED") and remembered and remembered.cloudflared
            and Path(remembered.cloudflared).is_file()):
        explicit = remembered.cloudflared
    try:
        return binaries.cloudflared(explicit)
    except binaries.BinaryUnavailable as err:
        raise RdevError(err.problem, err.fix) from None

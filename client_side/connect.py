"""`rdev connect NAME --ticket T`: ticket -> HostEntry -> config block + pinned key -> ssh probe -> editor."""

from __future__ import annotations

import sys
from typing import Callable

from bootstrap import binaries
from bootstrap import ticket as tickets
from bootstrap import validate
from client_side import editor, keys, known_hosts, probe, registry, sshconfig
from client_side.errors import BadInput, RdevError
from client_side.locking import changing_files


def read_ticket(value: str | None) -> tickets.Ticket:
    """The ticket from `--ticket T`, or stdin for `-` or when piped, or a paste at the prompt."""
    if value is None and sys.stdin.isatty():
        text = input("Paste the ticket line the notebook printed: ")
    elif value is None or value == "-":
        text = sys.stdin.read()
    else:
        text = value
    # A paste of the cell's whole output is fine: the ticket is the line that starts with 'rdev'.
    line = next((ln.strip() for ln in text.splitlines() if ln.strip().startswith("rdev")), text)
    try:
        return tickets.parse(line)
    except tickets.TicketError as err:
        raise BadInput(str(err)) from None


def checked_name(name: str) -> str:
    try:
        return validate.name(name)
    except validate.InvalidValue as err:
        raise BadInput(str(err)) from None


def connect(name: str, ticket_text: str | None, open_editor: bool, path: str | None, editor_name: str | None,
            cloudflared: str | None, say: Callable[[str], None]) -> None:
    name = checked_name(name)
    ticket = read_ticket(ticket_text)
    folder = _folder(path or ticket.workdir)
    chosen_editor = editor.find(editor_name) if open_editor else None
    entry = registry.from_ticket(name, ticket, _cloudflared(cloudflared) if ticket.tunnel == "cloudflared" else None)
    keys.public_key()
    with changing_files():
        entries = registry.load()
        sshconfig.write_entry(entry)
        known_hosts.pin(name, ticket.host_keys)
        registry.save({**entries, name: entry})
    # A shared connection to the previous server of this name would answer for the new one.
    probe.close_master(name)
    probe.check(name)
    say(f"{name}: ssh works ({entry.user}@{entry.host}:{entry.port}, host key pinned). Try: ssh {name}")
    if open_editor:
        say(editor.open_folder(name, folder, chosen_editor))


def _cloudflared(explicit: str | None) -> str:
    try:
        return binaries.cloudflared(explicit)
    except binaries.BinaryUnavailable as err:
        raise RdevError(str(err)) from None


def _folder(path: str) -> str:
    try:
        return validate.remote_path(path)
    except validate.InvalidValue as err:
        raise BadInput(str(err)) from None

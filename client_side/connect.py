"""`rdev connect NAME --ticket T`: ticket -> HostEntry -> config block + pinned key -> ssh probe -> editor."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from bootstrap import binaries, validate
from bootstrap import ticket as tickets
from client_side import editor, editor_settings, keys, known_hosts, probe, registry, sshconfig
from client_side.errors import BadInput, RdevError
from client_side.locking import changing_files
from client_side.registry import HostEntry


def read_ticket(value: str | None, ticket_file: str | None = None, remembered: HostEntry | None = None,
                say: Callable[[str], None] = print) -> tickets.Ticket:
    """The ticket from `--ticket T` (`-` for stdin), else `--ticket-file`, else stdin when piped, else the
    host's remembered ticket file when it holds a newer ticket, else a paste at the prompt."""
    if value is not None:
        text = sys.stdin.read() if value == "-" else value
    elif ticket_file:
        text = _read_ticket_file(ticket_file)
    elif not sys.stdin.isatty():
        text = sys.stdin.read()
    else:
        newer, why_not = _newer_remembered(remembered)
        if newer:
            say(f"Using the newer ticket in {remembered.ticket_file} (server started {newer.started}).")
            return newer
        if why_not:
            say(why_not)
        text = input("Paste the ticket line the notebook printed: ")
    return _parsed(text)


def _parsed(text: str) -> tickets.Ticket:
    # A paste of the cell's whole output is fine: the ticket is the line that starts with 'rdev'.
    line = next((ln.strip() for ln in text.splitlines() if ln.strip().startswith("rdev")), text)
    try:
        return tickets.parse(line)
    except tickets.TicketError as err:
        raise BadInput(str(err)) from None


def _read_ticket_file(path: str) -> str:
    try:
        return Path(path).expanduser().read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise BadInput(f"The ticket file {path} cannot be read ({err.strerror}): check the path, or pass --ticket.") from None


def _newer_remembered(entry: HostEntry | None) -> tuple[tickets.Ticket | None, str]:
    """The ticket in the host's ticket file if its server started after the one in use; else None and
    why not (empty when the host has no ticket file)."""
    if entry is None or not entry.ticket_file:
        return None, ""
    try:
        ticket = _parsed(Path(entry.ticket_file).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None, f"There is no ticket in {entry.ticket_file} yet (not synced?)."
    except BadInput:
        return None, f"The ticket in {entry.ticket_file} cannot be read (half synced?)."
    in_use = tickets.moment(entry.started)
    if in_use is None or tickets.moment(ticket.started) > in_use:
        return ticket, ""
    return None, f"The ticket in {entry.ticket_file} is not newer than the one in use."


def checked_name(name: str) -> str:
    try:
        return validate.name(name)
    except validate.InvalidValue as err:
        raise BadInput(str(err)) from None


def connect(name: str, ticket_text: str | None, open_editor: bool, path: str | None, editor_name: str | None,
            cloudflared: str | None, say: Callable[[str], None], ticket_file: str | None = None,
            password_stdin: bool = False, accept_new_host_key: bool = False) -> None:
    """A password host added with `rdev add` logs in; any other name takes a ticket."""
    name = checked_name(name)
    remembered = registry.load().get(name)
    if remembered and remembered.login and ticket_text is None and ticket_file is None:
        from client_side import login

        login.connect(remembered, password_stdin, accept_new_host_key, open_editor, path, editor_name, say)
        return
    ticket = read_ticket(ticket_text, ticket_file, remembered, say)
    folder = _folder(path or ticket.workdir)
    # A named editor is checked even with --no-open: it is remembered for the next connect.
    chosen_editor = editor.choose(editor_name, remembered and remembered.editor) if open_editor or editor_name else None
    if ticket_file and ticket_text is None:  # remembered only when it was the one read
        ticket_file = str(Path(ticket_file).expanduser().absolute())
    else:
        ticket_file = remembered.ticket_file if remembered else None
    entry = registry.from_ticket(name, ticket, _cloudflared(cloudflared) if ticket.tunnel == "cloudflared" else None,
                                 ticket_file, editor.remembered_value(editor_name) or (remembered and remembered.editor))
    keys.public_key()
    with changing_files():
        entries = registry.load()
        sshconfig.write_entry(entry)
        known_hosts.pin(name, ticket.host_keys)
        registry.save({**entries, name: entry})
        editor_settings.add(name, entry.tunnel, editor.settings_kinds(chosen_editor), say)
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

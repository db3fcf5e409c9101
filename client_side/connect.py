"""`rdev connect NAME`: pick the kind of host, let it prepare, then the one pipeline for all kinds.

A host added with `rdev add` is a password host unless a ticket is given; any other name is a
ticket host. Every input the user gave is checked before anything is written.
"""

from __future__ import annotations

from typing import Callable

from client_side import inputs, password_host, pipeline, registry, sshconfig, ticket_host


def connect(name: str, *, ticket: str | None, ticket_file: str | None, open_editor: bool, path: str | None,
            editor_name: str | None, cloudflared: str | None, password_stdin: bool, accept_new_host_key: bool,
            say: Callable[[str], None]) -> None:
    name = inputs.name(name)
    sshconfig.check_user_config()
    remembered = registry.load().get(name)
    how = pipeline.opening(open_editor=open_editor, editor_name=editor_name, path=path, remembered=remembered)
    if remembered and remembered.login and ticket is None and ticket_file is None:
        prepared = password_host.prepare(remembered, password_stdin=password_stdin,
                                         accept_new_host_key=accept_new_host_key, say=say)
    else:
        prepared = ticket_host.prepare(name, ticket_text=ticket, ticket_file=ticket_file, remembered=remembered,
                                       cloudflared=cloudflared, say=say)
    pipeline.establish(prepared, how, say)

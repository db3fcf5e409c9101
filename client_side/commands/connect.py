"""`rdev connect NAME`: pick the kind of host, let it prepare, then the one pipeline for all kinds.

A host added with `rdev add` is a password host unless a ticket is given (with `--slurm`, a node of
a Slurm job behind that login node); `--colab-session` (or a
host connected with it before) is a Colab runtime behind Google's colab CLI; any other name is a
ticket host. Every input the user gave is checked before anything is written.
"""

from __future__ import annotations

from typing import Callable

from client_side import inputs
from client_side.kinds import colab_host, password_host, pipeline, slurm_host, ticket_host
from client_side.local import registry
from client_side.ssh import config
from client_side.errors import BadInput


def connect(name: str, *, ticket: str | None, ticket_file: str | None, open_editor: bool, path: str | None,
            editor_name: str | None, cloudflared: str | None, password_stdin: bool, accept_new_host_key: bool,
            colab_session: str | None = None, gpu: str | None = None, colab: str | None = None,
            wait: float | None = None, say: Callable[[str], None]) -> None:
    name = inputs.name(name)
    wait = slurm_host.WAIT if wait is None else slurm_host.checked_wait(wait)
    config.check_user_config()
    remembered = registry.load().get(name)
    has_ticket = ticket is not None or ticket_file is not None
    if colab_session is not None and has_ticket:
        raise BadInput("--colab-session and a ticket are two ways to reach a runtime", "give one of them.")
    if colab_session is not None and remembered and remembered.login:
        raise BadInput(f"{name} is a password host (added with 'rdev add'), not a Colab runtime",
                       f"give the Colab runtime another name, or 'rdev remove {name}' first.")
    how = pipeline.opening(open_editor=open_editor, editor_name=editor_name, path=path, remembered=remembered)
    if colab_session is not None or (remembered and remembered.colab_session and not has_ticket):
        prepared = colab_host.prepare(name, session=colab_session, gpu=gpu, colab=colab, remembered=remembered,
                                      accept_new_host_key=accept_new_host_key, say=say)
    elif gpu is not None or colab is not None:
        raise BadInput(f"--gpu and --colab are for a Colab runtime reached through Google's colab CLI, which {name} "
                       "is not", f"add --colab-session SESSION to reach one (e.g. rdev connect {name} "
                       "--colab-session gpu --gpu T4).")
    elif remembered and remembered.slurm is not None and not has_ticket:
        prepared = slurm_host.prepare(remembered, password_stdin=password_stdin,
                                      accept_new_host_key=accept_new_host_key, wait=wait, say=say)
    elif remembered and remembered.login and not has_ticket:
        prepared = password_host.prepare(remembered, password_stdin=password_stdin,
                                         accept_new_host_key=accept_new_host_key, say=say)
    else:
        prepared = ticket_host.prepare(name, ticket_text=ticket, ticket_file=ticket_file, remembered=remembered,
                                       cloudflared=cloudflared, say=say)
    pipeline.establish(prepared, how, say)

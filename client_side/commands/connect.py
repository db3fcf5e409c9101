"""`rdev connect NAME`: pick the kind of host (`kinds.table`), let it prepare, then the one pipeline for all kinds.

Every input the user gave is checked before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable

from client_side import inputs
from client_side.kinds import pipeline
from client_side.kinds.table import Request, choose
from client_side.local import registry
from client_side.ssh import config as sshconfig


def connect(name: str, *, ticket: str | None, ticket_file: str | None, open_editor: bool, path: str | None,
            editor_name: str | None, cloudflared: str | None, password_stdin: bool, accept_new_host_key: bool,
            colab_session: str | None = None, gpu: str | None = None, colab: str | None = None,
            wait: float | None = None, say: Callable[[str], None]) -> None:
    name = inputs.name(name)
    if wait is not None:
        from client_side.kinds.slurm_host import checked_wait

        wait = checked_wait(wait)
    sshconfig.check_user_config()
    remembered = registry.load().get(name)
    request = Request(name=name, remembered=remembered, ticket=ticket, ticket_file=ticket_file, cloudflared=cloudflared,
                      password_stdin=password_stdin, accept_new_host_key=accept_new_host_key,
                      colab_session=colab_session, gpu=gpu, colab=colab, wait=wait)
    kind = choose(request)
    how = pipeline.opening(open_editor=open_editor, editor_name=editor_name, path=path, remembered=remembered)
    pipeline.establish(kind.prepare(request, say), how, say)

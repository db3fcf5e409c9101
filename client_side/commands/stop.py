"""`rdev stop NAME`: end what runs for a host and costs while it runs: a Colab runtime (compute units)
or a Slurm job (a GPU others wait for). The host stays known; `rdev connect NAME` starts a new one.
A Jupyter server `rdev jupyter` started there would end with it: it is stopped first, with the forward."""

from __future__ import annotations

from collections.abc import Callable

from client_side import inputs
from client_side.commands import jupyter
from client_side.errors import BadInput
from client_side.kinds import colab_host, slurm_host
from client_side.local import registry
from client_side.local.locking import ending_colab_session
from client_side.ssh import probe


def stop(name: str, say: Callable[[str], None], pull: str | None = None) -> None:
    """End NAME's runtime or job; with `pull`, copy that from NAME here first, and stop nothing if the copy fails."""
    entry = registry.get(inputs.name(name))
    if not entry.colab_session and entry.slurm is None:
        raise BadInput(f"{name} is neither a Colab runtime reached through Google's colab CLI nor a Slurm job, so rdev "
                       "has nothing to stop", "'rdev stop' ends those (a tunnel cell's server stops in its notebook "
                       "with 'python -m colab_side stop').")
    if pull is not None:
        from client_side.commands import transfer

        transfer.pull_before_stop(entry.name, pull, say=say)
    said = jupyter.end_with_host(entry.name)
    if said:
        say(said)
    if entry.colab_session:
        # Closing the master makes the editor reconnect: its ProxyCommand guards refuse from here on, and
        # the CLIs they let through before are ended, before the CLI's stop removes the session.
        session = entry.colab_session
        with ending_colab_session(session, lambda: _close_masters(session)):
            colab_host.stop(entry, say)
    else:
        slurm_host.stop(entry, say)


def _close_masters(session: str) -> None:
    """End the master connection of every host on Colab session `session`, and with it its ProxyCommand (the CLI)."""
    for entry in registry.load().values():
        if entry.colab_session == session:
            probe.close_master(entry.name)

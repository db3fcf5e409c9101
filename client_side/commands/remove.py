"""`rdev remove NAME`: take a host out of every place rdev wrote it, and end its master connection."""

from __future__ import annotations

from collections.abc import Callable

from client_side import inputs
from client_side.commands import jupyter, run_pulls
from client_side.editors import settings as editor_settings
from client_side.local import passwords, paths, registry, store
from client_side.local.locking import changing_files, setting_up
from client_side.ssh import config as sshconfig, probe


def remove(name: str, *, stop_runtime: bool = False, say: Callable[[str], None] = print) -> str:
    """Forget `name` everywhere rdev wrote it; its Colab runtime or Slurm job keeps running unless
    `stop_runtime`. A Jupyter server `rdev jupyter` started there ends, with this laptop's forward to it.
    A Slurm cluster's login node, which `rdev add --slurm` added with it, goes too."""
    name = inputs.name(name)
    if name not in registry.load() and not sshconfig.has_entry(name):
        raise registry.unknown_host(name)
    notes: list[str] = []
    if sshconfig.has_entry(name):
        notes += filter(None, [jupyter.end_with_host(name)])
    if stop_runtime:
        from client_side.commands import stop as stopping

        stopping.stop(name, say)
    with setting_up(name):
        # Close the shared connection while the config still says where its socket is (without rdev's
        # block, a socket of that name would be the user's own).
        if sshconfig.has_entry(name):
            probe.close_master(name)
        removed = store.drop(name)
        paths.proxy_log(name).unlink(missing_ok=True)
        run_pulls.forget_host(name)
    with changing_files():
        tunnels_left = any(editor_settings.slow_to_reach(e.tunnel) for e in registry.load().values())
        settings = editor_settings.forget(name, tunnel_hosts_left=tunnels_left, say=notes.append)
    forgot = removed is not None and removed.login and passwords.forget(name)
    gone = ["its SSH config block", "pinned host key"] + ["kept password"] * forgot + ["editor settings"] * settings
    if removed is not None and removed.slurm is not None and removed.jump == f"{name}-login" \
            and removed.jump in registry.load():
        notes.append(remove(removed.jump))
    return "\n".join([f"Removed {name}: {', '.join(gone)} and registry entry are gone.", *notes])

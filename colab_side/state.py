"""The runtime's state folder: every file name in it, the `stopped` marker, and `stop`.

One server lives in one state folder: sshd's config, host key, pid file and log, the tunnel's pid
file and log, the current ticket, and the background supervisor's pid file and log. `stop` works
from any process, so everything it needs is found through these files and /proc.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bootstrap.files import atomic_write
from colab_side import processes
from colab_side.environment import MARKER_VARIABLE

# What sshd's per-connection processes are called: OpenSSH 9.8 split them out as sshd-session.
SSHD_COMMANDS = ("sshd", "sshd-session")


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "rdev" / "server"


@dataclass(frozen=True)
class StateFolder:
    """The paths of one server's state folder; `root` is absolute, so it can mark processes."""

    root: Path

    @property
    def sshd_config(self) -> Path:
        return self.root / "sshd_config"

    @property
    def host_key(self) -> Path:
        return self.root / "ssh_host_ed25519_key"

    @property
    def sshd_pid(self) -> Path:
        return self.root / "sshd.pid"

    @property
    def sshd_log(self) -> Path:
        return self.root / "sshd.log"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def authorized_keys(self) -> Path:
        return self.keys / "authorized_keys"

    @property
    def ticket(self) -> Path:
        return self.root / "ticket"

    @property
    def tunnel_pid(self) -> Path:
        """The tunnel's pid and start time (processes.record): that process and no later one of its pid."""
        return self.root / "tunnel.pid"

    @property
    def tunnel_log(self) -> Path:
        return self.root / "tunnel.log"

    @property
    def ngrok_config(self) -> Path:
        return self.root / "ngrok.yml"

    @property
    def supervisor_pid(self) -> Path:
        return self.root / "supervisor.pid"

    @property
    def editor_server_log(self) -> Path:
        """What fetching the editor's server ahead said (colab_side.prefetch)."""
        return self.root / "editor-server.log"

    @property
    def supervisor_log(self) -> Path:
        return self.root / "supervisor.log"

    @property
    def stopped_marker(self) -> Path:
        return self.root / "stopped"

    @property
    def owner(self) -> Path:
        return self.root / "owner"

    @property
    def marker(self) -> str:
        """The `RDEV_STATE=...` entry that sshd and its sessions carry in their environment."""
        return f"{MARKER_VARIABLE}={self.root}"

    def stopped(self) -> bool:
        """True once `stop` was called for this folder, from this process or another."""
        return self.stopped_marker.exists()

    def mark_stopped(self) -> None:
        """Tell every supervisor of this folder, in any process, not to bring the parts back."""
        if self.root.is_dir():
            self.stopped_marker.touch()

    def clear_stopped(self) -> None:
        self.stopped_marker.unlink(missing_ok=True)

    def claim(self) -> str:
        """Make a new serve the folder's owner and return its token: every supervisor, wait loop and
        handle of an earlier serve (in any process) sees that it no longer owns the folder and ends."""
        token = os.urandom(16).hex()
        atomic_write(self.owner, f"{token}\n".encode(), mode=0o600, follow=False)
        return token

    def owned_by(self, token: str) -> bool:
        try:
            return self.owner.read_text().strip() == token
        except OSError:
            return False


def state_folder(state_dir: str | os.PathLike | None) -> StateFolder:
    """The state folder named by --state-dir (absolute), or the default one."""
    # Resolved: /tmp/x/../s and /tmp/s must name the same server, and the same process markers.
    return StateFolder((Path(state_dir) if state_dir else default_state_dir()).resolve())


def sshd_arguments(state: StateFolder) -> str:
    """What sshd's command line holds, before and after sshd retitles itself: it names our listener."""
    return f" -f {state.sshd_config} -E {state.sshd_log}"


def sshd_running(state: StateFolder) -> int | None:
    pid = processes.read_pid(state.sshd_pid)
    return pid if pid is not None and processes.is_ours(pid, sshd_arguments(state)) else None


def stop_sshd(state: StateFolder) -> bool:
    """Stop the sshd listener and every session below it; False if none was running."""
    ran = sshd_running(state)
    if ran is not None:
        processes.terminate([ran, *processes.descendants(ran)], listener=ran)
    # sshd removes its pid file when it ends; one naming a live process that is not ours is left
    # alone: it may be our sshd under a name we failed to recognise, which the file still finds.
    pid = processes.read_pid(state.sshd_pid)
    if pid is None or not processes.alive(pid):
        state.sshd_pid.unlink(missing_ok=True)
    return ran is not None


def record_tunnel(state: StateFolder, pid: int) -> None:
    processes.record(state.tunnel_pid, pid)


def tunnel_running(state: StateFolder) -> int | None:
    """The tunnel's pid, if the very process `record_tunnel` wrote down still runs."""
    return processes.read_recorded(state.tunnel_pid)


def stop_tunnel(state: StateFolder) -> bool:
    """Stop the tunnel, from the process that started it or a later one; False if none was running."""
    pid = tunnel_running(state)
    if pid is not None:
        processes.terminate([pid, *processes.descendants(pid)])
    state.tunnel_pid.unlink(missing_ok=True)
    return pid is not None


def served_address(state: StateFolder) -> tuple[str, int] | None:
    """The address and port in sshd's config: where its connections were accepted."""
    try:
        lines = [line.split() for line in state.sshd_config.read_text().splitlines()]
    except OSError:
        return None
    values = {words[0]: words[1] for words in lines if len(words) == 2}
    if not values.get("Port", "").isdigit() or "ListenAddress" not in values:
        return None
    return values["ListenAddress"], int(values["Port"])


def end_processes(state: StateFolder) -> bool:
    """End the tunnel, sshd and every session, also those a restarted listener no longer knows."""
    tunnel_ran = stop_tunnel(state)
    sshd_ran = stop_sshd(state)
    served = served_address(state)
    # A connection without a command (ssh -N, a ControlMaster) is only found by its socket; a
    # session's commands by the marker, if an sshd still serves them: another server started from
    # inside a session carries the marker too, but is detached from it, and is not ours to end.
    connections = processes.connected(*served, commands=SSHD_COMMANDS) if served else []
    commands = [pid for pid in processes.marked(state.marker) if processes.under(pid, SSHD_COMMANDS)]
    sessions = [*connections, *commands]
    processes.terminate([*sessions, *(child for pid in sessions for child in processes.descendants(pid))])
    return tunnel_ran or sshd_ran or bool(sessions)


def stop(state_dir: str | os.PathLike | None = None) -> bool:
    """Stop the server of `state_dir`, its background supervisor and every session; False if none ran."""
    state = state_folder(state_dir)
    state.mark_stopped()
    supervisor = processes.read_recorded(state.supervisor_pid)
    if supervisor is not None:
        # Its children too: a part it was restarting may not have written its pid file yet.
        processes.terminate([supervisor, *processes.descendants(supervisor)])
    state.supervisor_pid.unlink(missing_ok=True)
    return end_processes(state) or supervisor is not None

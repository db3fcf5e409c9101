"""Reaching a host through a jump host (a Slurm login node, a school's gateway) that refuses TCP forwarding.

`ProxyJump` and `ssh -W` ask the jump host's sshd to open a TCP connection onward, which many HPC centres forbid
on login nodes (`AllowTcpForwarding no`). An ordinary session channel is still allowed, so rdev then reaches the
host with a ProxyCommand that logs in to the jump host and runs a byte bridge there: `colab_side.bridge`, sent
inline (compressed, base64) so that nothing is installed on the jump host, run by its python3, else `nc`.
The jump host's own master connection carries it, and the host's master carries the editor's connections.

rdev does not guess in advance: when a login through the jump host fails, `through` asks the jump host for one
forward (`ssh -W`, on a connection of its own: through the jump host's master connection every failed forward
reads the same); if the jump host refuses it, the host is switched to the bridge, rdev says so once, and the
choice is kept in the registry (`HostEntry.bridge`) once a login through the bridge worked.
"""

from __future__ import annotations

import base64
import importlib.util
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from client_side.errors import RdevError
from client_side.ssh import probe

if TYPE_CHECKING:
    from client_side.local.registry import HostEntry

T = TypeVar("T")
CHECK_TIMEOUT = 30
# What `ssh -W` says, on a connection of its own, when the jump host's sshd refuses to forward. (Through a master
# connection every failed forward reads "Stdio forwarding request failed", a node that is down too.)
_REFUSED = "administratively prohibited"
# No terminal and no prompt (it runs under ssh, often in the background for the editor); no forwarding asked of
# the jump host either, which is what it refuses.
OPTIONS = ("-T", "-o", "BatchMode=yes", "-o", "ClearAllForwardings=yes")


def hop(jump: str) -> str:
    """The jump host as one ssh destination: `ssh user@host:port` would read host:port as a name; the
    ssh:// form takes a port."""
    return f"ssh://{jump}" if ":" in jump else jump


def remote_command(host: str, port: str) -> str:
    """What the jump host's login shell runs: sh (whatever the login shell is: tcsh, fish), then the bridge
    under python3, else nc. Inside its single quotes there is no `'`, `\\` or `!`, which csh, fish and sh
    would each read differently."""
    bridge = f'python3 -c "import base64,sys,zlib;exec(zlib.decompress(base64.b64decode(sys.argv[1])))" {_code()}'
    script = (f"if command -v python3 >/dev/null 2>&1; then exec {bridge} {host} {port}; fi; "
              # OpenBSD's nc passes stdin's end on only with -N; others lack the flag, and end with the session.
              f"if nc -h 2>&1 | grep -q -e -N; then exec nc -N {host} {port}; fi; "
              f"if command -v nc >/dev/null 2>&1; then exec nc {host} {port}; fi; "
              "echo rdev: this jump host has neither python3 nor nc to bridge with >&2; exit 127")
    return f"sh -c '{script}'"


def argv(entry: HostEntry) -> list[str]:
    """The bridge to `entry` through its jump host, as a command to run (paramiko's ProxyCommand)."""
    if not entry.jump:
        raise ValueError(f"{entry.name} has no jump host")
    return probe.ssh_argv(hop(entry.jump), *OPTIONS) + [remote_command(entry.host, str(entry.port))]


def refuses_forwarding(entry: HostEntry) -> bool:
    """Whether `entry`'s jump host turns down a TCP forward to it: asked once, after a login through it failed."""
    if not entry.jump:
        return False
    try:
        result = subprocess.run(probe.ssh_argv(hop(entry.jump), "-o", "BatchMode=yes", "-o", "ConnectTimeout=15",
                                               "-o", "ControlMaster=no", "-o", "ControlPath=none",
                                               "-W", f"{entry.host}:{entry.port}"),
                                check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=CHECK_TIMEOUT)
    except subprocess.TimeoutExpired:
        return False
    return _REFUSED in result.stderr


def through(entry: HostEntry, attempt: Callable[[HostEntry], T], say: Callable[[str], None]) -> tuple[HostEntry, T]:
    """attempt(entry); when its jump host refuses to forward, the same with the host switched to the bridge.
    The entry that worked comes back, for the caller to write."""
    try:
        return entry, attempt(entry)
    except RdevError:
        if not entry.jump or entry.bridge or not refuses_forwarding(entry):
            raise
    bridged = replace(entry, bridge=True)
    say(f"{entry.name}: {entry.jump} does not allow TCP forwarding, so rdev reaches {entry.name} through a bridge "
        "on it, over an ordinary SSH session (kept for next time).")
    return bridged, attempt(bridged)




def _code() -> str:
    """colab_side/bridge.py, compressed and base64-encoded: one word of [A-Za-z0-9+/=]."""
    spec = importlib.util.find_spec("colab_side.bridge")
    if spec is None or spec.origin is None:
        raise ImportError("rdev's colab_side.bridge is not installed")
    return base64.b64encode(zlib.compress(Path(spec.origin).read_bytes(), 9)).decode("ascii")

"""The user's own SSH keys, used once to install rdev's key on a host that takes keys only: a cloud GPU where the
provider put the user's key (Lambda Cloud, Vast.ai, RunPod), a server whose admins turned passwords off.

As plain ssh would: the agent's keys, then `~/.ssh/id_*`, or only the key the host was added with (`rdev add
--identity`). The real ssh does it, with rdev's config for the host (its pinned host key, jump host or bridge),
in batch mode, so an encrypted key that is not in the agent is passed over rather than prompted for; and without
a master connection, so that nothing logged in with the user's key outlives this one command.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from client_side.local import paths
from client_side.ssh import probe
from client_side.ssh.password_login import INSTALL_KEY

if TYPE_CHECKING:
    from client_side.local.registry import HostEntry

# OpenSSH's own default identities, in its order.
DEFAULT_KEYS = ("id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk")
# Where the common providers take a public key, for the sentence when none of the user's keys gets in.
PROVIDERS = ("Lambda Cloud: the console's SSH keys page, before launching; Vast.ai: the console's Keys page or "
             "'vastai create ssh-key'; RunPod: Settings, SSH Public Keys")


def candidates(identity: str | None) -> list[Path]:
    """The key files to offer: the host's own identity, else OpenSSH's defaults that exist."""
    if identity:
        return [Path(identity)]
    folder = paths.home() / ".ssh"
    return [folder / name for name in DEFAULT_KEYS if (folder / name).is_file()]


def install(entry: HostEntry, public_key: str) -> bool:
    """True once one of the user's keys got in and put `public_key` into ~/.ssh/authorized_keys there; False when
    none of them is let in (or there is none to try)."""
    files = candidates(entry.identity)
    if not files and not os.environ.get("SSH_AUTH_SOCK"):
        return False
    options = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=20", "-o", "ControlMaster=no", "-o", "ControlPath=none",
               "-o", f"IdentitiesOnly={'yes' if entry.identity else 'no'}"]
    for file in files:
        options += ["-i", str(file).replace("%", "%%")]  # ssh expands % tokens in identity paths
    try:
        result = subprocess.run(probe.ssh_argv(entry.name, *options) + [f"sh -c {shlex.quote(INSTALL_KEY)}"],
                                check=False, input=public_key.strip() + "\n", capture_output=True, text=True,
                                timeout=probe.PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return False
    if result.returncode == 0:
        return True
    if "Permission denied" in result.stderr or "Too many authentication failures" in result.stderr:
        return False  # (with many keys in an agent, sshd stops listening before it says no)
    raise probe.failure(entry.name, result.stderr)

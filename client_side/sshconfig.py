"""The part of the SSH config rdev owns: `~/.ssh/rdev/config`, and the one Include line that reaches it.

rdev's own file is edited through sshconf. The user's `~/.ssh/config` is only ever given the
Include line (with its comment) as its very first lines: OpenSSH takes the first value it
obtains, and scopes an Include after a `Host` line to that host, so anything else there would
change what rdev's options mean. Every path written is absolute and `%`-escaped, because
OpenSSH expands `~` from the password database (not $HOME) and `%` as a token.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import sshconf

from bootstrap.files import atomic_write
from client_side import paths
from client_side.errors import RdevError
from client_side.known_hosts import alias
from client_side.registry import HostEntry

HEADER = "# Managed by rdev: this file is rewritten by 'rdev connect' and 'rdev remove'; edits here are lost."
INCLUDE_COMMENT = "# Added by rdev: its hosts live in the file below. Keep this line first."
# While binding, ssh adds "." and 16 random characters, and the path needs its NUL byte within
# sun_path (104 bytes on macOS and the BSDs, 108 on Linux); %C is 40 hex digits.
_SOCKET_PATH_MAX = 104 - 18


def config_path(path: Path, token: str = "", expands: bool = True) -> str:
    """A path as a config value: `%` escaped where the option `expands` tokens (then an ssh
    `token` such as `/%C` appended), double-quoted when it holds white space."""
    text = (str(path).replace("%", "%%") if expands else str(path)) + token
    # Quotes and backslashes are read by OpenSSH's own tokenizer, and Include takes glob patterns.
    if any(c in text for c in '"\'\\') or any(ord(c) < 32 for c in text) or (not expands and any(c in text for c in "*?[")):
        raise RdevError(f"The path {str(path)!r} contains a quote or control character, which an SSH config cannot hold.")
    return f'"{text}"' if re.search(r"\s", text) else text


def include_line() -> str:
    # OpenSSH expands no `%` tokens in Include, so a `%` in the home path stays as it is.
    return f"Include {config_path(paths.rdev_ssh_config(), expands=False)}"


def host_options(entry: HostEntry) -> dict[str, str]:
    """The options of one host block, in the order they are written."""
    options = {
        "HostName": entry.host,
        "Port": str(entry.port),
        "User": entry.user,
        "HostKeyAlias": alias(entry.name),
        "UserKnownHostsFile": config_path(paths.known_hosts()),
        "StrictHostKeyChecking": "yes",
        "IdentityFile": config_path(paths.private_key()),
        "IdentitiesOnly": "yes",
        # A user's `Host *` may forward their agent everywhere; a notebook runtime is no place for it.
        "ForwardAgent": "no",
        "ServerAliveInterval": "15",
        "ServerAliveCountMax": "4",
    }
    if entry.tunnel == "cloudflared" and entry.cloudflared:
        options["ProxyCommand"] = proxy_command(entry.cloudflared)
    if entry.jump:
        options["ProxyJump"] = entry.jump
    if _multiplexing():
        # VS Code opens many connections; one master connection makes each later one instant.
        options.update(ControlMaster="auto", ControlPath=config_path(paths.control_dir(), "/%C"),
                       ControlPersist="10m")
    return options


def proxy_command(binary: str, windows: bool = os.name == "nt") -> str:
    """`<cloudflared> access ssh --hostname %h`, with the binary's absolute path quoted only when it
    holds a space. POSIX ssh hands the line to the shell, so only plain path characters are let
    through; Windows' ssh starts it without a shell, so it must be one plain executable path."""
    plain = r"[A-Za-z0-9_.:\\/ ()+%-]+" if windows else r"[A-Za-z0-9_./ +%-]+"
    if not re.fullmatch(plain, binary):
        raise RdevError(f"The cloudflared path {binary!r} has characters a ProxyCommand cannot hold: "
                        "move cloudflared to a plain folder and pass --cloudflared.")
    text = binary.replace("%", "%%")
    if " " in text:
        text = f'"{text}"'
    return f"{text} access ssh --hostname %h"


def _multiplexing() -> bool:
    # Windows' OpenSSH has no ControlMaster; a home so deep that the socket path would not fit goes without.
    return os.name != "nt" and len(str(paths.control_dir())) + 41 <= _SOCKET_PATH_MAX


def render(conf: sshconf.SshConfigFile) -> str:
    # sshconf leaves a blank line behind for each host it removes; keep one between blocks.
    return re.sub(r"\n{3,}", "\n\n", conf.config().strip("\n")) + "\n"


def _load() -> sshconf.SshConfigFile:
    try:
        return sshconf.read_ssh_config_file(str(paths.rdev_ssh_config()))
    except FileNotFoundError:
        return sshconf.SshConfigFile([HEADER])


def write_entry(entry: HostEntry) -> None:
    """Add or replace the block of `entry.name`; call under `locking.changing_files()`."""
    conf = _load()
    if entry.name in conf.hosts():
        conf.remove(entry.name)
    conf.add(entry.name, **host_options(entry))
    if _multiplexing():
        paths.control_dir().mkdir(mode=0o700, exist_ok=True)
    atomic_write(paths.rdev_ssh_config(), render(conf).encode())
    ensure_include()


def remove_entry(name: str) -> bool:
    """Take `name`'s block out of rdev's file; False if it had none."""
    conf = _load()
    if name not in conf.hosts():
        return False
    conf.remove(name)
    atomic_write(paths.rdev_ssh_config(), render(conf).encode())
    return True


def has_entry(name: str) -> bool:
    return name in _load().hosts()


def include_state() -> str:
    """"first" when ~/.ssh/config starts with rdev's Include (after its comment), "missing" when it has
    none, "unreadable", else "elsewhere"."""
    try:
        lines = paths.user_ssh_config().read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return "missing"
    except OSError:
        return "unreadable"
    include = include_line()
    meaningful = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if meaningful[:1] == [include]:
        return "first"
    return "elsewhere" if include in meaningful else "missing"


def ensure_include() -> None:
    """Put the Include line first in `~/.ssh/config`, leaving every other byte as it was."""
    target = paths.user_ssh_config()
    try:
        original = target.read_bytes()
    except FileNotFoundError:
        original = None
    newline = b"\r\n" if original and b"\r\n" in original else b"\n"
    head = INCLUDE_COMMENT.encode() + newline + include_line().encode() + newline
    if original is not None and original.startswith(head):
        return
    if original is not None and not paths.user_ssh_config_backup().exists():
        atomic_write(paths.user_ssh_config_backup(), original)
    atomic_write(target, head + (original or b""))

"""The part of the SSH config rdev owns: `~/.ssh/rdev/config`, and the one Include line that reaches it.

rdev's own file is edited through sshconf. The user's `~/.ssh/config` is only ever given the
Include line (with its comment) as its very first lines: OpenSSH takes the first value it
obtains, and scopes an Include after a `Host` line to that host, so anything else there would
change what rdev's options mean. For the same reason every rdev host names its proxy (or `none`)
and its master connection explicitly: a user's `Host *` must not reach it some other way.

Every path written is absolute and `%`-escaped, because OpenSSH expands `~` from the password
database (not $HOME) and `%` as a token. OpenSSH for Windows reads forward slashes and a
double-quoted path with spaces, and has no ControlMaster. This module only renders text;
`store` writes it, together with the pinned keys and the registry.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path, PurePath

import sshconf

from client_side.errors import BadInput, RdevError
from client_side.local import paths
from client_side.local.registry import HostEntry
from client_side.ssh import bridge, probe
from client_side.ssh.known_hosts import alias

HEADER = "# Managed by rdev: this file is rewritten by 'rdev connect' and 'rdev remove'; edits here are lost."
INCLUDE_COMMENT = "# Added by rdev: its hosts live in the file below. Keep this line first."


def config_path(path: PurePath, expands: bool = True) -> str:
    """A path as a config value: forward slashes on Windows, `%` escaped where the option `expands`
    tokens, double-quoted when it holds white space."""
    text = path.as_posix() if paths.WINDOWS else str(path)
    text = text.replace("%", "%%") if expands else text
    # Quotes and backslashes are read by OpenSSH's own tokenizer, and Include takes glob patterns.
    if any(c in text for c in '"\'\\') or any(ord(c) < 32 for c in text) or (not expands and any(c in text for c in "*?[")):
        raise RdevError(f"The path {str(path)!r} contains a quote, backslash or control character, which an SSH "
                        "config cannot hold", "use a home folder without them, or point HOME at one.")
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
        # A link that is gone for good ends the master within 90 s, so that the next ssh connects anew rather than
        # waiting on it; a shorter cut (a Wi-Fi change, a minute in a tunnel) leaves it and its sessions alive.
        "ServerAliveInterval": "15",
        "ServerAliveCountMax": "6",
        # A user's `Host *` RemoteCommand would stop every connection with a command (the probe, VS
        # Code's), and UpdateHostKeys would let ssh write keys into rdev's known_hosts behind its back.
        "RemoteCommand": "none",
        "UpdateHostKeys": "no",
    }
    # The first of ProxyCommand and ProxyJump obtained wins over the other, so one line says how
    # the host is reached, and `ProxyCommand none` keeps a user's `Host *` proxy away.
    if entry.jump and entry.bridge:
        options["ProxyCommand"] = bridge_command(entry)
    elif entry.jump:
        options["ProxyJump"] = entry.jump
    elif entry.colab_session:
        options["ProxyCommand"] = colab_proxy_command(entry)
    elif entry.tunnel == "cloudflared" and entry.cloudflared:
        options["ProxyCommand"] = proxy_command(entry.cloudflared)
    else:
        options["ProxyCommand"] = "none"
    socket = paths.control_socket(entry.name)
    if socket is None:
        options.update(ControlMaster="no", ControlPath="none")
    else:
        # VS Code opens many connections; one master connection makes each later one instant.
        options.update(ControlMaster="auto", ControlPath=config_path(socket), ControlPersist="10m")
    return options


def proxy_command(binary: str) -> str:
    """`<cloudflared> access ssh --hostname %h`."""
    return f"{command_word(binary, 'cloudflared')} access ssh --hostname %h"


def bridge_command(entry: HostEntry) -> str:
    """ssh to the jump host running rdev's byte bridge to %h %p there (see `bridge`). POSIX ssh hands the line
    to sh; Windows' ssh splits it as CreateProcess does."""
    if not entry.jump:
        raise ValueError(f"{entry.name} has no jump host")
    remote = bridge.remote_command("%h", "%p")
    return " ".join([command_word(probe.ssh_binary(), "ssh"), "-F", config_path(paths.user_ssh_config()),
                     *bridge.OPTIONS, bridge.hop(entry.jump),
                     subprocess.list2cmdline([remote]) if paths.WINDOWS else shlex.quote(remote)])


def colab_proxy_command(entry: HostEntry) -> str:
    """rdev's guard (`client_side.colab_proxy`, see `client_side.colab.guard`), which checks the session and then runs
    `<colab> ssh --proxy-mode -s SESSION -i <rdev's key>`: the key the CLI sends for the runtime
    to authorize is the one ssh then logs in with."""
    if not (entry.colab and entry.colab_session and entry.colab_endpoint):
        raise ValueError(f"{entry.name} is not a Colab CLI host")
    guard = f"{command_word(sys.executable, 'Python')} -I -m client_side.colab_proxy {entry.name} {entry.colab_endpoint}"
    colab = f"{command_word(entry.colab, 'colab')} ssh --proxy-mode -s {entry.colab_session}"
    return f"{guard} -- {colab} -i {command_word(str(paths.private_key()), 'key')}"


def command_word(binary: str, what: str) -> str:
    """An absolute path as one word of a ProxyCommand, quoted only when it holds a space. POSIX ssh
    hands the line to the shell, so only plain path characters are let through; Windows' ssh
    starts it without a shell, so it must be an absolute path, written with forward slashes
    (which CreateProcess takes, and OpenSSH's tokenizer leaves alone)."""
    plain = r"[A-Za-z]:[A-Za-z0-9_./\\ ()+%-]+" if paths.WINDOWS else r"/[A-Za-z0-9_./ +%-]+"
    if not re.fullmatch(plain, binary):
        raise BadInput(f"The {what} path {binary!r} is not an absolute path of plain characters, which a "
                       f"ProxyCommand needs", f"move {what} to a plain folder (letters, digits, '_', '.', '-', "
                       "'+', space) and run again.")
    text = (binary.replace("\\", "/") if paths.WINDOWS else binary).replace("%", "%%")
    return f'"{text}"' if " " in text else text


def _render(conf: sshconf.SshConfigFile) -> bytes:
    # sshconf leaves a blank line behind for each host it removes; keep one between blocks.
    return (re.sub(r"\n{3,}", "\n\n", conf.config().strip("\n")) + "\n").encode()


def _load() -> sshconf.SshConfigFile:
    try:
        return sshconf.read_ssh_config_file(str(paths.rdev_ssh_config()))
    except FileNotFoundError:
        return sshconf.SshConfigFile([HEADER])
    except UnicodeDecodeError:
        raise RdevError(f"{paths.rdev_ssh_config()} is not text rdev wrote",
                        "remove it; 'rdev connect NAME' writes it again for each host.") from None


def with_entry(entry: HostEntry) -> bytes:
    """rdev's file with the block of `entry.name` added or replaced. A block already as it would be written stays
    where it is, so that a reconnect to any host, not only the last one written, leaves the file alone."""
    conf = _load()
    if entry.name in conf.hosts():
        if written_block(entry.name) == block(entry):
            return _render(conf)
        conf.remove(entry.name)
    conf.add(entry.name, **host_options(entry))
    return _render(conf)


def without_entry(name: str) -> bytes | None:
    """rdev's file without `name`'s block; None if it has none."""
    conf = _load()
    if name not in conf.hosts():
        return None
    conf.remove(name)
    return _render(conf)


def block(entry: HostEntry) -> str:
    """The text of `entry`'s block as rdev writes it."""
    conf = sshconf.SshConfigFile([])
    conf.add(entry.name, **host_options(entry))
    return conf.config().strip()


def written_block(name: str) -> str | None:
    """The text of `name`'s block as rdev's file holds it now (None: no block). Read as text, not
    through sshconf, which cuts a value at `#` (a home such as /home/c#d)."""
    try:
        lines = paths.rdev_ssh_config().read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return None
    starts = [i for i, line in enumerate(lines) if line.split() == ["Host", name]]
    if not starts:
        return None
    end = next((i for i in range(starts[0] + 1, len(lines)) if lines[i].startswith("Host ")), len(lines))
    return "\n".join(lines[starts[0]:end]).strip()


def has_entry(name: str) -> bool:
    return name in _load().hosts()


def check_user_config() -> None:
    """Refuse a `~/.ssh/config` that rdev could only break by replacing it: a link to a device, a folder."""
    target = paths.user_ssh_config()
    try:
        info = target.stat()
    except FileNotFoundError:
        return
    if not stat.S_ISREG(info.st_mode):
        shown = f"{target} (a link to {os.path.realpath(target)})" if target.is_symlink() else str(target)
        raise BadInput(f"{shown} is not a regular file, so rdev cannot add its Include line there",
                       "make it a regular file (or remove it) and run again.")


def include_changes() -> dict[Path, bytes]:
    """What putting the Include line first in `~/.ssh/config` writes (nothing when it is there): the
    file with the two lines prepended, every other byte as it was, and the first time a backup."""
    check_user_config()
    if include_state() == "first":  # also a bare Include the user wrote, or a read-only file that has it
        return {}
    target = paths.user_ssh_config()
    try:
        original = target.read_bytes()
    except FileNotFoundError:
        original = None
    newline = b"\r\n" if original and b"\r\n" in original else b"\n"
    head = INCLUDE_COMMENT.encode() + newline + include_line().encode() + newline
    if original is not None and original.startswith(head):
        return {}
    changes = {}
    if original is not None and not paths.user_ssh_config_backup().exists():
        changes[paths.user_ssh_config_backup()] = original
    changes[target] = head + (original or b"")
    return changes


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

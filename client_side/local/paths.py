"""Every place on disk the laptop side reads or writes, in one module.

Paths are computed on each call from the current HOME (and XDG folders), so tests and
`rdev demo` can point them at a temporary home.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import platformdirs

from client_side.errors import BadInput

# Read at call time, so that tests can render what a Windows laptop gets.
WINDOWS = os.name == "nt"
# While binding, ssh adds "." and 16 random characters, and the path needs its NUL byte within
# sun_path (104 bytes on macOS and the BSDs, 108 on Linux).
_SOCKET_PATH_MAX = 104 - 18
_HASHED_SOCKET_LEN = 16


def home() -> Path:
    """The user's home folder, which must exist: rdev never creates a home of its own making."""
    fix = "set HOME to your home folder (or unset it) and run again."
    # Python takes an empty HOME for "/", which is nobody's home to write .ssh into.
    if os.environ.get("HOME") == "":
        raise BadInput("HOME is set but empty", fix)
    found = Path.home()
    if not found.is_dir():
        raise BadInput(f"The home folder {found} does not exist", fix)
    return found


def ssh_dir() -> Path:
    return home() / ".ssh"


def user_ssh_config() -> Path:
    return ssh_dir() / "config"


def user_ssh_config_backup() -> Path:
    return ssh_dir() / "config.rdev-backup"


def rdev_ssh_dir() -> Path:
    return ssh_dir() / "rdev"


def rdev_ssh_config() -> Path:
    return rdev_ssh_dir() / "config"


def known_hosts() -> Path:
    return rdev_ssh_dir() / "known_hosts"


def private_key() -> Path:
    return rdev_ssh_dir() / "id_ed25519"


def public_key() -> Path:
    return rdev_ssh_dir() / "id_ed25519.pub"


def control_dir() -> Path:
    # Kept short: a ControlPath socket must fit in about 100 bytes.
    return rdev_ssh_dir() / "cm"


def control_socket(name: str) -> Path | None:
    """`name`'s own master socket (one per rdev host, so that two names on one endpoint never share
    one), or None where there is no multiplexing: on Windows, or where no socket path fits."""
    if WINDOWS:
        return None
    socket = control_dir() / name
    if len(str(socket).encode()) > _SOCKET_PATH_MAX:
        import hashlib  # loads OpenSSL: only for a name too long for the socket path

        socket = control_dir() / hashlib.sha256(name.encode()).hexdigest()[:_HASHED_SOCKET_LEN]
    return socket if len(str(socket).encode()) <= _SOCKET_PATH_MAX else None


def lock_file() -> Path:
    return rdev_ssh_dir() / "lock"


def host_lock_file(name: str) -> Path:
    """Held while one rdev sets up `name`, so two never race on its master connection."""
    return rdev_ssh_dir() / "locks" / name


def config_dir() -> Path:
    home()  # platformdirs builds on HOME too: a missing one is refused, not created
    return platformdirs.user_config_path("rdev", appauthor=False)


def editor_server_cache() -> Path:
    """Editors' server archives this laptop downloaded for hosts without internet, kept for the next host."""
    home()
    return platformdirs.user_cache_path("rdev", appauthor=False) / "editor-servers"


def pending_pull(name: str, run: str) -> Path:
    """A run's `--pull` that waits for the run to end (see commands.run_pulls)."""
    home()
    return platformdirs.user_state_path("rdev", appauthor=False) / "pulls" / name / f"{run}.json"


def pending_pull_lock(name: str, run: str) -> Path:
    """Held while one rdev copies a pending pull back."""
    return pending_pull(name, run).with_suffix(".lock")


def registry() -> Path:
    return config_dir() / "hosts.toml"


def user_presets() -> Path:
    return config_dir() / "presets.toml"


def editor_settings(config_folder: str, system: str | None = None) -> Path:
    """An editor's user settings.json, e.g. ~/.config/Code/User/settings.json on Linux."""
    system = system or platform.system()
    if system == "Darwin":
        root = home() / "Library" / "Application Support"
    elif system == "Windows":
        root = Path(os.environ.get("APPDATA") or home() / "AppData" / "Roaming")
    else:
        root = Path(os.environ.get("XDG_CONFIG_HOME") or home() / ".config")
    return root / config_folder / "User" / "settings.json"


def editor_settings_record() -> Path:
    """What rdev changed in editors' settings that is not plainly its own (a raised connect timeout)."""
    return config_dir() / "editor-settings.toml"


def colab_cli_dir() -> Path:
    """Google's colab CLI keeps its state in ~/.config/colab-cli from HOME (not XDG): its choice, read by rdev."""
    return home() / ".config" / "colab-cli"


def colab_sessions() -> Path:
    return colab_cli_dir() / "sessions.json"


def proxy_log(name: str) -> Path:
    """What `name`'s ProxyCommand last said, where ssh would have dropped it (see colab.guard)."""
    return rdev_ssh_dir() / "logs" / f"{name}.log"

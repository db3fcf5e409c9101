"""Every place on disk the laptop side reads or writes, in one module.

Paths are computed on each call from the current HOME (and XDG folders), so tests and
`rdev demo` can point them at a temporary home.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs


def home() -> Path:
    return Path.home()


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


def lock_file() -> Path:
    return rdev_ssh_dir() / "lock"


def config_dir() -> Path:
    return platformdirs.user_config_path("rdev", appauthor=False)


def registry() -> Path:
    return config_dir() / "hosts.toml"


def user_presets() -> Path:
    return config_dir() / "presets.toml"

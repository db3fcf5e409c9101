"""`rdev ssh NAME [-- CMD]`: the real ssh with the config rdev wrote, in this terminal."""

from __future__ import annotations

import subprocess

from client_side import inputs
from client_side.local import registry
from client_side.ssh import probe


def run(name: str, command: list[str]) -> int:
    """ssh's own exit status, so scripts can use `rdev ssh NAME -- CMD` like `ssh NAME CMD`."""
    name = inputs.name(name)
    registry.get(name)  # an unknown name gets rdev's sentence, not ssh's "could not resolve"
    argv = probe.ssh_argv(name) + (["--", *command] if command else [])
    return subprocess.run(argv, check=False).returncode

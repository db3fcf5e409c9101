"""`rdev demo`: the whole path on this machine, in a throwaway HOME, each step timed.

Every step runs as its own process, exactly as a user would type it, so the demo proves the
installed commands work together: serve -> ticket -> connect -> ssh through the written config.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from client_side.editors import editor
from client_side.errors import RdevError

NAME = "demo"


def _environment(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "RDEV_"))}
    env.update(HOME=str(root / "home"), XDG_CONFIG_HOME=str(root / "config"), XDG_STATE_HOME=str(root / "state"),
               XDG_CACHE_HOME=str(root / "cache"), XDG_DATA_HOME=str(root / "data"),
               DEMO_GREETING="the notebook's environment reached this session")
    return env


def run(say: Callable[[str], None]) -> None:
    from colab_side.sshd import find_sshd

    if find_sshd() is None and os.geteuid() != 0:
        raise RdevError("The demo needs OpenSSH's server", "install it (e.g. 'sudo apt-get install openssh-server') "
                        "or run 'rdev demo' as root so it can install it.")
    # A short folder keeps the ControlPath socket under the length limit.
    root = Path(tempfile.mkdtemp(prefix="rdev-demo-", dir="/tmp" if os.name == "posix" else None))
    env = _environment(root)
    (root / "home").mkdir(mode=0o700)
    state = root / "state" / "server"
    python = [sys.executable, "-m"]
    try:
        say(f"rdev demo in {root} (a throwaway HOME; your own ~/.ssh is not touched)")
        public_key = _step(say, "rdev key", python + ["client_side", "key"], env)
        output = _step(say, "serve (private sshd, direct)", python + [
            "colab_side", "serve", "--tunnel", "direct", "--authorized-key", public_key, "--state-dir", str(state),
            "--workdir", str(root / "home"), "--no-keep-alive"], env)
        ticket = next(line for line in output.splitlines() if line.startswith("rdev1."))
        say(f"    ticket: {ticket[:48]}...")
        # Its "Try: ssh demo" is about the throwaway HOME, gone once the demo ends: the next step tries it.
        _step(say, f"rdev connect {NAME} --no-open", python + ["client_side", "connect", NAME, "--ticket", ticket,
                                                               "--no-open"], env, show_output=False)
        config = str(root / "home" / ".ssh" / "config")
        _step(say, f"ssh {NAME} (through the written config)",
              ["ssh", "-F", config, NAME, 'echo "hello from $(whoami)@$(hostname) in $PWD: $DEMO_GREETING"'], env)
        say("    the editor would run: " + shlex.join(editor.command("code", NAME, str(root / "home"))))
        _step(say, "rdev remove demo", python + ["client_side", "remove", NAME], env)
    finally:
        subprocess.run(python + ["colab_side", "stop", "--state-dir", str(state)], check=False, env=env, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
    say("Done: server stopped, throwaway HOME removed.")


def _step(say: Callable[[str], None], title: str, argv: list[str], env: dict[str, str], show_output: bool = True) -> str:
    start = time.monotonic()
    result = subprocess.run(argv, check=False, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    took = time.monotonic() - start
    if result.returncode != 0:
        said = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
        raise RdevError(f"The demo's step '{title}' failed ({said})",
                        "run 'rdev doctor' to see what is missing on this machine.")
    say(f"  {took:6.2f} s  {title}")
    for line in result.stdout.strip().splitlines() if show_output else ():
        if not line.startswith("rdev1."):
            say(f"            {line}")
    return result.stdout.strip()

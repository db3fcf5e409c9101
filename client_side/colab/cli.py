"""Google's colab CLI as rdev uses it: found, run in the foreground, and its failures read.

Creating a runtime, logging in and refreshing a session's token all happen here, where the user
sees the CLI's prompts and progress, never inside the ProxyCommand (see `colab.guard`). The CLI
supports Linux and macOS only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from client_side.colab import sessions
from client_side.errors import BadInput, RdevError
from client_side.ssh import probe

INSTALL = ("install it with 'pipx install google-colab-cli' (it runs on Linux and macOS and needs Python 3.12 or "
           "later), or pass its path with --colab, and run again.")

# What the CLI (and ssh around it) says when the proxy route fails, read by rdev's probe. The
# CLI's own words are in its commands/ssh.py; `{name}` is the host, `{session}` the CLI's session.
_FAILURES: probe.Failures = [
    ("Authentication failed (HTTP 401)", "Colab refused session {session}'s access token",
     ("renew it with 'colab status -s {session}' and run 'rdev connect {name}' again; if that does not help, "
     "'rdev stop {name}' and connect again.")),
    ("Endpoint not found (HTTP 404)", ("The runtime of Colab session {session} has no SSH endpoint (an older "
     "runtime, or one created without SSH)"), ("end it with 'rdev stop {name}', then 'rdev connect {name}' creates "
     "one that has.")),
    ("Already-active SSH session (HTTP 429)", ("Another SSH connection holds the runtime of Colab session {session} "
     "(Colab allows one)"), "close it (a 'colab ssh' in another terminal, or another laptop) and run again."),
    ("Bad gateway (HTTP 502)", "Colab's proxy cannot reach the sshd of session {session}'s runtime",
     "check it with 'colab status -s {session}'; if it is unhealthy, 'rdev stop {name}' and connect again."),
    ("unsupported key type", "Colab refused rdev's ed25519 key as an unsupported type",
     "update Google's colab CLI ('pipx upgrade google-colab-cli') and run again."),
    ("No such command 'ssh'", "This version of Google's colab CLI has no 'ssh' command",
     "update it ('pipx upgrade google-colab-cli'; 0.7.5 or later) and run again."),
    ("Enter the authorization code", "Google's colab CLI needs you to log in", ("run 'colab sessions' in a terminal "
     "to log in, then 'rdev connect {name}' again.")),
    ("No valid default credentials", "Google's colab CLI needs you to log in", ("run 'colab sessions' in a terminal "
     "to log in, then 'rdev connect {name}' again.")),
    (" not found. Run `colab sessions`", ("Colab session {session} no longer exists (its runtime was stopped or "
     "reclaimed)"), "run 'rdev connect {name}' to start a new one."),
    ("WebSocket connection failed", "Cannot reach Colab's proxy for session {session}",
     "check your network, and the runtime with 'colab status -s {session}'."),
    ("REMOTE HOST IDENTIFICATION HAS CHANGED", ("{name}'s host key changed although Colab session {session} still "
     "names the same runtime, so rdev refused it"), ("someone may be in the way; if you trust the runtime, run "
     "'rdev connect {name} --accept-new-host-key'.")),
]


def failures(session: str) -> probe.Failures:
    """The table above for one session (`{name}` is filled in by the probe)."""
    return [(pattern, problem.replace("{session}", session), fix.replace("{session}", session))
            for pattern, problem, fix in _FAILURES]


def find(given: str | None, remembered: str | None) -> str:
    """The CLI's absolute path: --colab, else RDEV_COLAB, else the one this host used, else PATH."""
    if os.name == "nt":
        raise RdevError("Google's colab CLI does not run on Windows",
                        "use the tunnel cell instead: 'rdev colab cell', then 'rdev connect NAME' with its ticket.")
    chosen = given if given is not None else os.environ.get("RDEV_COLAB") or None
    if chosen is not None:
        where = "--colab" if given is not None else "RDEV_COLAB"
        chosen = os.path.expanduser(chosen)  # a shell leaves the ~ of --colab=~/... alone
        found = shutil.which(chosen) if os.sep not in chosen else (chosen if _runnable(chosen) else None)
        if not found:
            raise BadInput(f"{where} names {chosen!r}, which is not an executable file",
                           "give the path of Google's colab CLI (e.g. ~/.local/bin/colab).")
        return str(Path(found).absolute())
    if remembered and _runnable(remembered):
        return remembered
    found = shutil.which("colab")
    if not found:
        raise RdevError("Google's colab CLI (colab) is not installed", INSTALL)
    return str(Path(found).absolute())


def _runnable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def ready_session(colab: str, session: str, gpu: str | None, name: str,
                  say: Callable[[str], None]) -> sessions.Session:
    """The session, with a token fresh enough for the editor's next connections: refreshed (and the
    user logged in) by the CLI in the foreground when needed, created when missing, after saying so."""
    found = sessions.read(session)
    if found is not None and not found.fresh():
        _run(colab, "status", "-s", session)
        found = sessions.read(session)
        if found is None:
            say(f"Colab session {session} has ended (its runtime was stopped or reclaimed).")
    if found is None:
        what = f"a {gpu} GPU runtime" if gpu else "a runtime without a GPU (--gpu T4 asks for one)"
        say(f"Creating Colab session {session}, {what}, with Google's colab CLI. It uses your Colab compute units "
            f"until 'rdev stop {name}'.")
        if _run(colab, "new", "-s", session, *(("--gpu", gpu) if gpu else ())) != 0:
            raise RdevError(f"Google's colab CLI could not create Colab session {session} (its messages are above)",
                            "fix what it says (a login, your quota), then run the same rdev command again.")
        found = sessions.read(session)
        if found is None:
            raise RdevError(f"Google's colab CLI said nothing failed, yet has no session {session}",
                            "run 'colab sessions' to see what it has, then run the same rdev command again.")
    elif gpu and found.accelerator.upper() != gpu:
        say(f"Colab session {session} already runs on {found.accelerator}: --gpu {gpu} applies to a new runtime "
            f"('rdev stop {name}' ends this one).")
    if not found.fresh(sessions.REFRESH_MARGIN / 2):
        raise RdevError(f"Colab session {session}'s access token could not be renewed",
                        f"run 'colab status -s {session}' in a terminal to see why, then connect again.")
    return found


def stop(colab: str, session: str) -> None:
    """End the runtime of `session` with the CLI's own stop (a paid runtime uses compute units while it runs)."""
    if _run(colab, "stop", "-s", session) != 0:
        raise RdevError(f"Google's colab CLI could not stop Colab session {session} (its messages are above)",
                        f"try 'colab stop -s {session}' yourself; 'colab sessions' lists what still runs.")


def _run(colab: str, *args: str) -> int:
    """The CLI in the foreground, talking to the user's terminal (a login, a runtime's progress)."""
    try:
        return subprocess.run([colab, *args], check=False).returncode
    except OSError as err:
        raise RdevError(f"Google's colab CLI at {colab} could not be started ({err.strerror or err})", INSTALL) from None

"""Checks with the real `ssh` binary and the config rdev wrote: what VS Code will do next, done first.

rdev always passes `-F <home>/.ssh/config`, because OpenSSH finds its config from the password
database's home, not from $HOME.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Sequence

from client_side.errors import RdevError
from client_side.local import paths

# (pattern, problem, fix): the first pattern found in ssh's error output decides what the user sees.
Failures = Sequence[tuple[str, str, str]]

PROBE_TIMEOUT = 60
# A master connection answers `ssh -O` on its local socket at once, whatever the network does; one that does not
# is stopped (a laptop that slept with it and never resumed it) or stuck, and a login through it would wait too.
MASTER_TIMEOUT = 3
_HOME = "rdev-home:"  # marks the line of try_login's answer

_FAILURES: Failures = [
    ("REMOTE HOST IDENTIFICATION HAS CHANGED", "{name}'s host key does not match the one pinned for it",
     ("if the runtime was restarted, get its new ticket and run 'rdev connect {name}' again; otherwise someone may "
     "be in the way.")),
    ("Host key verification failed", "{name}'s host key does not match the one pinned for it",
     "get a fresh ticket and run 'rdev connect {name}' again."),
    ("Permission denied", "{name} refused rdev's key",
     "start the server with the key that 'rdev key' prints (--authorized-key) and connect again."),
    ("Could not resolve hostname", "Cannot reach {name}: its host name does not resolve.",
     "Check the name, your VPN or tailnet, then try again."),
    ("Connection refused", "Cannot reach {name}: nothing listens there.",
     "Check that the server is still running (for a notebook, that the ticket is current)."),
    ("timed out", "Cannot reach {name}: the connection timed out.",
     "Check your network, VPN or tailnet and that the server runs."),
    ("No route to host", "Cannot reach {name}: no route to the host.", "Check your network, VPN or tailnet."),
    ("Network is unreachable", "Cannot reach {name}: the network is unreachable.", "Check your connection."),
    ("Connection closed", "Cannot reach {name}: the server closed the connection.",
     "Check that it still runs, then try again."),
    ("Connection reset", "Cannot reach {name}: the connection was reset.",
     "Check that the server still runs, then try again."),
]


def ssh_binary() -> str:
    found = shutil.which("ssh")
    if not found:
        raise RdevError("The OpenSSH client (ssh) is not installed",
                        "install it (e.g. 'apt install openssh-client') and run again.")
    return found


def ssh_argv(name: str, *options: str) -> list[str]:
    """`ssh -F <home>/.ssh/config [options] name`: the start of every ssh call rdev makes."""
    return [ssh_binary(), "-F", str(paths.user_ssh_config()), *options, name]


def failure(name: str, stderr: str, first: Failures = ()) -> RdevError:
    """The error for an ssh to `name` that failed with `stderr`; a kind of host's own patterns (`first`)
    come before ssh's."""
    for pattern, problem, fix in (*first, *_FAILURES):
        if pattern in stderr:
            return RdevError(problem.format(name=name), fix.format(name=name))
    last = stderr.strip().splitlines()[-1] if stderr.strip() else "no error output"
    return RdevError(f"ssh to {name} failed ({last})", f"run 'ssh -v {name}' to see more.")


def explain(name: str, stderr: str) -> str:
    return str(failure(name, stderr))


def try_login(name: str, hint: str = "Check the network and the server.") -> subprocess.CompletedProcess:
    """Log in to `name` in batch mode (never a prompt) and print the remote home folder (from $HOME: a
    login script may have changed folder); a hang becomes one sentence ending in `hint`."""
    argv = ssh_argv(name, "-o", "BatchMode=yes", "-o", "ConnectTimeout=20") + [f"printf '{_HOME}%s\\n' \"$HOME\""]
    end_stuck_master(name)
    try:
        return subprocess.run(argv, check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise RdevError(f"Cannot reach {name}: ssh did not finish within {PROBE_TIMEOUT} s.", hint) from None


def check(name: str, failures: Failures = ()) -> str:
    """Log in to `name` as the editor will; the remote home folder ("" if it printed none), or
    RdevError with one sentence if ssh fails."""
    result = try_login(name)
    if result.returncode != 0:
        raise failure(name, result.stderr, failures)
    return home_in(result.stdout)


def home_in(stdout: str) -> str:
    """The remote home try_login printed ("" if none), found by its mark: login and logout scripts may print
    around it, even on the same line."""
    homes = [line.rsplit(_HOME, 1)[1] for line in stdout.splitlines() if _HOME in line]
    return homes[-1] if homes and homes[-1].startswith("/") else ""


def close_master(name: str) -> None:
    """End `name`'s shared connection (and its ProxyCommand), so the next ssh uses the config and keys
    as they are now."""
    _ask_master(name, "exit")


def end_stuck_master(name: str) -> None:
    """End `name`'s master connection if it does not answer `ssh -O check` within MASTER_TIMEOUT: the next login
    then connects anew instead of waiting on it."""
    socket = paths.control_socket(name)
    if socket is not None and socket.exists():  # else no master: nothing to wait on, and no ssh to start for it
        _ask_master(name, "check")


def _ask_master(name: str, command: str) -> None:
    """`ssh -O COMMAND name`; a master that does not answer within MASTER_TIMEOUT is killed."""
    try:
        subprocess.run(ssh_argv(name, "-O", command), check=False, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=MASTER_TIMEOUT)
    except subprocess.TimeoutExpired:
        _kill_master(name)


def _kill_master(name: str) -> None:
    """SIGKILL (a stopped process takes no other signal) the master that ssh retitled `ssh: SOCKET [mux]`, and
    remove its socket, so that the next ssh to `name` becomes the master."""
    socket = paths.control_socket(name)
    if socket is None:
        return
    listed = subprocess.run(["ps", "-A", "-o", "pid=,args="], check=False, capture_output=True, text=True).stdout
    for line in listed.splitlines():
        pid, _, args = line.strip().partition(" ")
        if args.strip() == f"ssh: {socket} [mux]" and pid.isdigit():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                continue
            except PermissionError:
                raise RdevError(f"The shared connection to {name} does not answer, and rdev cannot end it (pid {pid})",
                                f"end it with 'kill -9 {pid}' and run again.") from None
    socket.unlink(missing_ok=True)

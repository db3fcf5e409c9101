"""The ProxyCommand of a host reached through Google's colab CLI: check, then become `colab ssh --proxy-mode`.

    python -I -m client_side.colab_proxy NAME ENDPOINT -- COLAB ssh --proxy-mode -s SESSION -i KEY

OpenSSH starts it for each new master connection, often in the background for the editor, where
nobody sees the CLI's prompts or progress. So before it hands over (exec: no extra process in the
byte stream) it refuses what only the foreground `rdev connect NAME` may do:
- a session missing from the CLI's file: the CLI would create a new, possibly paid, runtime;
- a session that now names another runtime than ENDPOINT, whose host key is the one pinned;
- a proxy token at its expiry that cannot be refreshed without a login: the CLI would ask for an
  authorization code on the SSH stream. A refresh that needs no login is done here first, with
  the CLI's input and output kept off that stream.
Its messages go to stderr as "rdev: problem: fix". With ControlPersist, ssh gives a ProxyCommand
/dev/null as stderr, so then they (and the CLI's) go to `paths.proxy_log(NAME)`, one connection's
worth, where `rdev connect` reads them to say what failed.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

from bootstrap.files import ensure_private_dir
from client_side import colab_sessions, paths
from client_side.errors import RdevError

_REFRESH_TIMEOUT = 120


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--" or "-s" not in argv[3:-1]:
        print("rdev: this ProxyCommand was not written by rdev: run 'rdev connect NAME' to write it again.",
              file=sys.stderr)
        return 2
    name, endpoint, command = argv[0], argv[1], argv[3:]
    session = command[command.index("-s") + 1]
    try:
        _keep_messages(name)
        _check(name, endpoint, command[0], session)
    except RdevError as err:
        print(f"rdev: {err}", file=sys.stderr)
        return 1
    os.execv(command[0], command)
    return 1  # not reached: execv replaces this process or raises


def _keep_messages(name: str) -> None:
    """Point stderr (this process's, and the CLI's after exec) at the log when ssh gave it /dev/null."""
    try:
        info, null = os.fstat(2), os.stat(os.devnull)
    except OSError:
        info = null = None
    if info is None or (stat.S_ISCHR(info.st_mode) and info.st_rdev == null.st_rdev):
        log = paths.proxy_log(name)
        ensure_private_dir(log.parent)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 2)
        os.close(fd)
        sys.stderr = open(2, "w", closefd=False)


def _check(name: str, endpoint: str, colab: str, session: str) -> None:
    found = _session(name, session)
    if found.endpoint != endpoint:
        raise RdevError(f"Colab session {session} now runs another runtime than the one whose host key rdev pinned",
                        f"run 'rdev connect {name}' to pin the new runtime's key.")
    if found.fresh():
        return
    # stdout to stderr and no stdin: the SSH stream must carry nothing of this, and a login prompt
    # must fail at once rather than read the client's first bytes as a code.
    try:
        subprocess.run([colab, "status", "-s", session], stdin=subprocess.DEVNULL, stdout=sys.stderr.fileno(),
                       timeout=_REFRESH_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        pass
    if not _session(name, session).fresh(colab_sessions.REFRESH_MARGIN / 2):
        raise RdevError(f"Colab session {session}'s access token has expired and renewing it needs you",
                        f"run 'rdev connect {name}' in a terminal.")


def _session(name: str, session: str) -> colab_sessions.Session:
    found = colab_sessions.read(session)
    if found is None:
        raise RdevError(f"Colab session {session} no longer exists (its runtime was stopped or reclaimed), and a "
                        "background connection must not create a paid runtime",
                        f"run 'rdev connect {name}' to start a new one.")
    return found


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

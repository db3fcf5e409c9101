"""The ProxyCommand of a host reached through Google's colab CLI: check, then become `colab ssh --proxy-mode`.

    python -I -m client_side.colab_proxy NAME ENDPOINT -- COLAB ssh --proxy-mode -s SESSION -i KEY

OpenSSH starts it for each new master connection, often in the background for the editor, where
nobody sees the CLI's prompts or progress. So before it hands over (exec: no extra process in the
byte stream) it refuses what only the foreground `rdev connect NAME` may do:
- a session the CLI would not find (missing, or a session file it cannot read): the CLI would
  create a new, possibly paid, runtime;
- a session that now names another runtime than ENDPOINT, whose host key is the one pinned;
- a proxy token at its expiry that cannot be renewed without a login: the CLI would ask for an
  authorization code on the SSH stream. A renewal that needs no login is done here first, with
  the CLI's input and output kept off that stream;
- any connection while `rdev stop` is ending the session. The stop closes the master connection,
  so the editor reconnects at once; the CLI reads the session file again about 0.6 s after this
  check, and had the stop removed the session by then, it would create a new runtime. So the
  guard and the stop share two locks (`local.locking`): the guard takes them before its check and
  leaves one to the CLI, held for its life; the stop turns guards away first, then ends the CLIs
  they let through, and only then removes the session.
A refusal is written as "rdev: problem: fix" to `paths.proxy_log(NAME)`, where `rdev connect`
looks for it, and to stderr. With ControlPersist, ssh gives a ProxyCommand /dev/null as stderr,
so the CLI's own messages then go to that log too (one connection's worth).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

from bootstrap import validate
from bootstrap.files import ensure_private_dir
from client_side.colab import sessions
from client_side.errors import RdevError
from client_side.local import locking, paths

_REFRESH_TIMEOUT = 120
# After a renewal the token must outlast the CLI's own margin (5 minutes) by more than its start-up.
_AFTER_RENEWAL = sessions.REFRESH_MARGIN * 0.7


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--" or "-s" not in argv[3:-1]:
        print("rdev: this ProxyCommand was not written by rdev: run 'rdev connect NAME' to write it again.",
              file=sys.stderr)
        return 2
    name, endpoint, command = argv[0], argv[1], argv[3:]
    session = command[command.index("-s") + 1]
    log = None
    try:
        log = _log(validate.name(name))
        _enter(name, session)
        _check(name, endpoint, command[0], session)
        os.execv(command[0], command)
    except validate.InvalidValue as err:
        return _refuse(RdevError(str(err), "run 'rdev connect NAME' to write this host again."), log)
    except RdevError as err:
        return _refuse(err, log)
    except OSError as err:
        return _refuse(RdevError(f"{err.filename or command[0]} cannot be used ({err.strerror or err})",
                                 f"run 'rdev connect {name}' to find Google's colab CLI again."), log)
    return 1  # not reached: execv replaces this process or raises


def _refuse(err: RdevError, log: int | None) -> int:
    line = f"rdev: {err}\n"
    sys.stderr.write(line)
    sys.stderr.flush()
    if log is not None and log != 2:
        os.write(log, line.encode())
    return 1


def _log(name: str) -> int | None:
    """The log's descriptor; when ssh gave stderr /dev/null, stderr (this process's, and the CLI's
    after exec) is pointed at it (2 is returned)."""
    path = paths.proxy_log(name)
    ensure_private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    info, null = os.fstat(2), os.stat(os.devnull)
    if stat.S_ISCHR(info.st_mode) and info.st_rdev == null.st_rdev:
        os.dup2(fd, 2)
        os.close(fd)
        return 2
    return fd


def _enter(name: str, session: str) -> None:
    """Take the session's locks, which the CLI keeps once this process becomes it; refuse during a stop."""
    try:
        entered = locking.enter_colab_session(session)
    except OSError as err:
        raise RdevError(f"rdev cannot lock Colab session {session} for {name} ({err.strerror or err})",
                        f"check that {paths.rdev_ssh_dir()} is yours and writable, then connect again.") from None
    if not entered:
        raise RdevError(f"'rdev stop' is ending Colab session {session}, so rdev does not connect {name} to it",
                        f"once the stop has finished, 'rdev connect {name}' starts a new runtime.")


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
    except subprocess.TimeoutExpired:
        pass
    if not _session(name, session).fresh(_AFTER_RENEWAL):
        raise RdevError(f"Colab session {session}'s access token has expired and renewing it needs you",
                        f"run 'rdev connect {name}' in a terminal.")


def _session(name: str, session: str) -> sessions.Session:
    found = sessions.read(session)
    if found is None:
        raise RdevError(f"Colab session {session} no longer exists (its runtime was stopped or reclaimed), and a "
                        "background connection must not create a paid runtime",
                        f"run 'rdev connect {name}' to start a new one.")
    return found


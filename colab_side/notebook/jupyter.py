"""`python3 -m colab_side.notebook.jupyter start|stop`: the host's side of `rdev jupyter`.

The laptop ships this module (with the rest of the runtime side) over SSH, as it does kernel_env,
and runs it with the host's python3 or the Python the user named. `start` reads a fresh token on
stdin and starts `PYTHON -m jupyter_server` detached (a session of its own, output to a log), so
that it outlives the SSH connection and the laptop. The token reaches Jupyter only through its
environment (JUPYTER_TOKEN): an argument would show in `ps` to every user of a shared server.
Jupyter listens on a Unix socket in this host's folder, not on a TCP port: on a shared server any
user can bind a port number they see before Jupyter does and be sent the token, while only this user
can reach a socket in a 0700 folder (the laptop forwards a port of its own to it, `ssh -L port:socket`).
Pid, start time, socket, token, log and Jupyter's own runtime files (which hold the token too) live
in ~/.rdev/jupyter/HOSTNAME (0700, files 0600; one per host, for homes that several servers or
cluster nodes share): a later `start` reuses the server (same URL), and `stop` ends that very
process, never a later one given the same pid. Which Python runs Jupyter is colab_side.notebook.jupyter_env's.

Each run prints JSON lines, the laptop's only channel back: {"say": ...} while it works, then its
result, or {"error": ..., "fix": ...} with exit status 1. Standard library only, Python 3.8+.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

from bootstrap import SHIPPED
from bootstrap.files import atomic_write, ensure_private_dir, held_lock
from colab_side.errors import Failure, answer, emit
from colab_side.notebook.jupyter_env import python_for_jupyter
from colab_side.processes import started

COLAB = "https://colab.research.google.com"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,128}")
SOCKET = "jupyter.sock"  # in the state folder
# A Unix socket's path must fit sun_path (104 bytes on macOS and the BSDs, 108 on Linux, with its NUL).
_SOCKET_PATH_MAX = 103
# The first jupyter_server that listens on a Unix socket (ServerApp.sock); an older one ignores the option.
_SOCKET_SINCE = (2, 0)


def state_dir() -> Path:
    """This host's folder: homes shared by several servers or cluster nodes (NFS) keep one per host name."""
    host = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()).lstrip(".") or "host"
    return Path.home() / ".rdev" / "jupyter" / host


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One `start` or `stop` at a time per user: two laptops must not start two servers."""
    for folder in (state_dir().parent.parent, state_dir().parent, state_dir()):
        ensure_private_dir(folder)
    with held_lock(state_dir() / "lock"):
        yield


def _parents() -> dict[int, int]:
    """Every process's parent, from /proc where there is one, else from `ps` (macOS, the BSDs)."""
    if Path("/proc/self/stat").exists():
        found = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                found[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        return found
    lines = subprocess.run(["ps", "-A", "-o", "pid=", "-o", "ppid="], check=False, capture_output=True, text=True).stdout
    return {int(pid): int(ppid) for pid, ppid in (line.split() for line in lines.splitlines() if len(line.split()) == 2)}


def _descendants(pid: int) -> dict[int, str]:
    """The processes below `pid` (its kernels, which run in sessions of their own), with their start times."""
    parents = _parents()
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        above = todo.pop()
        for child, parent in parents.items():
            if parent == above and child not in found:
                when = started(child)
                if when is not None:
                    found[child] = when
                    todo.append(child)
    return found


def running() -> dict | None:
    """The recorded server, if that very process still runs."""
    try:
        server = json.loads((state_dir() / "server.json").read_text())
        pid = int(server["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    when = started(pid)
    return server if when is not None and when == server.get("started") else None


def answers(port: int, token: str, timeout: float = 3) -> bool:
    """True if a Jupyter server on localhost:`port` takes `token`: the laptop's check of its forward, made once
    the laptop knows that port's listener is its own ssh."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/status", headers={"Authorization": f"token {token}"})
    try:
        # Straight to loopback: an http_proxy in the environment must not take the request (and the token).
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=timeout) as response:
            return response.status == 200
    except (OSError, ValueError):  # URLError and HTTPError are OSErrors
        return False


class _UnixConnection(http.client.HTTPConnection):
    """HTTP to a Unix socket: how this side asks the server it started, which no other user can reach."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def answers_on(path: str, token: str, timeout: float = 3) -> bool:
    """True if the Jupyter server on the Unix socket `path` takes `token`."""
    connection = _UnixConnection(path, timeout)
    try:
        connection.request("GET", "/api/status", headers={"Authorization": f"token {token}"})
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def socket_path() -> Path:
    """Where Jupyter listens: in this host's 0700 folder, so that no other user can connect, or bind it first."""
    path = state_dir() / SOCKET
    if len(os.fsencode(str(path))) > _SOCKET_PATH_MAX:
        raise Failure(f"the path of rdev's Jupyter socket, {path}, is too long for a Unix socket",
                      "use a host whose home folder has a shorter path.")
    return path


def _terminate(processes: dict[int, str]) -> None:
    """SIGTERM, then SIGKILL what still runs after STOP_TIMEOUT; only processes whose start time still matches."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid, when in processes.items():
            if started(pid) == when:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(started(pid) == when for pid, when in processes.items()) and time.monotonic() < deadline:
            time.sleep(0.1)


def end(server: dict) -> None:
    """End the server, then what still runs below it: on SIGTERM Jupyter shuts its kernels down itself."""
    below = _descendants(int(server["pid"]))
    _terminate({int(server["pid"]): server["started"]})
    _terminate(below)


def _environment(token: str) -> dict[str, str]:
    env = dict(os.environ, JUPYTER_TOKEN=token, JUPYTER_RUNTIME_DIR=str(state_dir() / "runtime"))
    # The shipped zip was put first on PYTHONPATH for this run only (and is deleted after it); Jupyter
    # and its kernels get the user's own path.
    kept = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry and entry != SHIPPED]
    if kept:
        env["PYTHONPATH"] = os.pathsep.join(kept)
    else:
        env.pop("PYTHONPATH", None)
    return env


def _log_tail() -> str:
    try:
        lines = [line.strip() for line in (state_dir() / "server.log").read_text(errors="replace").splitlines()]
    except OSError:
        return "no log"
    said = [line for line in lines if line]
    return said[-1] if said else "an empty log"


def _spawn(python: str, path: Path, token: str) -> subprocess.Popen:
    """Jupyter on the Unix socket `path`, detached: a session of its own (no hangup when SSH goes), stdio in its
    log. Colab's "local runtime" page needs its origin allowed; it sends the token, so XSRF checks stay on."""
    ensure_private_dir(state_dir() / "runtime")
    log = os.open(str(state_dir() / "server.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(log, 0o600)
    argv = [python, "-m", "jupyter_server", f"--ServerApp.sock={path}", "--ServerApp.sock_mode=0600",
            f"--ServerApp.allow_origin={COLAB}", "--ServerApp.open_browser=False"]
    if os.geteuid() == 0:
        argv.append("--ServerApp.allow_root=True")  # notebook runtimes and containers log in as root; Jupyter refuses it
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=_environment(token),
                                cwd=str(Path.home()), start_new_session=True)
    finally:
        os.close(log)


def _wait_ready(process: subprocess.Popen, path: Path, token: str) -> bool:
    """True once the server answers; False if it exited; Failure when it neither answers nor exits in time."""
    deadline = time.monotonic() + START_TIMEOUT
    while process.poll() is None:
        if answers_on(str(path), token):
            return True
        if time.monotonic() > deadline:
            end({"pid": process.pid, "started": started(process.pid)})
            raise Failure(f"Jupyter did not answer within {START_TIMEOUT:.0f} s (its log ends: {_log_tail()})",
                          f"see {state_dir() / 'server.log'} on the host, then run again.")
        time.sleep(0.2)
    return False


def start(token: str, install: bool) -> dict:
    """The running server (reused) or a new one; its socket, token, pid and Python."""
    server = running()
    if server is not None:
        try:
            saved = (state_dir() / "token").read_text().strip()
        except OSError:
            saved = ""
        # An older rdev's server listens on a TCP port (no "socket" recorded): it is replaced.
        if saved and "socket" in server and answers_on(server["socket"], saved):
            return {**server, "token": saved, "reused": True, "asked": sys.executable}
        end(server)  # ours, but its token is lost or it does not answer: a new one replaces it
    path = socket_path()
    python = python_for_jupyter(state_dir().parent, install, say=lambda words: emit({"say": words}))
    _check_socket_support(python)
    atomic_write(state_dir() / "token", token.encode() + b"\n", 0o600, follow=False)
    try:
        path.unlink(missing_ok=True)  # a server that was killed leaves its socket; none of ours runs now
        process = _spawn(python, path, token)
        server = {"pid": process.pid, "started": started(process.pid), "socket": str(path), "python": python}
        atomic_write(state_dir() / "server.json", json.dumps(server).encode(), 0o600, follow=False)
        if not _wait_ready(process, path, token):
            raise Failure(f"Jupyter exited as it started (its log ends: {_log_tail()})",
                          f"see {state_dir() / 'server.log'} on the host, then run again.")
        # Jupyter's page for opening a browser holds the token in a file of the umask's mode (no option turns it
        # off); it is written before the server answers, and Jupyter's exit tolerates its absence.
        for page in (state_dir() / "runtime").glob(f"jpserver-{process.pid}-open.html"):
            page.unlink()
        return {**server, "token": token, "reused": False}
    except BaseException:
        _forget()
        raise


def _check_socket_support(python: str) -> None:
    """Refuse a jupyter_server too old to listen on a Unix socket: it would ignore the option and take a port."""
    # The installed distribution's metadata: much quicker than importing jupyter_server.
    asked = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('jupyter_server'))"],
                           check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    found = re.match(r"(\d+)\.(\d+)", asked.stdout.strip())
    if found is None or (int(found[1]), int(found[2])) < _SOCKET_SINCE:
        version = asked.stdout.strip() or "unknown"
        raise Failure(f"{python} has jupyter_server {version}, older than 2.0, which rdev needs (it listens on a "
                      "socket only you can reach)", f"upgrade it there ('{python} -m pip install -U jupyter_server').")


def _forget() -> None:
    for leftover in ("server.json", "token", SOCKET):
        (state_dir() / leftover).unlink(missing_ok=True)


def stop() -> dict:
    """End the recorded server, if it still runs; its pid (or None) for the laptop to report."""
    server = running()
    if server is not None:
        end(server)
    _forget()
    return {"stopped": int(server["pid"]) if server else None}


def main(argv: list[str]) -> int:
    action = argv[0] if argv else ""
    if action not in ("start", "stop"):
        emit({"error": f"unknown action {action!r}", "fix": "use start or stop."})
        return 2
    token = sys.stdin.readline().strip()

    def act() -> dict:
        with _locked():
            if action == "stop":
                return stop()
            if not _TOKEN.fullmatch(token):
                raise Failure("the token on stdin is missing or malformed", "run 'rdev jupyter' from the laptop.")
            return start(token, install="--install" in argv[1:])

    return answer(act, state_dir())

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

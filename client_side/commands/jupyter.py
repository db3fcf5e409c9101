"""`rdev jupyter NAME [--stop]`: a Jupyter server on NAME for Colab's "Connect to a local runtime" (and
VS Code's "Existing Jupyter Server"), forwarded to a port of this laptop.

The host's side is `colab_side.notebook.jupyter`, which travels in the connection as kernel_env's does (nothing
of rdev is installed there) and runs with the host's python3 or the Python given with --python. The
token is made here, fresh, and handed over on ssh's stdin: never an argument of a process on either
side, where `ps` would show it. Jupyter listens on a Unix socket only the user reaches on the host, and a
local port is forwarded to it (`-L port:socket`). The forward rides NAME's master connection (`ssh -O
forward`); where there is none (Windows, or a socket path too long), a background `ssh -N -L` holds it, and
its pid is kept in ~/.ssh/rdev/jupyter/NAME.json with the port, so that `--stop` cancels exactly that
forward. The token goes to the local port only once that port's listener is seen to be that ssh: another
user of the laptop may bind a port number it sees first.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from bootstrap.files import atomic_write, ensure_private_dir
from client_side import inputs
from client_side.errors import BadInput, RdevError, printable
from client_side.local import paths, registry
from client_side.local.locking import setting_up
from client_side.ssh import helper_call, probe, shipped
from colab_side.notebook.jupyter import answers

# Starting may install Jupyter first (colab_side.notebook.jupyter_env gives that up well within this).
START_TIMEOUT = 1200.0
STOP_TIMEOUT = 120.0
# rdev remove and rdev stop have their own work to do: a host that does not answer soon is given up.
END_WITH_HOST_TIMEOUT = 30.0
FORWARD_TIMEOUT = 30.0
# Fresh local ports tried, one after another, when something else takes each one before ssh binds it.
PORT_TRIES = 4
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,128}")
# The host's socket as a word of ssh's -L: absolute, and no ':' or blank that would split the spec.
_SOCKET = re.compile(r"/[^\s:]+")

Say = Callable[[str], None]


@dataclass
class Forward:
    """A local port forwarded to the host's Jupyter, as kept on the laptop between runs."""

    local: int
    remote: str | int  # the host's Jupyter socket; a port in an older rdev's record
    python: str | None = None  # the --python it was started with, for --stop
    ssh_pid: int | None = None  # the background ssh holding it, where NAME has no master connection
    server_pid: int | None = None  # Jupyter's on the host, to name when it cannot be stopped from here

    @property
    def spec(self) -> str:
        to = f"127.0.0.1:{self.remote}" if isinstance(self.remote, int) else self.remote
        return f"127.0.0.1:{self.local}:{to}"


def start(name: str, *, python: str | None, port: int | None, say: Say) -> None:
    """Start (or reuse) NAME's Jupyter server, forward a local port to it and print the URL to paste."""
    if python is not None:
        _python_word(python, name)  # what cannot be a word of the remote command is refused before anything runs
    if port is not None and not 0 < port < 65536:
        raise BadInput(f"The port {port} is not a TCP port", "give one from 1 to 65535, or leave --port out.")
    name = _known(name)
    with setting_up(name):
        action = "start" if python else "start --install"
        server = _helper(name, action, python, secrets.token_urlsafe(32), say, START_TIMEOUT)
        try:
            pid, remote, token, runs = int(server["pid"]), str(server["socket"]), str(server["token"]), str(server["python"])
        except (KeyError, TypeError, ValueError):
            raise RdevError(f"rdev's helper on {name} answered something unexpected",
                            f"run 'rdev jupyter {name}' again.") from None
        if not _SOCKET.fullmatch(remote):
            raise RdevError(f"Jupyter's socket on {name}, {printable(remote)}, cannot be forwarded (ssh's -L takes no "
                            "':' or blank in it)", f"give {name}'s user a home folder without them.")
        if not _TOKEN.fullmatch(token):
            raise RdevError(f"The Jupyter token from {name} is not one rdev made", f"run 'rdev jupyter {name} --stop', "
                            "then start it again.")
        forward = _forward(name, remote, port, _load(name), token, python)
        forward.server_pid = pid
        atomic_write(ensure_private_dir(_record(name).parent) / _record(name).name, json.dumps(asdict(forward)).encode())
    url = f"http://localhost:{forward.local}/?token={token}"
    how = "already running, reused" if server.get("reused") else "started"
    say(f"Jupyter on {name}: {how} (pid {pid}, socket {remote} there, {printable(runs)}); forwarded to "
        f"localhost:{forward.local} here.")
    if server.get("reused") and python and server.get("asked") != runs:
        say(f"It runs {printable(runs)}, not {python}: 'rdev jupyter {name} --stop' first to start it with that one.")
    copied = " (copied to the clipboard)" if _copy(url) else ""
    say(f'Colab, Connect > "Connect to a local runtime"{copied}: {url}')
    say(f'VS Code, Select Kernel > "Existing Jupyter Server": {url}')
    say(f"It keeps running when you disconnect; 'rdev jupyter {name}' prints this URL again (and restores the "
        f"forward), 'rdev jupyter {name} --stop' ends it.")


def stop(name: str, *, python: str | None, say: Say, timeout: float = STOP_TIMEOUT) -> None:
    """End NAME's Jupyter server and this laptop's forward to it, and say what was stopped."""
    name = _known(name)
    with setting_up(name):
        forward = _load(name)
        if forward is not None:
            _unforward(name, forward)
        answer = _helper(name, "stop", python or (forward.python if forward else None), "", say, timeout)
        _record(name).unlink(missing_ok=True)
    stopped = answer.get("stopped")
    server = f"Stopped Jupyter on {name} (pid {stopped})" if stopped else f"No Jupyter server of rdev's ran on {name}"
    say(f"{server}; {'ended the forward from localhost:' + str(forward.local) if forward else 'no forward was kept'}.")


def end_with_host(name: str) -> str | None:
    """For `rdev remove NAME` (before NAME leaves the config, when nothing could reach it by that name)
    and `rdev stop NAME` (before its runtime or job ends): end the Jupyter server rdev started there and
    this laptop's forward to it. What happened, in a line; None when rdev kept no Jupyter for NAME."""
    try:
        forward = _load(name)
    except RdevError:
        forward = None  # a record rdev cannot read names nothing it can stop
    if forward is None:
        _record(name).unlink(missing_ok=True)
        return None
    said: list[str] = []
    try:
        stop(name, python=None, say=said.append, timeout=END_WITH_HOST_TIMEOUT)
    except RdevError as err:
        _unforward(name, forward)
        _record(name).unlink(missing_ok=True)
        pid = f" (pid {forward.server_pid})" if forward.server_pid else ""
        return (f"Jupyter on {name}{pid} could not be stopped ({err.problem}); it runs until that host stops, "
                "or until you end it there.")
    return said[-1] if said else None


def _known(name: str) -> str:
    name = inputs.name(name)
    registry.get(name)  # an unknown name gets rdev's sentence (exit 2), not ssh's
    return name


def _python_word(python: str | None, name: str) -> str | None:
    """The interpreter as a word of the remote shell script: `~/` is the remote home, the rest is quoted. None: the
    one the host was added with (`rdev add --python`), else the host's own choice (shipped.choose_python)."""
    if python is None:
        return shipped.python_word(registry.get(name).python)
    if not python.strip() or not python.isprintable():
        raise BadInput(f"The Python {python!r} is not a command or path", f"give the path of a Python on {name}, "
                       "e.g. --python ~/venv/bin/python.")
    return shipped.python_word(python)


def _helper(name: str, action: str, python: str | None, token: str, say: Say, timeout: float) -> dict:
    """Run `colab_side.notebook.jupyter ACTION` on NAME with `python` (default python3); the token travels as the
    first line of stdin, before the runtime side's zip. Its answer."""
    remote = shipped.command("notebook.jupyter", *action.split(), python=_python_word(python, name), secret_first=True)

    def heard(message: dict) -> bool:
        if "say" not in message:
            return False
        say(f"{name}: {printable(str(message['say']))}")
        return True

    return helper_call.call(name, remote, what="Jupyter helper", timeout=timeout, first_line=token, heard=heard,
                            python=python or registry.get(name).python,
                            fix="it needs Python 3.8 or newer there: pass one with --python.")


def _record(name: str) -> Path:
    return paths.rdev_ssh_dir() / "jupyter" / f"{name}.json"


def _load(name: str) -> Forward | None:
    try:
        return Forward(**json.loads(_record(name).read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        raise RdevError(f"{_record(name)} is not what rdev wrote", "delete it and run again.") from None


def _forward(name: str, remote: str, port: int | None, kept: Forward | None, token: str, python: str | None) -> Forward:
    """Forward a local port (`port`, else the one used before if still free, else a free one) to the host's socket."""
    master = _master(name) if paths.control_socket(name) is not None else None
    same = (kept is not None and kept.remote == remote and port in (None, kept.local)
            and (kept.ssh_pid is None) == (master is not None))
    if kept is not None and not same:
        _unforward(name, kept)
    if (same and kept is not None and master is None and kept.ssh_pid and _our_ssh(kept.ssh_pid, kept.spec)
            and _listens(kept.ssh_pid, kept.local) and answers(kept.local, token, timeout=5)):
        return Forward(kept.local, remote, python, kept.ssh_pid)
    why = "something else on this laptop uses it"
    for local in _candidates(port, kept):
        forward = Forward(local, remote, python)
        if master is None:
            forward.ssh_pid = _background(name, forward, token)
            if forward.ssh_pid is not None:
                return forward
            continue
        # A forward the master already holds is accepted again as it is.
        added = _ssh(name, "-O", "forward", "-L", forward.spec)
        if added.returncode == 0 and _until_answers(name, forward, token, master):
            return forward
        why = printable(added.stderr.strip().splitlines()[-1]) if added.stderr.strip() else why
    raise RdevError(f"localhost:{local} cannot be forwarded to {name} ({why})", "pass another port with --port (or none).")


def _candidates(port: int | None, kept: Forward | None) -> Iterator[int]:
    """The local ports to try: the one asked for alone; else the one used before, then fresh ones."""
    if port:
        yield port
        return
    if kept is not None:
        yield kept.local
    for _ in range(PORT_TRIES):
        yield _free_port()


def _ssh(name: str, *options: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(probe.ssh_argv(name, "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", *options), check=False,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=probe.PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise RdevError(f"ssh to {name} did not finish within {probe.PROBE_TIMEOUT} s",
                        f"check the host with 'rdev ssh {name}' and run again.") from None


def _master(name: str) -> int | None:
    """The pid of NAME's master connection (opened with a quick login if none runs); None if there is none."""
    for attempt in range(2):
        if attempt:
            _ssh(name, "true")
        running = re.search(r"\(pid=(\d+)\)", _ssh(name, "-O", "check").stderr)
        if running:
            return int(running[1])
    return None


def _free_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return probe_socket.getsockname()[1]


def _background(name: str, forward: Forward, token: str) -> int | None:
    """A detached `ssh -N -L` for `forward`; its pid once the URL answers, None if the local port is taken."""
    ensure_private_dir(_record(name).parent)
    log = _record(name).with_suffix(".log")
    argv = probe.ssh_argv(name, "-N", "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-o", "ControlMaster=no",
                          "-o", "ControlPath=none", "-L", forward.spec)
    with open(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as output:
        # A session of its own (and no console on Windows), so that it outlives this command and its terminal.
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=output,
                                   start_new_session=True, creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
    if _until_answers(name, forward, token, process.pid, process):
        return process.pid
    said = log.read_text(errors="replace")
    if "forwarding" in said or "Address already in use" in said:
        return None
    raise probe.failure(name, said)


def _until_answers(name: str, forward: Forward, token: str, holder: int, ssh: subprocess.Popen | None = None) -> bool:
    """True once Jupyter answers through `forward`, asked only while `holder` (the ssh meant to hold the port)
    listens there itself; False if the ssh holding it (`ssh`) exited first."""
    deadline = time.monotonic() + FORWARD_TIMEOUT
    while not (_listens(holder, forward.local) and answers(forward.local, token, timeout=5)):
        if ssh is not None and ssh.poll() is not None:
            return False
        if time.monotonic() > deadline:
            if ssh is not None:
                ssh.kill()
            raise RdevError(f"localhost:{forward.local} does not reach Jupyter on {name} within {FORWARD_TIMEOUT:.0f} s",
                            f"run 'rdev jupyter {name}' again, or pass another --port.")
        time.sleep(0.2)
    return True


def _listens(pid: int, port: int) -> bool:
    """True if process `pid` itself listens on 127.0.0.1:`port`: only then may the token be sent there."""
    import psutil  # only `rdev jupyter` asks; a connection list of one's own process needs no privileges

    try:
        connections = psutil.Process(pid).net_connections(kind="tcp4")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.ip == "127.0.0.1" and c.laddr.port == port
               for c in connections)


def _unforward(name: str, forward: Forward) -> None:
    """Cancel `forward`: in the master (gone with it if the master is), or by ending its own ssh."""
    if forward.ssh_pid is None:
        _ssh(name, "-O", "cancel", "-L", forward.spec)
        return
    if _our_ssh(forward.ssh_pid, forward.spec):
        os.kill(forward.ssh_pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while _our_ssh(forward.ssh_pid, forward.spec) and time.monotonic() < deadline:
            time.sleep(0.05)


def _our_ssh(pid: int, spec: str) -> bool:
    """True if `pid` is still the ssh holding `spec` (a pid alone may have been given to another process)."""
    if os.name == "nt":
        shown = subprocess.run(["tasklist", "/FI", f"PID eq {pid}", "/FO", "CSV", "/NH"], check=False, capture_output=True, text=True)
        return '"ssh.exe"' in shown.stdout.lower()
    shown = subprocess.run(["ps", "-o", "args=", "-p", str(pid)], check=False, capture_output=True, text=True)
    words = shown.stdout.split()
    return bool(words) and os.path.basename(words[0]) == "ssh" and f"-L {spec}" in shown.stdout


def _copy(url: str) -> bool:
    """Copy the URL where a clipboard is, except through pyperclip's KDE backend, which passes the text
    to qdbus as an argument, where `ps` would show the token."""
    import pyperclip

    from client_side.colab import cell as colab_cell

    copier, _ = pyperclip.determine_clipboard()
    return getattr(copier, "__name__", "") != "copy_klipper" and colab_cell.copy(url)

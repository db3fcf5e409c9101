"""`serve()` and `stop()`: private sshd + tunnel -> ticket, and tearing them down again."""

from __future__ import annotations

import ipaddress
import os
import pwd
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path

from bootstrap import __version__, pubkeys, validate
from bootstrap.files import atomic_write, ensure_private_dir
from bootstrap.ticket import Ticket, utc_timestamp
from colab_side import background, runtime, status
from colab_side.environment import session_environment
from colab_side.errors import ServeError
from colab_side.long_runs import idle, notices
from colab_side.sshd import Sshd, ensure_sshd, free_port, port_taken
from colab_side.state import StateFolder, end_processes, state_folder, stop as stop_folder
from colab_side.supervisor import CHECK_EVERY, Part, Supervisor
from colab_side.tunnels import Endpoint, Tunnel, make_tunnel

__all__ = ["Server", "running", "serve", "stop"]

TYPE_CHECKING = False  # as typing's, without importing typing on every start; type checkers take it as True
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")

KEEP_ALIVE_EVERY = 5.0
_NOTED: set[str] = set()
# The servers this process runs, by state folder: serving a folder again replaces its server wholly.
_LIVE: dict[Path, Server] = {}
_LIVE_LOCK = threading.Lock()


@dataclass
class Server:
    """What `serve()` returns: the current ticket and endpoint, and a way to stop it all."""

    state: StateFolder
    sshd: Sshd
    tunnel: Tunnel
    workdir: str
    runtime: str
    ticket_file: Path | None
    out: Callable[[str], None]
    token: str  # this serve's claim on the state folder (StateFolder.claim)
    ticket: str = ""
    endpoint: Endpoint | None = None
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    supervisor: Supervisor | None = None
    published: datetime | None = None  # the last ticket's `started`
    ticket_file_stale: bool = False  # the ticket file does not hold the current ticket yet
    idle_stop: float | None = None  # minutes without a session, run or GPU process before it stops itself (idle.py)
    end: notices.End | None = None  # when the runtime ends, where that is known (the ticket's `expires`, the notices)

    def current(self) -> bool:
        """False once a later serve (in any process) took the state folder over."""
        return self.state.owned_by(self.token)

    def publish(self, endpoint: Endpoint, retry: bool = False) -> str:
        """Make the ticket for `endpoint`, write it to the state folder and ticket file, and print it.

        The ticket's `started` is when it was published, so a restarted tunnel's ticket is the newer
        one; `expires` still counts from the server's start, as the runtime's lifetime does. With
        `retry` (a restart), a ticket file that cannot be written is left to the supervisor to retry.
        """
        ends = self.end.at if self.end else None
        # Tickets name whole seconds, and the laptop takes only a strictly later one as newer.
        now = datetime.now(timezone.utc).replace(microsecond=0)
        self.published = max(now, self.published + timedelta(seconds=1)) if self.published else now
        self.endpoint = endpoint
        self.ticket = Ticket(tunnel=endpoint.tunnel, host=endpoint.host, port=endpoint.port, user=self.sshd.user,
                             host_keys=tuple(self.sshd.public_host_keys()), workdir=self.workdir, runtime=self.runtime,
                             started=utc_timestamp(self.published),
                             expires=utc_timestamp(ends) if ends else None, rdev=__version__).encode()
        _write_ticket(self.state.ticket, self.ticket)
        # Before it is printed, so that whoever reads the printed ticket finds it in the file too.
        self.ticket_file_stale = self.ticket_file is not None
        try:
            self.copy_ticket()
        except ServeError as err:
            if not retry:
                raise
            # A Drive folder may be unmounted for a while: the supervisor tries again.
            self.out(f"{err} Trying again shortly.")
        self.out(f"sshd for {self.sshd.user} on {self.sshd.listen}:{self.sshd.port}, reached {endpoint.tunnel} at "
                 f"{endpoint.host}:{endpoint.port}. On your laptop run: rdev connect NAME --ticket <the line below>")
        self.out(self.ticket)
        return self.ticket

    def copy_ticket(self, halt: threading.Event | None = None) -> None:
        """Write the current ticket to the ticket file."""
        if self.ticket_file:
            _write_ticket(self.ticket_file, self.ticket)
        self.ticket_file_stale = False

    def wait(self) -> None:
        """Keep the caller busy with a live status until the server is stopped, from here or elsewhere."""
        display = status.Display(self.out)
        shown = 0.0
        while not self.state.stopped() and self.current():
            if time.monotonic() - shown >= KEEP_ALIVE_EVERY:
                view = self._view()
                display.show(status.line(view), f"{view.where} {view.sessions}")
                shown = time.monotonic()
            time.sleep(CHECK_EVERY)
        self.out("The server was stopped." if self.current() else "A later serve of this state folder replaced this server.")

    def stop(self) -> bool:
        """Stop the supervisor, sshd, the tunnel and every session; False if this server no longer ran."""
        with _LIVE_LOCK:
            if _LIVE.get(self.state.root) is not self:
                return False  # stopped already, or replaced by a later serve of the same folder in this process
            del _LIVE[self.state.root]
        if not self.current():
            # A serve in another process took the folder over: what runs there is its server, not ours.
            if self.supervisor:
                self.supervisor.stop()
            return False
        # The marker first, so the supervisor restarts nothing more; ending the parts also ends a
        # restart under way, so the join below is short.
        ran = stop_folder(self.state.root)
        if self.supervisor:
            self.supervisor.stop()
        end_processes(self.state)  # what a restart that was under way may have started
        return ran

    def detach(self) -> int:
        """Hand supervision from this process's thread to a background process, for a command line
        that is about to exit; return that process's pid (`stop` ends it)."""
        if self.supervisor and not self.supervisor.stop():
            # Never fork beside a running thread: a lock it holds would stay locked in the child.
            raise ServeError("The supervisor did not stop in time to hand over; the server runs unsupervised: "
                             f"stop it with 'python -m colab_side stop --state-dir {self.state.root}' and serve again.")
        self.supervisor = None
        return background.detach(self._supervisor().run, pid_file=self.state.supervisor_pid,
                                 log_file=self.state.supervisor_log)

    def _supervisor(self) -> Supervisor:
        parts = [Part("sshd", self.sshd.alive, self.sshd.start), Part("tunnel", self.tunnel.alive, self._restart_tunnel),
                 Part("ticket file", lambda: not self.ticket_file_stale, self.copy_ticket,
                      restarted=f"The new ticket is in {self.ticket_file}.",
                      failed="{error} Next try in {delay:.0f} s.")]
        watch = None if self.idle_stop is None else idle.Watch(self.state, self.idle_stop, user=self.sshd.user,
                                                                runtime=self.runtime, stop=self.stop, say=self.out)
        ending = notices.for_sessions(self.end, self.sshd.user, self.state.marker, self.out) if self.end else None
        return Supervisor(parts, stopped=self.state.stopped, replaced=lambda: not self.current(),
                          finish=partial(end_processes, self.state), say=self.out,
                          ticks=tuple(part.tick for part in (watch, ending) if part))

    def _restart_tunnel(self, halt: threading.Event) -> None:
        endpoint = self.tunnel.start(self.sshd.port, halt)
        if endpoint != self.endpoint:
            self.out("The tunnel's address changed: use the new ticket below.")
            self.publish(endpoint, retry=True)

    def _view(self) -> status.View:
        where = f"{self.endpoint.host}:{self.endpoint.port}" if self.endpoint else "-"
        return status.View(tunnel=self.tunnel.name, where=where, sessions=self.sshd.sessions(), started=self.started,
                           expires=self.end.at if self.end else None)


def serve(
    tunnel: str = "direct",
    authorized_keys: Iterable[str] = (),
    user: str | None = None,
    listen: str = "127.0.0.1",
    port: int | None = None,
    workdir: str | None = None,
    ticket_file: str | os.PathLike | None = None,
    state_dir: str | os.PathLike | None = None,
    cloudflared: str | None = None,
    ngrok: str | None = None,
    hostname: str | None = None,
    token: str | None = None,
    keep_alive: bool = True,
    password: str | None = None,
    editor_server: str | None = None,
    out: Callable[[str], None] = print,
    idle_stop: float | None = None,
) -> Server:
    """Start the private sshd behind `tunnel`, print the ticket, and (by default) keep the runtime busy.

    `editor_server` (EDITOR:QUALITY:COMMIT, as `rdev colab cell` fills it in) is fetched meanwhile,
    so the editor's first connection finds its server (colab_side.prefetch).
    `cloudflared` and `ngrok` are the binaries' paths. `token` is the tunnel's secret: a named cloudflared
    tunnel's (with its `hostname`), or ngrok's auth token (default: NGROK_AUTHTOKEN or Colab's secrets).
    The server is supervised by a thread of this process; serving the same state folder again replaces it.
    With `idle_stop` (minutes, 0 never) it stops once idle that long (colab_side.long_runs.idle; on Colab the runtime
    ends too).
    """
    timings: list[tuple[str, float]] = []
    keys = [_authorized_key(k) for k in authorized_keys if k.strip()]
    if not keys and password is None:
        raise ServeError("No key to let in: pass --authorized-key \"$(rdev key)\" (the output of 'rdev key' on your laptop).", 2)
    account = _account(user)
    listen = _address(validate.host(listen))
    port, idle_stop = validate.port(port) if port else None, idle.minutes(idle_stop)
    if password is not None and (not password or any(ord(c) < 32 for c in password)):
        raise ServeError("The password must be non-empty and on one line.", 2)
    if password is None and os.geteuid() == 0 and _locked(account.pw_name):
        raise ServeError(f"The account {account.pw_name} is locked, and sshd refuses locked accounts even with a key: "
                         f"unlock it (e.g. usermod -p '*' {account.pw_name}) or serve with a password.", 2)
    folder = state_folder(state_dir)
    if ticket_file and not Path(ticket_file).absolute().parent.is_dir():
        raise ServeError(f"The folder of the ticket file {ticket_file} does not exist: create it or pick another path.", 2)
    kind = runtime.detect()
    out(f"rdev {__version__}, runtime side: serving {account.pw_name}.")
    _note_policy(kind, out)
    workdir = validate.remote_path(workdir or runtime.default_workdir(kind, Path(account.pw_dir)))
    provider = make_tunnel(tunnel, listen=listen, state=folder, binary=cloudflared if tunnel == "cloudflared" else ngrok,
                           hostname=validate.host(hostname) if hostname else None, token=token)

    # One server per state folder: a second serve replaces the first instead of adding to it.
    stop(folder.root)
    if port and port_taken(listen, port):
        raise ServeError(f"Port {port} on {listen} is already in use (another SSH server may answer there): "
                         "pick another --port, or leave it out to get a free one.")
    ensure_private_dir(folder.root)
    token = folder.claim()
    folder.clear_stopped()
    if editor_server:
        _prefetch(editor_server, account, folder, out)
    # Installing sshd and fetching the tunnel binary are the slow steps: do them at the same time.
    if provider.has_binary:
        binary = _beside(partial(_timed_call, "sshd binary", timings, ensure_sshd),
                         partial(_timed_call, f"{tunnel} binary", timings, provider.prepare))
    else:
        binary = _timed_call("sshd binary", timings, ensure_sshd)
    sshd = Sshd(state=folder, binary=binary, listen=listen, port=port or free_port(listen), user=account.pw_name,
                authorized_keys=keys, environment=session_environment(dict(os.environ)),
                password_login=password is not None)
    with _timed("host key and config", timings):
        if password is not None:
            _set_password(account.pw_name, password)
        sshd.prepare()
    server = Server(state=folder, sshd=sshd, tunnel=provider, workdir=workdir, runtime=kind,
                    ticket_file=Path(ticket_file).absolute() if ticket_file else None, out=out, token=token,
                    idle_stop=idle_stop)
    server.end = notices.runtime_end(kind, server.started)
    with _LIVE_LOCK:
        _LIVE[folder.root] = server
    try:
        with _timed("sshd start", timings):
            sshd.start()
        with _timed(f"{tunnel} tunnel", timings):
            server.endpoint = provider.start(sshd.port)
        out(", ".join(f"{step} {seconds:.2f} s" for step, seconds in timings))
        server.supervisor = server._supervisor()
        server.supervisor.start()
    except BaseException:
        server.stop()  # a server nobody got a ticket for is of no use: leave nothing running
        raise
    # From here on the server runs supervised: an interrupt ends waiting, never the server, and
    # `running(state_dir)` finds the server for a caller that was interrupted before serve returned.
    try:
        server.publish(server.endpoint)
    except Exception:
        server.stop()  # no ticket written, no use
        raise
    if keep_alive:
        try:
            server.wait()
        except KeyboardInterrupt:
            out("Stopped waiting; the server goes on, supervised by a thread of this Python process for as long "
                "as it runs. Stop it with colab_side.stop() or 'python -m colab_side stop'.")
    return server


def _prefetch(editor_server: str, account: pwd.struct_passwd, folder: StateFolder, out: Callable[[str], None]) -> None:
    """Fetch the editor's server while sshd starts (or adopt the fetch the cell started ahead); its line
    goes to the state folder's log, and is said here once it is done if this process is still there."""
    if account.pw_uid != os.geteuid():
        out("Editor server: not fetched (serving another account); the editor downloads it itself.")
        return
    from colab_side import prefetch  # only a serve that fetches carries its imports

    child = prefetch.in_background(editor_server, folder.editor_server_log)

    def report() -> None:
        child.wait()
        lines = folder.editor_server_log.read_text(errors="replace").strip().splitlines()
        out(lines[-1] if lines else f"Editor server: not fetched (its fetch exited {child.returncode}).")

    threading.Thread(target=report, daemon=True, name="rdev editor server").start()


def running(state_dir: str | os.PathLike | None = None) -> Server | None:
    """The server this process runs in `state_dir`, if any."""
    return _LIVE.get(state_folder(state_dir).root)


def stop(state_dir: str | os.PathLike | None = None) -> bool:
    """Stop the server of `state_dir` and every session under it, whichever process started it;
    False if none was running."""
    live = running(state_dir)
    return live.stop() if live else stop_folder(state_dir)


def _address(listen: str) -> str:
    """`listen` as one IP address: sshd binds every address a name has, while the busy-port check
    and the readiness check look at one, so a name is resolved here to the one they all use."""
    try:
        return str(ipaddress.ip_address(listen))
    except ValueError:
        pass
    try:
        return str(socket.getaddrinfo(listen, None, type=socket.SOCK_STREAM)[0][4][0])
    except (OSError, IndexError):
        raise ServeError(f"The listen address {listen!r} does not resolve: give an IP address such as 127.0.0.1.",
                         2) from None


def _note_policy(kind: str, out: Callable[[str], None]) -> None:
    """Say once per process what the runtime's provider thinks of SSH; a re-run cell stays quiet."""
    note = runtime.policy_note(kind)
    if note and kind not in _NOTED:
        _NOTED.add(kind)
        out(note)


def _authorized_key(line: str) -> str:
    """A key as `rdev key` prints it, comment kept; a private key, a path or two lines is refused."""
    try:
        pubkeys.parse(line, pubkeys.USER_KEY_TYPES)
    except pubkeys.NotAKey as err:
        # Only the start of the first line: a pasted private key must not be echoed.
        first = line.strip().splitlines()[0]
        shown = first[:40] + ("..." if len(first) > 40 or "\n" in line.strip() else "")
        raise ServeError(f"The authorized key {shown!r} {err}: pass the one line 'rdev key' prints.", 2) from None
    return line.strip()


def _account(user: str | None) -> pwd.struct_passwd:
    try:
        # The real uid, not $USER or $LOGNAME, which anyone can set.
        account = pwd.getpwnam(validate.user(user)) if user else pwd.getpwuid(os.geteuid())
    except KeyError:
        raise ServeError(f"There is no user {user!r} on this machine: pass an existing --user.", 2) from None
    if os.geteuid() != 0 and account.pw_uid != os.geteuid():
        raise ServeError(f"Only root can serve another user: run as {user} or leave out --user.", 2)
    return account


def _locked(name: str) -> bool:
    """A '!' before the password hash locks an account; without PAM sshd then refuses every login."""
    try:
        lines = Path("/etc/shadow").read_text().splitlines()
    except OSError:
        return False
    return any(line.split(":")[0] == name and line.split(":")[1].startswith("!") for line in lines if ":" in line)


def _set_password(user: str, password: str) -> None:
    if os.geteuid() != 0:
        raise ServeError("Only root can set a login password: serve with keys only, or run as root.", 2)
    # chpasswd reads the secret on stdin, so it never shows in a process list.
    result = subprocess.run(["chpasswd"], check=False, input=f"{user}:{password}\n", text=True, capture_output=True)
    if result.returncode != 0:
        raise ServeError(f"Setting the password of {user} failed: chpasswd said {result.stderr.strip()[:200]!r}.")


def _write_ticket(path: Path, ticket: str) -> None:
    try:
        atomic_write(path, (ticket + "\n").encode(), mode=0o600)
    except OSError as err:
        raise ServeError(f"Could not write the ticket to {path} ({err.strerror}): check that its folder (a Drive "
                         "mount?) exists and is writable.") from None


def _beside(first: Callable[[], T], second: Callable[[], object]) -> T:
    """first() in a thread while second() runs here; first's result once both are done. second's error is
    raised first, as the one the user acts on (a tunnel binary that cannot be had)."""
    done: list[T] = []
    failed: list[Exception] = []

    def run() -> None:
        try:
            done.append(first())
        except Exception as err:  # noqa: BLE001 (raised again in the caller's thread)
            failed.append(err)

    thread = threading.Thread(target=run, name="rdev slow step", daemon=True)
    thread.start()
    try:
        second()
    finally:
        thread.join()
    if failed:
        raise failed[0]
    return done[0]


def _timed_call(step: str, timings: list[tuple[str, float]], call: Callable[[], T]) -> T:
    with _timed(step, timings):
        return call()


@contextmanager
def _timed(step: str, timings: list[tuple[str, float]]) -> Iterator[None]:
    """Append (step, seconds) to `timings`, for the times `serve` reports."""
    start = time.monotonic()
    yield
    timings.append((step, time.monotonic() - start))

"""A stand-in for a Colab runtime and Colab's runtime proxy, for driving Google's real `colab` CLI.

`colab ssh --proxy-mode -s NAME -i KEY` reads NAME's `url` and `token` from
~/.config/colab-cli/sessions.json and opens a WebSocket to `<url>/colab/ssh`, sending the public key
in the X-Colab-Ssh-Pubkey header; the proxy authorizes that key on the runtime and bridges the
WebSocket to the runtime's sshd. Here the runtime is a real private sshd on loopback (rdev's own
`colab_side.sshd.Sshd`) and the proxy a loopback WebSocket server answering with the statuses and
bodies the CLI (0.7.5, `commands/ssh.py`) turns into its messages. Only what lies beyond this
machine's network is stood in for: the CLI, ssh and sshd are the real ones.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import pwd
import secrets
import tempfile
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from colab_side.sshd import Sshd, ensure_sshd, free_port
from colab_side.state import state_folder, stop_sshd

REPO = Path(__file__).resolve().parents[2]
# The CLI session the end-to-end tests write (tests/e2e/conftest.py).
SESSION = "s1"
SSH_PATH = "/colab/ssh"
TOKEN_PARAMETER = "colab-runtime-proxy-token"
PUBKEY_HEADER = "X-Colab-Ssh-Pubkey"
# What the CLI's own message says the server accepts; RSA is refused.
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")
_TPUS = ("V5E1", "V6E1")


class Runtime:
    """One runtime VM: a real private sshd on 127.0.0.1, reached only through a ColabProxy."""

    def __init__(self, folder: Path, endpoint: str) -> None:
        self.endpoint = endpoint
        self.state = state_folder(folder)
        self.port = free_port("127.0.0.1")
        # The runtime user's home: sessions get it as HOME (sshd's SetEnv overrides the password
        # database's), so what rdev writes into "root's" shell files stays in the test's folder.
        self.home = folder / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        # No other environment: a Colab runtime's sshd knows nothing of the notebook kernel's.
        self._sshd = Sshd(state=self.state, binary=ensure_sshd(), listen="127.0.0.1", port=self.port,
                          user=pwd.getpwuid(os.getuid()).pw_name, authorized_keys=[],
                          environment={"HOME": str(self.home)})

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def start(self) -> None:
        self._sshd.prepare()
        self._sshd.start()

    def stop(self) -> None:
        stop_sshd(self.state)

    def alive(self) -> bool:
        return self._sshd.alive()

    def host_key(self) -> str:
        """The host key sshd presents, as "ssh-ed25519 AAAA..."."""
        return self._sshd.public_host_keys()[0]

    def replace_host_key(self) -> None:
        """The same runtime (same port, same authorized keys) presenting a new host key."""
        self.stop()
        # prepare() rewrites the authorized keys from this list: keep the ones granted so far.
        self._sshd.authorized_keys = self.authorized()
        for path in (self.state.host_key, Path(f"{self.state.host_key}.pub")):
            path.unlink(missing_ok=True)
        self.start()

    def authorized(self) -> list[str]:
        try:
            return [line for line in self.state.authorized_keys.read_text().splitlines() if line.strip()]
        except FileNotFoundError:
            return []

    def authorize(self, public_key_line: str) -> None:
        """Let `public_key_line` log in, as the proxy does with the key in the upgrade's header."""
        line = public_key_line.strip()
        if line not in self.authorized():
            self.state.authorized_keys.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with self.state.authorized_keys.open("a") as keys:
                keys.write(line + "\n")


class ColabProxy:
    """Colab's runtime proxy on loopback: `/colab/ssh` upgrades to a WebSocket bridged to the runtime's
    sshd, one session at a time. Runs its own event loop in a daemon thread."""

    def __init__(self, runtime: Runtime, token: str | None = None) -> None:
        self.runtime = runtime  # a test may replace it, as if the session now led to another VM
        self.token = token or secrets.token_urlsafe(24)
        self.accepted = 0
        self.statuses: list[int] = []
        # The connection holding the one SSH slot; only touched in the loop's thread, so no lock.
        self._holder: ServerConnection | None = None
        self._upstreams: dict[ServerConnection, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
        self._watchers: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="colab-proxy", daemon=True)
        self._thread.start()
        self._server: Server = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _listen(self) -> Server:
        # Port 0: the kernel picks a free port, with no window for another process to take it.
        return await serve(self._bridge, "127.0.0.1", 0, process_request=self._check, compression=None)

    def close(self) -> None:
        """Stop serving, end open sessions, and stop the loop's thread."""
        if self._loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _shutdown(self) -> None:
        self._server.close()
        await self._server.wait_closed()
        for task in list(self._watchers):
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)

    def _reject(self, connection: ServerConnection, status: int, text: str) -> Response:
        self.statuses.append(status)
        return connection.respond(status, text)

    async def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        """The upgrade's checks, in the order the CLI's messages suggest; None accepts it."""
        url = urlsplit(request.path)
        if url.path != SSH_PATH:
            return self._reject(connection, 404, "not found")
        token = parse_qs(url.query).get(TOKEN_PARAMETER, [""])[0]
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            return self._reject(connection, 401, "invalid runtime proxy token")
        pubkey = request.headers.get(PUBKEY_HEADER, "").strip()
        if not pubkey:
            return self._reject(connection, 400, "missing pubkey")
        if pubkey.split()[0] not in KEY_TYPES:
            return self._reject(connection, 400, "unsupported key type")
        if self._holder is not None:
            return self._reject(connection, 429, "ssh session already active")
        # Taken before the first await, so a concurrent upgrade sees it taken.
        self._holder = connection
        runtime = self.runtime
        try:
            upstream = await asyncio.wait_for(asyncio.open_connection(*runtime.address), 5)
        except (OSError, asyncio.TimeoutError):
            self._release(connection)
            return self._reject(connection, 502, "runtime sshd unreachable")
        runtime.authorize(pubkey)
        self._upstreams[connection] = upstream
        # Frees the slot even if the handshake fails after this and the handler never runs.
        watcher = asyncio.create_task(self._release_when_closed(connection))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        self.statuses.append(101)
        return None

    def _release(self, connection: ServerConnection) -> None:
        if self._holder is connection:
            self._holder = None
        upstream = self._upstreams.pop(connection, None)
        if upstream is not None:
            upstream[1].close()

    async def _release_when_closed(self, connection: ServerConnection) -> None:
        try:
            await connection.wait_closed()
        finally:
            self._release(connection)

    async def _bridge(self, connection: ServerConnection) -> None:
        """Copy bytes both ways (binary frames towards the client) until either side closes."""
        upstream = self._upstreams.get(connection)
        if upstream is None:  # the client left between the handshake and now
            return
        reader, writer = upstream
        self.accepted += 1

        async def to_sshd() -> None:
            async for message in connection:
                writer.write(message.encode() if isinstance(message, str) else message)
                await writer.drain()

        async def to_client() -> None:
            while data := await reader.read(65536):
                await connection.send(data)

        tasks = [asyncio.create_task(to_sshd()), asyncio.create_task(to_client())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Freed as soon as either side is gone: the next `colab ssh` must get in at once.
            self._release(connection)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        # Returning closes the WebSocket (1000), which ends the CLI's bridge with exit 0.


def _session_file(home: Path) -> Path:
    return home / ".config" / "colab-cli" / "sessions.json"


def _write_json(path: Path, data: Any) -> None:
    """Replace `path` whole, so a CLI reading it meanwhile sees the old or the new content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2)
    os.replace(temporary, path)


def _read_sessions(home: Path) -> dict[str, Any]:
    try:
        return json.loads(_session_file(home).read_text())
    except FileNotFoundError:
        return {}


def write_session(home: Path, name: str, proxy: ColabProxy, endpoint: str, *,
                  expires: datetime | timedelta | None = timedelta(hours=12), accelerator: str = "T4") -> None:
    """Add or replace session `name` in the CLI's sessions.json, leading to `proxy`.

    `expires` is the proxy token's expiry, absolute (timezone-aware) or from now. A fresh token keeps
    `colab ssh` off Google's servers; None (or one due within 5 minutes) makes the CLI call Google.
    """
    if isinstance(expires, timedelta):
        expires = datetime.now(timezone.utc) + expires
    if expires is not None and expires.tzinfo is None:
        raise ValueError("expires must be timezone-aware: the CLI compares it with an aware UTC time")
    accelerator = accelerator.upper()
    variant = "DEFAULT" if accelerator == "NONE" else "TPU" if accelerator in _TPUS else "GPU"
    sessions = _read_sessions(home)
    sessions[name] = {
        "name": name,
        "token": proxy.token,
        "url": proxy.url,
        "endpoint": endpoint,
        # As pydantic writes an aware UTC datetime.
        "token_expires_at": expires.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if expires else None,
        "variant": variant,
        "accelerator": accelerator,
        "machine_shape": "STANDARD",
        "kernel_id": None,
        "session_id": None,
        "last_execution": None,
        "running": None,
    }
    _write_json(_session_file(home), sessions)


def remove_session(home: Path, name: str) -> None:
    """Drop `name` from sessions.json, as `colab stop` or a prune does."""
    sessions = _read_sessions(home)
    if sessions.pop(name, None) is not None:
        _write_json(_session_file(home), sessions)


def quiet_settings(home: Path) -> None:
    """Turn off the CLI's daily update check, which would call PyPI (and may print a banner) on start."""
    _write_json(home / ".config" / "colab-cli" / "settings.json", {"enable_update_check": False})


def colab_binary() -> Path:
    """Google's real `colab` CLI: $RDEV_TEST_COLAB, else the one scripts/setup.sh installs."""
    binary = Path(os.environ.get("RDEV_TEST_COLAB") or REPO / ".venv-colab" / "bin" / "colab")
    if not os.access(binary, os.X_OK):
        # Not a skip: these tests are how CI knows rdev still works with Google's CLI.
        pytest.fail(f"Google's colab CLI is not at {binary}: run bash scripts/setup.sh")
    return binary


def cli_env(home: Path) -> dict[str, str]:
    """The environment for the CLI (and the ssh that runs it) in `home`, reaching loopback directly:
    websocket-client honours http_proxy unless no_proxy names the host."""
    env = dict(os.environ, HOME=str(home))
    for var in ("no_proxy", "NO_PROXY"):
        names = [n for n in env.get(var, "").split(",") if n.strip()]
        env[var] = ",".join([*names, *(n for n in ("127.0.0.1", "localhost") if n not in names)])
    return env

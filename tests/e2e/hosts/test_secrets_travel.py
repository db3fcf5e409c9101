"""No secret of the serving process travels on, looked at where the environment arrives and stays: a session
started through the real sshd (`ssh ... env`), the background editor-server fetch while it runs (its
/proc/PID/environ, and the request it sends through a proxy whose URL held a password), the state folder, and
the kernel-env file an SSH shell reads. sshd's own /proc/PID/environ cannot tell: sshd overwrites it when it
retitles itself.

Every secret's value holds `leak`, so one found anywhere is one that got through.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.colab_side.notebook.test_kernel_env import base_environment, kernel, run_kernel_env, shell  # noqa: F401 (kernel: a fixture)
from tests.conftest import read_or_empty, ssh_through

COMMIT = "5" * 40
SECRETS = {
    "HF_TOKEN": "hf-leak", "BORG_PASSPHRASE": "pp-leak", "SSHPASS": "sp-leak", "MYSQL_PWD": "my-leak",
    "GH_PAT": "ghpat-leak", "HF_PAT": "hfpat-leak", "JWT": "jwt-leak", "SESSION_COOKIE": "ck-leak",
    "SENTRY_DSN": "https://dsn-leak@o0.ingest.sentry.io/1",
    "AZURE_STORAGE_CONNECTION_STRING": "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=az-leak",
    "ODD_NAME": "Server=db;Uid=u;pwd=odd-leak",
}
# Passed on with their credentials cut out.
DATABASE_URL = ("postgres://u:db-leak@db.internal/app", "postgres://db.internal/app")
KEPT = {"CUDA_HOME": "/usr/local/cuda-travel", "NOTE": "kept-as-is"}


class HangingProxy:
    """An HTTP proxy on loopback that takes a request and answers only once released: the fetch waits meanwhile,
    long enough to be looked at. `heads` holds the requests' lines and headers as they came."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.heads: list[str] = []
        self.asked = threading.Event()
        self.released = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            with conn:
                head = b""
                while b"\r\n\r\n" not in head and (chunk := conn.recv(4096)):
                    head += chunk
                self.heads.append(head.decode(errors="replace"))
                self.asked.set()
                self.released.wait(60)
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def close(self) -> None:
        self.released.set()
        self.sock.close()


@pytest.fixture
def hanging_proxy() -> Iterator[HangingProxy]:
    proxy = HangingProxy()
    yield proxy
    proxy.close()


def prefetch_environ() -> bytes:
    """The environment of this test's editor-server fetch, found by what it fetches."""
    wanted = f"colab_side.prefetch\0code:stable:{COMMIT}".encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        if wanted in read_or_empty(cmdline):
            return read_or_empty(cmdline.parent / "environ")
    raise AssertionError("the editor-server fetch is not running")


def test_no_secret_reaches_a_session_the_fetch_or_the_state_folder(home: Path, rdev, server,
                                                                   hanging_proxy: HangingProxy) -> None:
    proxy = (f"http://proxyuser:px-leak@127.0.0.1:{hanging_proxy.port}", f"http://127.0.0.1:{hanging_proxy.port}")
    env = {**{key: value for key, value in os.environ.items() if "proxy" not in key.lower()}, **SECRETS, **KEPT,
           "DATABASE_URL": DATABASE_URL[0], "https_proxy": proxy[0], "RDEV_EDITOR_DOWNLOADS": "https://downloads.invalid"}
    ticket = server("--editor-server", f"code:stable:{COMMIT}", env=env)

    # The fetch, held up in its download: its environment, and what it told the proxy.
    assert hanging_proxy.asked.wait(30), "the fetch did not go through the proxy"
    fetching = prefetch_environ()
    assert b"leak" not in fetching
    assert f"https_proxy={proxy[1]}\0".encode() in fetching and b"\0CUDA_HOME=/usr/local/cuda-travel\0" in fetching
    assert f"DATABASE_URL={DATABASE_URL[1]}\0".encode() in fetching
    head = hanging_proxy.heads[0]
    assert head.startswith("CONNECT downloads.invalid:443 ")  # the stripped proxy still carries the fetch
    assert "proxy-authorization" not in head.lower()
    hanging_proxy.released.set()

    # A session, started through the real sshd.
    assert rdev("connect", "box", "--ticket", ticket, "--no-open").returncode == 0
    result = ssh_through(home, "box", "env")
    assert result.returncode == 0, result.stderr
    session = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert "leak" not in result.stdout
    assert not set(SECRETS) & set(session)
    assert {key: session.get(key) for key in (*KEPT, "DATABASE_URL", "https_proxy")} == {
        **KEPT, "DATABASE_URL": DATABASE_URL[1], "https_proxy": proxy[1]}

    # Nothing in the state folder either (sshd_config holds the SetEnv line).
    state = home.parent / "server"
    log = state / "editor-server.log"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "not fetched" not in (log.read_text() if log.exists() else ""):
        time.sleep(0.1)
    assert "not fetched" in log.read_text()
    leaking = [str(path) for path in state.rglob("*") if path.is_file() and b"leak" in path.read_bytes()]
    assert leaking == []


def test_no_secret_reaches_the_kernel_env_file(home: Path, kernel) -> None:  # noqa: F811 (the fixture)
    kernel({**SECRETS, **KEPT, "DATABASE_URL": DATABASE_URL[0], "HTTPS_PROXY": "http://u:px-leak@proxy:3128"})
    report, _ = run_kernel_env(base_environment(home))
    assert report["variables"] == sorted([*KEPT, "DATABASE_URL", "HTTPS_PROXY"])
    written = b"".join(path.read_bytes() for path in home.rglob("*") if path.is_file())
    assert b"leak" not in written
    said = shell(home, "--login", "-c", 'echo "$DATABASE_URL $HTTPS_PROXY $CUDA_HOME"')
    assert said == f"{DATABASE_URL[1]} http://proxy:3128 /usr/local/cuda-travel\n"

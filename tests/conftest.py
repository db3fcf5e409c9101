"""Shared fixtures: a throwaway HOME for every test, the rdev CLI as a child process, a real sshd."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from client_side.editors.editor import Editor
    from tests.stand_ins.downloads import Downloads

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short temporary HOME (ControlPath sockets need short paths) with XDG folders inside it."""
    root = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    home = root / "h"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("HOME", str(home))
    for var, sub in (("XDG_CONFIG_HOME", "cfg"), ("XDG_STATE_HOME", "state"), ("XDG_CACHE_HOME", "cache"),
                     ("XDG_DATA_HOME", "data")):
        monkeypatch.setenv(var, str(root / sub))
    monkeypatch.delenv("RDEV_EDITOR", raising=False)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    yield home
    close_masters(home)
    shutil.rmtree(root, ignore_errors=True)


def python_38() -> str:
    """The runtime side's oldest Python (Ubuntu 20.04's school servers run 3.8), on PATH or one pyenv installed (its
    shim answers only for the selected versions); the test is skipped where the machine has none."""
    pyenv = sorted(Path(os.environ.get("PYENV_ROOT", "/root/.pyenv")).glob("versions/3.8*/bin/python3.8"))
    found = [python for python in [shutil.which("python3.8"), *map(str, pyenv)]
             if python and subprocess.run([python, "--version"], check=False, capture_output=True).returncode == 0]
    if not found:
        pytest.skip("no Python 3.8 on this machine")
    return found[0]


def close_masters(home: Path) -> None:
    """End the ControlMaster processes a test's ssh left behind."""
    sockets = home / ".ssh" / "rdev" / "cm"
    for sock in sockets.glob("*") if sockets.exists() else []:
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"], check=False, capture_output=True, timeout=30)


def popen_answering_ctrl_c(argv: list[str], **options: Any) -> subprocess.Popen:
    """subprocess.Popen for a child the test sends SIGINT. A suite started in the background (`pytest &`,
    nohup) runs with SIGINT ignored, children inherit that, and Python then keeps it ignored instead of
    raising KeyboardInterrupt. A signal this process handles is reset to its default at exec, so the child
    is started while this process handles SIGINT: it gets what a terminal's foreground process has."""
    kept = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(argv, **options)
    finally:
        signal.signal(signal.SIGINT, kept)


def run_module(module: str, *args: str, input: str | None = None, env: dict | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], check=False, input=input, capture_output=True, text=True,
                          env=env or os.environ.copy(), timeout=timeout, cwd=REPO)


@pytest.fixture
def rdev(home: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Run `rdev ARGS...` as a child process in the test's HOME."""
    def run(*args: str, input: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
        return run_module("client_side", *args, input=input, env=env)
    return run


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its bytes, to prove a failed command wrote nothing."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def serve(home: Path, *args: str, env: dict | None = None) -> str:
    """Start a private sshd (tunnel direct) for rdev's key in `home`; return the ticket."""
    key = run_module("client_side", "key").stdout.strip()
    state = home.parent / "server"
    result = run_module("colab_side", "serve", "--authorized-key", key, "--state-dir", str(state),
                        "--no-keep-alive", *args, env=env)
    assert result.returncode == 0, result.stderr
    return next(line for line in result.stdout.splitlines() if line.startswith("rdev1."))


@pytest.fixture
def server(home: Path) -> Iterator[Callable[..., str]]:
    """`server(*serve_args)` starts a real sshd in the test's state folder; all are stopped after the test."""
    yield lambda *args, env=None: serve(home, *args, env=env)
    run_module("colab_side", "stop", "--state-dir", str(home.parent / "server"))


def standin(home: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> Path:
    """An executable `name` that runs tests/stand_ins/NAME.py with this Python; records live beside HOME."""
    records = home.parent / "edge"
    records.mkdir(exist_ok=True)
    monkeypatch.setenv("RDEV_STANDIN_DIR", str(records))
    script = home.parent / "bin" / name
    script.parent.mkdir(exist_ok=True)
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{REPO / "tests" / "stand_ins" / f"{name}.py"}" "$@"\n')
    script.chmod(0o755)
    return script


def editor_standin(home: Path, monkeypatch: pytest.MonkeyPatch, name: str = "code",
                   extensions: tuple[str, ...] = ("ms-vscode-remote.remote-ssh",)) -> tuple[Path, Path]:
    """An editor launcher called `name` (in HOME's sibling bin/, not yet on PATH) with `extensions`
    installed; returns it and the file its calls are recorded in (one JSON line each)."""
    script = home.parent / "bin" / name
    script.parent.mkdir(exist_ok=True)
    script.write_text(f'#!/bin/sh\nRDEV_STANDIN_AS={name} exec "{sys.executable}" '
                      f'"{REPO / "tests" / "stand_ins" / "editor.py"}" "$@"\n')
    script.chmod(0o755)
    records = home.parent / "edge"
    records.mkdir(exist_ok=True)
    monkeypatch.setenv("RDEV_STANDIN_DIR", str(records))
    monkeypatch.setenv("RDEV_STANDIN_EXTENSIONS", ",".join(extensions))
    return script, records / "editor-calls.jsonl"


def vscodium_standin(home: Path, monkeypatch: pytest.MonkeyPatch, **product: object) -> Editor:
    """A VSCodium install as its Linux package lays it out: <app>/bin/codium, <app>/resources/app/product.json."""
    from client_side.editors.editor import BY_NAME, Editor

    commit = "c" * 40  # tests.stand_ins.downloads.Downloads.codium_commit
    monkeypatch.setenv("RDEV_STANDIN_COMMIT", commit)
    launcher, _ = editor_standin(home, monkeypatch, name="codium", extensions=("jeanp413.open-remote-ssh",))
    fields = {"commit": commit, "quality": "stable", "release": "25017", "serverDataFolderName": ".vscodium-server",
              "serverApplicationName": "codium-server", **product}
    app = launcher.parent.parent / "resources" / "app"
    app.mkdir(parents=True)
    (app / "product.json").write_text(json.dumps({k: v for k, v in fields.items() if v is not None}))
    return Editor(BY_NAME["codium"], str(launcher))


def editor_fetching(home: Path, monkeypatch: pytest.MonkeyPatch, commit: str, downloads_url: str) -> Path:
    """The recording editor as RDEV_EDITOR, of build `commit`, with the editors' downloads at `downloads_url`;
    the file its calls are recorded in."""
    editor, record = editor_standin(home, monkeypatch)
    monkeypatch.setenv("RDEV_EDITOR", str(editor))
    monkeypatch.setenv("RDEV_STANDIN_COMMIT", commit)
    monkeypatch.setenv("RDEV_EDITOR_DOWNLOADS", downloads_url)
    return record


def editor_calls(record: Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


@pytest.fixture
def downloads() -> Iterator[Downloads]:
    """A stand-in for the editors' download servers, on loopback."""
    from tests.stand_ins.downloads import Downloads

    server = Downloads()
    yield server
    server.close()


@pytest.fixture
def cloudflared_standin(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return standin(home, monkeypatch, "cloudflared")


@pytest.fixture
def ngrok_standin(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return standin(home, monkeypatch, "ngrok")


def ssh_through(home: Path, *args: str) -> subprocess.CompletedProcess:
    """The real ssh client with the config rdev wrote in `home`, never asking anything."""
    return subprocess.run(["ssh", "-F", str(home / ".ssh" / "config"), "-o", "BatchMode=yes", *args], check=False,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def read_or_empty(path: Path) -> bytes:
    """A /proc file, or nothing if its process ended meanwhile."""
    try:
        return path.read_bytes()
    except OSError:
        return b""


@pytest.fixture(scope="session")
def secret_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real Secret Service: gnome-keyring-daemon on a private D-Bus session bus, its login keyring
    unlocked. Yields the environment a child needs to use it through `keyring`."""
    root = tmp_path_factory.mktemp("secrets")
    (root / "run").mkdir(mode=0o700)
    env = {**os.environ, "HOME": str(root), "XDG_DATA_HOME": str(root / "data"), "XDG_RUNTIME_DIR": str(root / "run")}
    bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1", f"--address=unix:path={root}/bus"],
                           stdout=subprocess.PIPE, text=True, env=env)
    env["DBUS_SESSION_BUS_ADDRESS"] = bus.stdout.readline().strip()
    daemon = subprocess.Popen(["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    daemon.stdin.write(b"keyring-unlock")  # the login keyring's own password, read once at start
    daemon.stdin.close()
    wanted = {"DBUS_SESSION_BUS_ADDRESS": env["DBUS_SESSION_BUS_ADDRESS"],
              "PYTHON_KEYRING_BACKEND": "keyring.backends.SecretService.Keyring"}
    probe = [sys.executable, "-c", "import keyring; keyring.set_password('rdev-probe', 'p', 'x')"]
    deadline = time.monotonic() + 20
    while subprocess.run(probe, check=False, env={**os.environ, **wanted}, capture_output=True).returncode != 0:
        assert time.monotonic() < deadline, "gnome-keyring-daemon did not come up"
        time.sleep(0.2)
    yield wanted
    daemon.terminate()
    bus.terminate()
    daemon.wait(10)
    bus.wait(10)

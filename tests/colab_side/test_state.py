"""Unit tests for colab_side/state.py, the one owner of the runtime's state folder, and for the
shape of colab_side's imports: no module imports one that (directly or not) imports it back."""

from __future__ import annotations

import ast
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from colab_side import state, status
from tests.conftest import REPO

PACKAGE = REPO / "colab_side"


def test_every_file_name_of_the_state_folder_comes_from_one_module(tmp_path: Path) -> None:
    """The names other tests and `stop` rely on, all inside the folder."""
    folder = state.StateFolder(tmp_path)
    names = {
        folder.sshd_config: "sshd_config", folder.host_key: "ssh_host_ed25519_key", folder.sshd_pid: "sshd.pid",
        folder.sshd_log: "sshd.log", folder.keys: "keys", folder.authorized_keys: "keys/authorized_keys", folder.ticket: "ticket", folder.tunnel_pid: "tunnel.pid",
        folder.tunnel_log: "tunnel.log", folder.ngrok_config: "ngrok.yml", folder.supervisor_pid: "supervisor.pid",
        folder.supervisor_log: "supervisor.log", folder.stopped_marker: "stopped",
    }
    assert all(path == tmp_path / name for path, name in names.items())


def test_stopped_marker(tmp_path: Path) -> None:
    """`stop` marks the folder, a new serve clears the mark; a missing folder is not marked and not created."""
    folder = state.StateFolder(tmp_path / "server")
    folder.mark_stopped()
    assert not folder.root.exists() and not folder.stopped()
    folder.root.mkdir()
    folder.mark_stopped()
    assert folder.stopped()
    folder.clear_stopped()
    assert not folder.stopped()


def test_folder_is_absolute_and_defaults_under_xdg_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative --state-dir names the same folder (and the same process markers) for serve and stop."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state.state_folder(None).root == tmp_path / "xdg" / "rdev" / "server"
    monkeypatch.chdir(tmp_path)
    assert state.state_folder("here").root == tmp_path / "here"


def test_status_line_is_made_of_plain_values() -> None:
    """The status display gets values, not the server: tunnel, where, sessions, uptime and time left."""
    started = datetime(2026, 1, 1, 10, 0, tzinfo=timezone.utc)
    view = status.View(tunnel="cloudflared", where="a.trycloudflare.com:22", sessions=2, started=started,
                       expires=datetime(2026, 1, 1, 22, 0, tzinfo=timezone.utc))
    text = status.line(view, gpus="no GPU", now=datetime(2026, 1, 1, 11, 30, tzinfo=timezone.utc))
    assert text == "rdev: cloudflared a.trycloudflare.com:22 | 2 SSH session(s) | no GPU | up 1h30m, about 10h30m left"


def _imports(path: Path, module: str, modules: set[str]) -> set[str]:
    """The colab_side modules `path` imports anywhere (in functions and TYPE_CHECKING blocks too)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            # `from colab_side import runtime` imports the module colab_side.runtime, not the package's names.
            found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names)
    return {name for name in found if name in modules and name != module}


def _graph() -> dict[str, set[str]]:
    paths = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["colab_side", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        paths[".".join(parts)] = path
    return {name: _imports(path, name, set(paths)) for name, path in paths.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None."""
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> list[str] | None:
        if name in trail:
            return trail[trail.index(name):] + [name]
        if name in done:
            return None
        for dep in sorted(graph[name]):
            found = visit(dep, [*trail, name])
            if found:
                return found
        done.add(name)
        return None

    return next((found for name in sorted(graph) if (found := visit(name, []))), None)


def test_no_import_cycle_in_colab_side() -> None:
    """Neither top-level, lazy, nor TYPE_CHECKING imports may lead back to the importing module."""
    graph = _graph()
    assert "colab_side.state" in graph and "colab_side.server" in graph
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_supervisor_and_status_do_not_import_the_server() -> None:
    graph = _graph()
    for name in ("colab_side.supervisor", "colab_side.status"):
        assert "colab_side.server" not in graph[name], name


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_supervisor_restarts_through_callbacks_and_finishes_once_stopped() -> None:
    """The supervisor knows its parts only as callbacks; once `stopped()` says so it calls `finish` and ends."""
    from colab_side.supervisor import Part, Supervisor

    up, restarts, finished, stop_now = [False], [], [], [False]

    def restart(halt: object) -> None:
        restarts.append(1)
        up[0] = True

    supervisor = Supervisor([Part("thing", lambda: up[0], restart)], stopped=lambda: stop_now[0],
                            replaced=lambda: False, finish=lambda: finished.append(1), say=lambda _: None)
    supervisor.start()
    assert _within(10, lambda: restarts == [1])
    stop_now[0] = True
    assert _within(10, lambda: finished == [1])
    supervisor.stop()
    assert restarts == [1] and finished == [1]


def _within(seconds: float, condition) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_folder_named_two_ways_is_one_folder(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    assert state.state_folder(tmp_path / "x" / ".." / "s").root == state.state_folder(tmp_path / "s").root


def test_a_reused_tunnel_pid_is_not_the_tunnel(tmp_path: Path) -> None:
    """Another process that names the state folder is not the tunnel, even under the recorded pid."""
    import subprocess
    import sys

    folder = state.StateFolder(tmp_path)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", str(tmp_path / "tunnel.pid")])
    try:
        folder.tunnel_pid.write_text(f"{other.pid} 1\n")  # the recorded tunnel started long before this process
        assert state.tunnel_running(folder) is None
        assert not state.stop_tunnel(folder) and other.poll() is None
    finally:
        other.kill()
        other.wait()

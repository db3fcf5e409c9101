"""The generated notebook cell, run as it is where rdev is not installed: it starts a real sshd and
prints a ticket that `rdev connect` turns into a working SSH host. And the ngrok cell, as printed and
copied on the laptop, carries no token even when the laptop has one in its environment."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bootstrap import cell
from client_side.colab import cell as colab_cell
from colab_side import processes
from colab_side.state import default_state_dir
from tests.bootstrap.test_cell import PIP_LINE
from tests.conftest import run_module, ssh_through
from tests.stand_ins.downloads import Downloads


def fresh_python(home: Path) -> tuple[str, dict[str, str]]:
    """The Python of a new virtual environment without rdev or pip, and an environment for it in which
    rdev is not importable (run it from a folder without rdev's code)."""
    fresh = home.parent / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True, timeout=120)
    python = str(fresh / "bin" / "python")
    bare = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    assert subprocess.run([python, "-c", "import colab_side"], check=False, cwd=home.parent, env=bare,
                          capture_output=True).returncode != 0, "rdev must not be importable there"
    return python, bare


@contextmanager
def running_cell(home: Path, code: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, list[str]]]:
    """Run the cell where rdev is not installed until it prints its ticket; yield the ticket and the lines
    printed before it. Afterwards the server is stopped and the cell must have ended by itself."""
    python, bare = fresh_python(home)
    state = default_state_dir()  # the cell passes no state_dir; XDG_STATE_HOME points into the test's HOME
    assert str(state).startswith(str(home.parent))
    # Unbuffered: a notebook shows each line at once, a pipe would hold the ticket back.
    child = subprocess.Popen([python, "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=home.parent, env={**bare, **(env or {}), "PYTHONUNBUFFERED": "1"})
    sshd = None
    try:
        child.stdin.write(code)
        child.stdin.close()
        printed = [child.stdout.readline()]
        while not printed[-1].startswith("rdev1."):
            assert printed[-1], child.stderr.read()
            printed.append(child.stdout.readline())
        sshd = processes.read_pid(state / "sshd.pid")
        assert sshd and processes.alive(sshd)
        assert child.poll() is None, "the cell keeps the runtime alive"
        yield printed[-1].strip(), printed[:-1]
        assert run_module("colab_side", "stop", "--state-dir", str(state)).returncode == 0
        # The cell's keep-alive loop sees the stop and the cell ends by itself.
        assert child.wait(timeout=30) == 0, child.stderr.read()
    finally:
        child.kill()
        child.wait()
        run_module("colab_side", "stop", "--state-dir", str(state))
    assert processes.read_pid(state / "sshd.pid") is None and not processes.alive(sshd)


def test_cell_carries_the_runtime_and_serves_where_rdev_is_not_installed(home: Path, rdev) -> None:
    """The cell as printed (a direct tunnel needs no package), run by the Python of a fresh virtual
    environment without rdev or pip, from a folder without rdev's code: it serves, and its ticket connects."""
    code = cell.render(rdev("key").stdout.strip(), "direct", "colab", runtime_zip=colab_cell.runtime_zip())
    assert PIP_LINE not in code
    with running_cell(home, code) as (ticket, _):
        connected = rdev("connect", "box", "--ticket", ticket, "--no-open")
        assert connected.returncode == 0, connected.stderr
        assert ssh_through(home, "box", "echo", "ok").stdout.strip() == "ok"


def test_the_cell_fetches_the_editor_server_once_started_ahead_of_serve(home: Path, rdev,
                                                                        downloads: Downloads) -> None:
    """The cell starts the fetch as soon as colab_side is importable; serve, given the same editor server,
    adopts that fetch: each archive is downloaded once, and the server is unpacked where the editor looks."""
    commit = "5" * 40
    code = cell.render(rdev("key").stdout.strip(), "direct", "colab", runtime_zip=colab_cell.runtime_zip(),
                       editor_server=f"code:stable:{commit}")
    with running_cell(home, code, env={"RDEV_EDITOR_DOWNLOADS": downloads.url}) as (ticket, _):
        unit = home / ".vscode-server" / "cli" / "servers" / f"Stable-{commit}" / "server" / "bin" / "code-server"
        log = default_state_dir() / "editor-server.log"
        deadline = time.monotonic() + 30
        while not (log.exists() and log.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert log.read_text().strip() == f"Editor server: code {commit[:10]} is ready in ~/.vscode-server."
        assert unit.exists()
        assert sorted(downloads.requests) == [f"/commit:{commit}/cli-alpine-x64/stable",
                                              f"/commit:{commit}/server-linux-x64/stable"]
        assert rdev("connect", "box", "--ticket", ticket, "--no-open").returncode == 0


def test_drive_cell_writes_the_ticket_file_the_laptop_reads(home: Path, rdev) -> None:
    """--drive: the cell mounts Drive (a stand-in for google.colab.drive that makes the folder), writes
    the ticket to MyDrive/rdev/colab.ticket and says the laptop command; that command connects."""
    standin = home.parent / "colab-modules" / "google" / "colab"
    standin.mkdir(parents=True)
    (standin.parent / "__init__.py").write_text("")
    (standin / "__init__.py").write_text("")
    (standin / "drive.py").write_text("import os\n\ndef mount(path):\n    os.makedirs(os.path.join(path, 'MyDrive'))\n")
    mount = home.parent / "drive"
    laptop_file = mount / "MyDrive" / "rdev" / "colab.ticket"  # here the laptop "syncs" the same folder
    drive = cell.Drive(name="colab", laptop_file=str(laptop_file), mount=str(mount))
    code = cell.render(rdev("key").stdout.strip(), "direct", "colab", runtime_zip=colab_cell.runtime_zip(), drive=drive)
    with running_cell(home, code, env={"PYTHONPATH": str(standin.parent.parent)}) as (ticket, printed):
        assert laptop_file.read_text().strip() == ticket
        said = next(line for line in printed if "--ticket-file" in line)
        command = shlex.split(said.split(": ", 1)[1])
        assert command == ["rdev", "connect", "colab", "--ticket-file", str(laptop_file)]
        connected = rdev(*command[1:], "--no-open")
        assert connected.returncode == 0, connected.stderr
        assert ssh_through(home, "colab", "echo", "ok").stdout.strip() == "ok"


def test_ngrok_cell_printed_and_copied_has_no_token(home: Path) -> None:
    record = home.parent / "clipboard"
    xclip = home.parent / "bin" / "xclip"
    xclip.parent.mkdir()
    xclip.write_text(f"#!{sys.executable}\nimport sys\nopen({str(record)!r}, 'wb').write(sys.stdin.buffer.read())\n")
    xclip.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "WAYLAND_DISPLAY"}
    env.update(NGROK_AUTHTOKEN="2xLaptopT0ken_abc", PATH=f"{xclip.parent}:{env['PATH']}", DISPLAY=":0")
    result = run_module("client_side", "colab", "cell", "--tunnel", "ngrok", env=env)
    assert result.returncode == 0, result.stderr
    assert "token=token" in result.stdout and "getpass.getpass(" in result.stdout
    assert record.read_text() == result.stdout
    assert "NGROK_AUTHTOKEN" in result.stderr and "copied to the clipboard" in result.stderr
    compile(result.stdout, "cell", "exec")
    assert "2xLaptopT0ken_abc" not in result.stdout + result.stderr

"""The generated notebook cell, run as it is where rdev is not installed: it starts a real sshd and
prints a ticket that `rdev connect` turns into a working SSH host. And the ngrok cell, as printed and
copied on the laptop, carries no token even when the laptop has one in its environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bootstrap import cell
from client_side import colab_cell
from colab_side import processes
from colab_side.state import default_state_dir
from tests.conftest import run_module, ssh_through
from tests.test_cell import PIP_LINE


def test_cell_carries_the_runtime_and_serves_where_rdev_is_not_installed(home: Path, rdev) -> None:
    """The cell as printed (a direct tunnel needs no package), run by the Python of a fresh virtual
    environment without rdev or pip, from a folder without rdev's code: it serves, and its ticket connects."""
    key = rdev("key").stdout.strip()
    code = cell.render(key, "direct", "colab", runtime_zip=colab_cell.runtime_zip())
    assert PIP_LINE not in code
    fresh = home.parent / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True, timeout=120)
    python = str(fresh / "bin" / "python")
    bare = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    assert subprocess.run([python, "-c", "import colab_side"], cwd=home.parent, env=bare,
                          capture_output=True).returncode != 0, "rdev must not be importable there"
    state = default_state_dir()  # the cell passes no state_dir; XDG_STATE_HOME points into the test's HOME
    assert str(state).startswith(str(home.parent))
    # Unbuffered: a notebook shows each line at once, a pipe would hold the ticket back.
    child = subprocess.Popen([python, "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=home.parent, env={**bare, "PYTHONUNBUFFERED": "1"})
    sshd = None
    try:
        child.stdin.write(code)
        child.stdin.close()
        line = ""
        while not line.startswith("rdev1."):
            line = child.stdout.readline()
            assert line, child.stderr.read()
        sshd = processes.read_pid(state / "sshd.pid")
        assert sshd and processes.alive(sshd)
        assert child.poll() is None, "the cell keeps the runtime alive"
        connected = rdev("connect", "box", "--ticket", line.strip(), "--no-open")
        assert connected.returncode == 0, connected.stderr
        assert ssh_through(home, "box", "echo", "ok").stdout.strip() == "ok"
        assert run_module("colab_side", "stop", "--state-dir", str(state)).returncode == 0
        # The cell's keep-alive loop sees the stop and the cell ends by itself.
        assert child.wait(timeout=30) == 0, child.stderr.read()
    finally:
        child.kill()
        child.wait()
        run_module("colab_side", "stop", "--state-dir", str(state))
    assert processes.read_pid(state / "sshd.pid") is None and not processes.alive(sshd)


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

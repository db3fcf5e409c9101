"""The one cell in a real Jupyter kernel: the status updates in place, interrupting the cell stops
only the display, and the server goes on until `stop()`."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import time
from pathlib import Path

import jupyter_client
import pytest
from jupyter_client.kernelspec import KernelSpecManager

from bootstrap import cell
from client_side.colab import cell as colab_cell
from colab_side import processes
from colab_side.state import default_state_dir
from tests.conftest import REPO, run_module, ssh_through


def messages(client, until: float):
    """iopub messages until the deadline."""
    while time.monotonic() < until:
        try:
            yield client.get_iopub_msg(timeout=0.5)
        except queue.Empty:
            continue


def test_cell_shows_live_status_and_survives_an_interrupt(home: Path, rdev) -> None:
    key = rdev("key").stdout.strip()
    state = home.parent / "server"
    manager = jupyter_client.KernelManager(kernel_name="python3")
    manager.start_kernel(cwd=str(REPO))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        client.execute(f"import colab_side\nserver = colab_side.serve(authorized_keys=[{key!r}], state_dir={str(state)!r})")
        printed, display_ids, updated = [], set(), False
        for msg in messages(client, time.monotonic() + 60):
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                printed += content["text"].splitlines()
            elif kind == "display_data":
                display_ids.add(content["transient"]["display_id"])
            elif kind == "update_display_data":
                assert content["transient"]["display_id"] in display_ids
                assert "SSH session(s)" in content["data"]["text/plain"]
                updated = True
                break
            elif kind == "error":
                pytest.fail("\n".join(content["traceback"]))
        assert updated, printed
        ticket = next(line for line in printed if line.startswith("rdev1."))

        manager.interrupt_kernel()
        reply = client.get_shell_msg(timeout=30)
        assert reply["content"]["status"] == "ok", reply["content"]
        sshd = processes.read_pid(state / "sshd.pid")
        assert sshd and processes.alive(sshd)
        assert rdev("connect", "colab", "--ticket", ticket, "--no-open").returncode == 0
        assert ssh_through(home, "colab", "echo still serving").stdout.strip() == "still serving"

        client.execute("server.stop()")
        assert client.get_shell_msg(timeout=30)["content"]["status"] == "ok"
        assert not processes.alive(sshd)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        run_module("colab_side", "stop", "--state-dir", str(state))


def test_the_printed_cell_serves_in_a_kernel_where_rdev_is_not_installed(home: Path, rdev) -> None:
    """The cell as `rdev colab cell` renders it, run in a real Jupyter kernel of a fresh virtual
    environment that has ipykernel but not rdev: it serves, and its ticket connects."""
    fresh = home.parent / "kernel-venv"
    subprocess.run([sys.executable, "-m", "venv", str(fresh)], check=True, timeout=300)
    python = str(fresh / "bin" / "python")
    installed = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "ipykernel"], check=False,
                               capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-2000:]
    assert subprocess.run([python, "-c", "import colab_side"], check=False, cwd=home.parent, capture_output=True).returncode != 0
    code = cell.render(rdev("key").stdout.strip(), "direct", "colab", runtime_zip=colab_cell.runtime_zip())
    spec = home.parent / "kernels" / "fresh"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                                                  "display_name": "fresh", "language": "python"}))
    manager = jupyter_client.KernelManager(kernel_name="fresh",
                                           kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)]))
    manager.start_kernel(cwd=str(home.parent), env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        client.execute(code)
        printed: list[str] = []
        for msg in messages(client, time.monotonic() + 120):
            if msg["msg_type"] == "stream":
                printed += msg["content"]["text"].splitlines()
            elif msg["msg_type"] == "error":
                pytest.fail("\n".join(msg["content"]["traceback"]))
            if any(line.startswith("rdev1.") for line in printed):
                break
        ticket = next(line for line in printed if line.startswith("rdev1."))
        assert rdev("connect", "colab", "--ticket", ticket, "--no-open").returncode == 0
        assert ssh_through(home, "colab", "echo served by the kernel").stdout.strip() == "served by the kernel"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        run_module("colab_side", "stop", "--state-dir", str(default_state_dir()))

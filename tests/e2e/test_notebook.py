"""The one cell in a real Jupyter kernel: the status updates in place, interrupting the cell stops
only the display, and the server goes on until `stop()`."""

from __future__ import annotations

import queue
import time
from pathlib import Path

import jupyter_client
import pytest

from colab_side import processes
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

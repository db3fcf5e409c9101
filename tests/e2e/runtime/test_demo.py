"""`rdev demo`: the whole path on this machine, cleaned up afterwards."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.conftest import run_module


def test_demo_runs_end_to_end_and_cleans_up(home: Path) -> None:
    result = run_module("client_side", "demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "hello from " in out and "the notebook's environment reached this session" in out
    assert "code --remote ssh-remote+demo " in out
    for step in ("rdev key", "serve (private sshd, direct)", "rdev connect demo --no-open", "rdev remove demo"):
        assert re.search(rf"\d+\.\d\d s  {re.escape(step)}", out), step
    # Nothing it says points at what it removed, or times a step that did not happen.
    assert "Try: ssh demo" not in out and "direct binary" not in out
    folder = Path(re.search(r"rdev demo in (\S+)", out).group(1))
    assert not folder.exists()
    ps = subprocess.run(["ps", "-eo", "stat=,args="], check=False, capture_output=True, text=True).stdout
    assert not [line for line in ps.splitlines() if str(folder) in line and not line.startswith("Z")]
    assert not (home / ".ssh").exists(), "the demo must not touch the caller's HOME"

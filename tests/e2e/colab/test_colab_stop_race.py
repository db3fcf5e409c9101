"""`rdev stop` against the editor's reconnects, through Google's real colab CLI and a stand-in for Colab's
runtime proxy: the stop closes the master connection, the editor reconnects at once, and its ProxyCommand
must never end up in a CLI that finds the session gone (the CLI then creates a new, paid, runtime).

The CLI's `new`, `status` and `stop` are played by tests/stand_ins/colab.py; its `ssh` is the real CLI with
one function replaced: `_auto_create_session`, where it would create a runtime, records the attempt and
exits instead of calling Google.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from client_side.local import locking
from tests.conftest import REPO, ssh_through, standin
from tests.stand_ins.colab_runtime import SESSION, ColabProxy, Runtime, colab_binary, write_session

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="Colab runtimes log in as root")

# From the stop starting half a second before the reconnect (it is still starting up when the guard
# checks) to well after it (the CLI has connected): the CLI reads the session file about 0.6 s after
# the guard's check, and the unguarded stop removed the session about 0.5 s after it started.
DELAYS = [round(-0.5 + 0.1 * step, 1) for step in range(20)]


@pytest.fixture
def records(home: Path, proxy: ColabProxy, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in `colab` as rdev's CLI, its `ssh` the real CLI that records a creation instead of making one."""
    fake = standin(home, monkeypatch, "colab")
    folder = Path(os.environ["RDEV_STANDIN_DIR"])
    creating = home.parent / "bin" / "colab-real"
    creating.write_text(f"""#!{colab_binary().parent / "python"}
import os, sys
from colab_cli.commands import ssh

def _record(*args, **kwargs):
    with open(os.path.join({str(folder)!r}, "colab-created"), "a") as out:
        out.write(repr((args, kwargs)) + "\\n")
    sys.exit(3)

ssh._auto_create_session = _record
from colab_cli.cli import main
sys.exit(main())
""")
    creating.chmod(0o755)
    monkeypatch.setenv("RDEV_STANDIN_REAL_COLAB", str(creating))
    monkeypatch.setenv("RDEV_COLAB", str(fake))
    return folder


def reconnect_and_stop(home: Path, delay: float) -> tuple[subprocess.Popen, subprocess.Popen]:
    """What the editor does once its master connection is gone (a new ssh, with the config rdev wrote), and
    `rdev stop`, started `delay` seconds after it (before it, if negative)."""
    def editor() -> subprocess.Popen:
        return subprocess.Popen(["ssh", "-F", str(home / ".ssh" / "config"), "-o", "BatchMode=yes", "colab", "true"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def stop() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "client_side", "stop", "colab"], cwd=REPO,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    first, then = (editor, stop) if delay >= 0 else (stop, editor)
    started = first()
    time.sleep(abs(delay))
    followed = then()
    return (started, followed) if delay >= 0 else (followed, started)


def close_master(home: Path) -> None:
    subprocess.run(["ssh", "-F", str(home / ".ssh" / "config"), "-O", "exit", "colab"], check=False, capture_output=True)


def test_a_reconnect_during_a_stop_never_creates_a_runtime(home: Path, rdev, proxy: ColabProxy, runtime: Runtime,
                                                           records: Path) -> None:
    connected = rdev("connect", "colab", "--colab-session", SESSION, "--no-open")
    assert connected.returncode == 0, connected.stderr
    for delay in DELAYS:
        write_session(home, SESSION, proxy, runtime.endpoint)  # the runtime of the previous round, again
        close_master(home)  # so the editor's ssh starts a master of its own, through the guard
        editor, stop = reconnect_and_stop(home, delay)
        stopped, why = stop.communicate(timeout=120)
        editor.communicate(timeout=120)
        assert stop.returncode == 0 and "Stopped Colab session s1" in stopped, (delay, why)
        created = records / "colab-created"
        assert not created.exists(), (delay, created.read_text())
    calls = [json.loads(line)[0] for line in (records / "colab-calls.jsonl").read_text().splitlines()]
    assert "new" not in calls and calls.count("stop") == len(DELAYS), calls


def test_the_editor_is_told_while_a_stop_is_under_way(home: Path, rdev, proxy: ColabProxy) -> None:
    assert rdev("connect", "colab", "--colab-session", SESSION, "--no-open").returncode == 0
    close_master(home)
    with locking.ending_colab_session(SESSION, lambda: close_master(home)):
        refused = ssh_through(home, "colab", "true")
    assert refused.returncode == 255
    # With ControlPersist, ssh gives a ProxyCommand /dev/null for stderr: the guard's line is in its log.
    said = (home / ".ssh" / "rdev" / "logs" / "colab.log").read_text()
    assert said == ("rdev: 'rdev stop' is ending Colab session s1, so rdev does not connect colab to it: once the stop "
                    "has finished, 'rdev connect colab' starts a new runtime.\n")
    assert ssh_through(home, "colab", "echo back").stdout == "back\n"  # no stop, no refusal

"""Login shells as school servers and users have them (bash, zsh, fish, tcsh), with rc files that print on stdout
and stderr and take two seconds: connect (the password once, the editor-server fetch, the editor), `rdev ssh`
and `rdev jupyter` work, and rdev's answers are not confused with the noise around them. The Slurm route is in
test_slurm.py."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import editor_calls, editor_fetching
from tests.e2e.work.test_jupyter import alive, run_code, started
from tests.stand_ins.downloads import Downloads
from tests.stand_ins.login_host import PASSWORD, PasswordHost, login_host

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="test users need root")

COMMIT = "2" * 40
# Where each shell reads commands in a non-interactive session sshd starts, and what it prints there.
RC_FILES = {
    "bash": (".bashrc", 'echo "bashrc says hello"; echo "bashrc warns" >&2; sleep 2\n'),
    "zsh": (".zshenv", 'echo "zshenv says hello"; echo "zshenv warns" >&2; sleep 2\n'),
    "fish": (".config/fish/config.fish", 'echo "fish says hello"; echo "fish warns" >&2; sleep 2\n'),
    "tcsh": (".cshrc", 'echo "cshrc says hello"; echo "cshrc warns" > /dev/stderr; sleep 2\n'),
}


def noisy(host: PasswordHost, shell: str) -> None:
    """The shell's rc file, printing on both streams and slow, owned by the user."""
    name, text = RC_FILES[shell]
    rc = host.home / name
    rc.parent.mkdir(parents=True, exist_ok=True)
    rc.write_text(text + (rc.read_text() if rc.exists() else ""))
    for path in [rc, *rc.relative_to(host.home).parents]:
        shutil.chown(host.home / path, host.user, host.user)


@pytest.fixture(params=sorted(RC_FILES))
def lab(request: pytest.FixtureRequest, home: Path) -> Iterator[PasswordHost]:
    shell = shutil.which(request.param)
    if shell is None:
        pytest.skip(f"no {request.param} here (scripts/setup.sh installs it)")
    with login_host(home, shell=shell) as host:
        noisy(host, request.param)
        yield host


def test_connect_fetches_the_editor_server_and_opens_the_editor(home: Path, rdev, lab: PasswordHost,
                                                                downloads: Downloads,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    record = editor_fetching(home, monkeypatch, COMMIT, downloads.url)
    assert rdev("add", "lab", "--host", "127.0.0.1", "--port", str(lab.port), "--user", lab.user).returncode == 0
    result = rdev("connect", "lab", "--password-stdin", input=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert f"Editor server: code {COMMIT[:10]} is ready in ~/.vscode-server." in result.stdout.splitlines()
    assert (lab.home / ".vscode-server" / "cli" / "servers" / f"Stable-{COMMIT}" / "server" / "bin"
            / "code-server").exists()
    # The folder opened is the remote home the probe read, not a line of the rc file's noise.
    assert editor_calls(record)[-1]["argv"] == ["--remote", "ssh-remote+lab", str(lab.home)]


def test_rdev_ssh_runs_the_command_and_passes_its_status(rdev, lab: PasswordHost) -> None:
    assert rdev("add", "lab", "--host", "127.0.0.1", "--port", str(lab.port), "--user", lab.user).returncode == 0
    assert rdev("connect", "lab", "--password-stdin", "--no-open", input=PASSWORD + "\n").returncode == 0
    said = rdev("ssh", "lab", "--", "echo", "from lab")
    assert said.returncode == 0 and said.stdout.splitlines()[-1] == "from lab"
    assert rdev("ssh", "lab", "--", "exit 3").returncode == 3


def test_jupyter_starts_answers_and_stops(rdev, lab: PasswordHost) -> None:
    assert rdev("add", "lab", "--host", "127.0.0.1", "--port", str(lab.port), "--user", lab.user).returncode == 0
    assert rdev("connect", "lab", "--password-stdin", "--no-open", input=PASSWORD + "\n").returncode == 0
    served = started(rdev("jupyter", "lab"))  # Debian's python3: Jupyter is installed into rdev's environment
    assert run_code(served.local, served.token, "1+1") == "2"
    assert rdev("jupyter", "lab", "--stop").returncode == 0 and not alive(served.pid)

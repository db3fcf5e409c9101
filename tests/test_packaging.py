"""What the distribution promises about imports: the runtime side needs no client library, and the
CLI starts without importing the heavy ones."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

from bootstrap.ticket import Ticket
from tests.conftest import REPO

CLIENT_ONLY = ["typer", "click", "keyring", "paramiko", "cryptography", "platformdirs", "filelock", "sshconf", "tomli_w",
               "pycloudflared", "pyngrok"]
BLOCKER = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {CLIENT_ONLY!r}:
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
"""


def test_runtime_side_imports_with_standard_library_only() -> None:
    code = BLOCKER + "import colab_side, colab_side.__main__, colab_side.tunnels.direct, bootstrap.ticket, bootstrap.cell\nprint('ok')"
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=REPO)
    assert result.stdout.strip() == "ok", result.stderr


def test_cli_start_does_not_import_heavy_modules() -> None:
    code = ("import sys\nfrom client_side.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('paramiko', 'keyring', 'cryptography', 'pycloudflared', 'pyngrok') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=REPO)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr


def test_a_connect_imports_no_lock_socket_or_password_library(tmp_path: Path) -> None:
    """`rdev connect` with the key pair made and nothing busy, up to its one ssh login (here to a port where nothing
    listens): filelock is imported only to wait for a busy lock, socket only to make the key pair, paramiko, keyring
    and cryptography only for a password or a new key. The password hosts' module is imported too."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    ticket = Ticket(tunnel="direct", host="127.0.0.1", port=closed, user="root", workdir="/content", runtime="colab",
                    host_keys=("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBE+xhRFLLxxd3SfP8sMd79hDgoYCVaMFDCAV8EmNVOL",),
                    started="2026-11-22T01:00:00Z", expires=None).encode()
    env = {**os.environ, "HOME": str(tmp_path / "h"), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "XDG_STATE_HOME": str(tmp_path / "st"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    (tmp_path / "h").mkdir(mode=0o700)
    subprocess.run([sys.executable, "-m", "client_side", "key"], check=True, capture_output=True, cwd=REPO, env=env)
    heavy = ("filelock", "socket", "paramiko", "keyring", "cryptography")
    code = ("import sys\nimport client_side.kinds.password_host\nfrom client_side.cli import main\n"
            f"try:\n    main(['connect', 'box', '--ticket', {ticket!r}, '--no-open'])\nexcept SystemExit as e:\n"
            f"    print(e.code)\nprint(sorted(m for m in {heavy!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=REPO,
                            env=env)
    assert result.stdout.splitlines()[-2:] == ["1", "[]"], result.stdout + result.stderr
    assert "nothing listens" in result.stderr


def test_the_distribution_builds_and_twine_accepts_it(tmp_path: Path) -> None:
    """Ready to publish: `python -m build` makes a wheel and an sdist that `twine check --strict` accepts;
    the wheel holds the three packages with their data and the `rdev` command, and no tests."""
    built = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path), str(REPO)], check=False,
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    [wheel] = tmp_path.glob("rdev-*.whl")
    [sdist] = tmp_path.glob("rdev-*.tar.gz")
    checked = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)], check=False,
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("bootstrap/presets.toml", "bootstrap/notebook_cell.tmpl", "colab_side/tunnels/cloudflared.py",
                   "client_side/cli.py"):
        assert needed in names
    assert not [name for name in names if name.startswith("tests/")]
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert "rdev = client_side.cli:command_line" in zipfile.ZipFile(wheel).read(entry_points).decode()

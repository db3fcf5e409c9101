"""What the distribution promises about imports: the runtime side needs no client library, and the
CLI starts without importing the heavy ones."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

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
    assert "rdev = client_side.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

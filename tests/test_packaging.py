"""What the distribution promises about imports: the runtime side needs no client library, and the
CLI starts without importing the heavy ones."""

from __future__ import annotations

import subprocess
import sys

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
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.stdout.strip() == "ok", result.stderr


def test_cli_start_does_not_import_heavy_modules() -> None:
    code = ("import sys\nfrom client_side.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('paramiko', 'keyring', 'cryptography', 'pycloudflared', 'pyngrok') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr

"""The laptop side of the cell: what the runtime's pip installs (--source, else the rdev installed
here, by commit or pinned version), no login ever in the cell, and the clipboard copy."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from client_side import colab_cell, keys
from client_side.errors import BadInput
from tests.conftest import REPO

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize("source, expected", [
    ("git+https://github.com/o/r.git", "rdev @ git+https://github.com/o/r.git"),
    ("git+https://github.com/o/r.git@v0.2", "rdev @ git+https://github.com/o/r.git@v0.2"),
    ("https://example.org/dist/rdev-0.1.0-py3-none-any.whl", "rdev @ https://example.org/dist/rdev-0.1.0-py3-none-any.whl"),
    ("https://github.com/o/r/archive/refs/heads/main.zip", "rdev @ https://github.com/o/r/archive/refs/heads/main.zip"),
    ("https://example.org/rdev-0.1.0.tar.gz#sha256=ab12", "rdev @ https://example.org/rdev-0.1.0.tar.gz#sha256=ab12"),
    ("/kaggle/input/rdev", "/kaggle/input/rdev"),
    ("/content/drive/MyDrive/my wheels/rdev-0.1.0-py3-none-any.whl",
     "/content/drive/MyDrive/my wheels/rdev-0.1.0-py3-none-any.whl"),
])
def test_source_becomes_the_requirement(source: str, expected: str) -> None:
    assert colab_cell.requirement(source) == expected


@pytest.mark.parametrize("source", [
    "", "rdev", "rdev==0.1.0", "./dist/rdev-0.1.0-py3-none-any.whl", "~/rdev", "C:\\wheels\\rdev.whl",
    "http://example.org/rdev-0.1.0-py3-none-any.whl", "https://example.org/rdev", "git+http://github.com/o/r.git",
    "git+https://github.com", "file:///kaggle/input/rdev", "/kaggle/input/rdev\nimport os",
])
def test_other_sources_are_refused_with_the_kinds_allowed(source: str) -> None:
    with pytest.raises(BadInput) as caught:
        colab_cell.requirement(source)
    assert caught.value.exit_code == 2
    assert "\n" not in str(caught.value) and "git+https://" in str(caught.value)


@pytest.mark.parametrize("source", [
    "git+https://me:ghp_S3cretT0ken@github.com/o/r.git",
    "git+https://ghp_S3cretT0ken@github.com/o/r.git@main",
    "https://me:ghp_S3cretT0ken@example.org/rdev-0.1.0-py3-none-any.whl",
    "https://example.org/rdev-0.1.0-py3-none-any.whl?private_token=ghp_S3cretT0ken",
    "git+https://ghp_S3cretT0ken@[github.com/o/r.git",
])
def test_a_url_with_a_login_is_refused_without_repeating_it(source: str) -> None:
    with pytest.raises(BadInput) as caught:
        colab_cell.requirement(source)
    assert caught.value.exit_code == 2
    assert "ghp_S3cretT0ken" not in str(caught.value) and "me:" not in str(caught.value)


def installed(monkeypatch: pytest.MonkeyPatch, root: Path, origin: dict | None) -> None:
    """An installed `rdev` 9.9.9 ahead of the real one on sys.path, with `origin` as its PEP 610 direct_url.json."""
    info = root / "rdev-9.9.9.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rdev\nVersion: 9.9.9\n")
    if origin is not None:
        (info / "direct_url.json").write_text(json.dumps(origin))
    monkeypatch.syspath_prepend(str(root))


def test_installed_from_git_installs_that_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    installed(monkeypatch, tmp_path, {"url": "https://github.com/o/r.git",
                                      "vcs_info": {"vcs": "git", "requested_revision": "main", "commit_id": COMMIT}})
    assert colab_cell.requirement(None) == f"rdev @ git+https://github.com/o/r.git@{COMMIT}"


def test_installed_from_a_git_url_the_runtime_cannot_fetch_asks_for_a_source(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    installed(monkeypatch, tmp_path, {"url": "ssh://git@github.com/o/r.git", "vcs_info": {"vcs": "git", "commit_id": COMMIT}})
    with pytest.raises(BadInput, match="--source"):
        colab_cell.requirement(None)


@pytest.mark.parametrize("origin", [
    None,  # from the package index
    {"url": "file:///home/me/rdev", "dir_info": {"editable": True}},
    {"url": "https://example.org/rdev-9.9.9-py3-none-any.whl", "archive_info": {"hashes": {"sha256": "ab12"}}},
])
def test_otherwise_the_installed_version_is_pinned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   origin: dict | None) -> None:
    installed(monkeypatch, tmp_path, origin)
    assert colab_cell.requirement(None) == "rdev==9.9.9"
    # Only a checkout gets the note that the index may not have this version.
    assert colab_cell.installed_from_folder() == (origin is not None and "dir_info" in origin)


def test_cell_has_this_laptops_key_and_the_requirement(home: Path) -> None:
    text = colab_cell.cell("ngrok", "kaggle", "/kaggle/input/rdev")
    literals = [n.value for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Constant)]
    assert keys.public_key() in literals and "/kaggle/input/rdev" in literals
    assert (home / ".ssh" / "rdev" / "id_ed25519").exists()


@pytest.mark.parametrize("tunnel, runtime", [("tailscale", "colab"), ("ngrok", "generic"), ("direct", "colab")])
def test_cell_refuses_an_unknown_tunnel_or_runtime_as_bad_input(home: Path, tunnel: str, runtime: str) -> None:
    with pytest.raises(BadInput) as caught:
        colab_cell.cell(tunnel, runtime, "/kaggle/input/rdev")
    assert caught.value.exit_code == 2


def copy_in_child(text: str, env: dict[str, str]) -> bool:
    """copy() in a fresh process: pyperclip picks its clipboard once per process, from PATH and DISPLAY."""
    code = "import sys\nfrom client_side.colab_cell import copy\nprint(copy(sys.stdin.read()))"
    result = subprocess.run([sys.executable, "-c", code], input=text, capture_output=True, text=True, env=env, check=False,
                            cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    return {"True": True, "False": False}[result.stdout.strip()]


def clean_env(path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    path.mkdir(exist_ok=True)
    return {**env, "PATH": str(path)}


def test_copy_hands_the_text_to_xclip(tmp_path: Path) -> None:
    record = tmp_path / "clipboard"
    xclip = tmp_path / "bin" / "xclip"
    env = {**clean_env(xclip.parent), "DISPLAY": ":0"}
    xclip.write_text(f"#!{sys.executable}\nimport sys\nopen({str(record)!r}, 'wb').write(sys.stdin.buffer.read())\n")
    xclip.chmod(0o755)
    text = "# the cell\nprint('é \"quoted\"')\n"
    assert copy_in_child(text, env) is True
    assert record.read_bytes() == text.encode()


def test_copy_without_a_clipboard_returns_false(tmp_path: Path) -> None:
    assert copy_in_child("text", clean_env(tmp_path / "empty")) is False

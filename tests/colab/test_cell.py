"""The laptop side of the cell: what it installs (--source, else the runtime side it carries), no login
ever in the cell, and the clipboard copy."""

from __future__ import annotations

import ast
import base64
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from client_side.colab import cell
from client_side.errors import BadInput
from client_side.ssh import keys
from tests.conftest import REPO


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
    assert cell.requirement(source) == expected


@pytest.mark.parametrize("source", [
    "", "rdev", "rdev==0.1.0", "./dist/rdev-0.1.0-py3-none-any.whl", "~/rdev", "C:\\wheels\\rdev.whl",
    "http://example.org/rdev-0.1.0-py3-none-any.whl", "https://example.org/rdev", "git+http://github.com/o/r.git",
    "git+https://github.com", "file:///kaggle/input/rdev", "/kaggle/input/rdev\nimport os",
])
def test_other_sources_are_refused_with_the_kinds_allowed(source: str) -> None:
    with pytest.raises(BadInput) as caught:
        cell.requirement(source)
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
        cell.requirement(source)
    assert caught.value.exit_code == 2
    assert "ghp_S3cretT0ken" not in str(caught.value) and "me:" not in str(caught.value)


def test_by_default_the_cell_carries_this_rdevs_runtime_side(home: Path) -> None:
    """No --source: the cell holds colab_side and bootstrap (every .py file, the same bytes as here) and
    pip-installs only the tunnel's package, never rdev or the laptop's dependencies."""
    text = cell.cell("cloudflared", "colab", None)
    literals = [n.value for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    carried = zipfile.ZipFile(io.BytesIO(base64.b64decode(max(literals, key=len))))
    for package in ("bootstrap", "colab_side"):
        for path in (REPO / package).rglob("*.py"):
            assert carried.read(path.relative_to(REPO).as_posix()) == path.read_bytes()
    assert [line for line in text.splitlines() if line.startswith("subprocess.run(")] == [
        'subprocess.run([sys.executable, "-m", "pip", "install", "-q", \'pycloudflared\'], check=True)']
    assert cell.runtime_zip() == cell.runtime_zip(), "the same code must give the same zip"


def test_cell_has_this_laptops_key_and_the_requirement(home: Path) -> None:
    text = cell.cell("ngrok", "kaggle", "/kaggle/input/rdev")
    literals = [n.value for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Constant)]
    assert keys.public_key() in literals and "/kaggle/input/rdev" in literals
    assert (home / ".ssh" / "rdev" / "id_ed25519").exists()


@pytest.mark.parametrize("tunnel, runtime", [("tailscale", "colab"), ("ngrok", "generic"), ("direct", "colab")])
def test_cell_refuses_an_unknown_tunnel_or_runtime_as_bad_input(home: Path, tunnel: str, runtime: str) -> None:
    with pytest.raises(BadInput) as caught:
        cell.cell(tunnel, runtime, "/kaggle/input/rdev")
    assert caught.value.exit_code == 2


def copy_in_child(text: str, env: dict[str, str]) -> bool:
    """copy() in a fresh process: pyperclip picks its clipboard once per process, from PATH and DISPLAY."""
    code = "import sys\nfrom client_side.colab.cell import copy\nprint(copy(sys.stdin.read()))"
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


@pytest.mark.parametrize(("runtime", "words"), [("colab", '"connecting to remote proxies"'),
                                                ("kaggle", "Internet setting on")])
def test_the_command_says_the_services_rules(home: Path, rdev, runtime: str, words: str) -> None:
    result = rdev("colab", "cell", "--runtime", runtime)
    assert result.returncode == 0 and words in result.stderr and words not in result.stdout


def test_drive_folder_is_where_google_drive_for_desktop_puts_it(home: Path) -> None:
    assert cell.drive_folder("Windows") == "G:/My Drive"
    assert cell.drive_folder("Darwin") == str(home / "Library/CloudStorage/GoogleDrive-ACCOUNT/My Drive")
    synced = home / "Library" / "CloudStorage" / "GoogleDrive-ann@example.com" / "My Drive"
    synced.mkdir(parents=True)
    assert cell.drive_folder("Darwin") == str(synced)


def test_drive_cell_names_the_ticket_file_on_both_sides(home: Path) -> None:
    text = cell.cell("cloudflared", "colab", None, drive=True)
    assert "drive.mount('/content/drive')" in text and "'colab.ticket'" in text and "ticket_file=ticket_file" in text
    assert f"rdev connect colab --ticket-file '{cell.drive_folder()}/rdev/colab.ticket'" in text


def test_drive_on_kaggle_is_bad_input_and_writes_nothing(home: Path) -> None:
    with pytest.raises(BadInput, match="Colab cell only") as caught:
        cell.cell("cloudflared", "kaggle", None, drive=True)
    assert caught.value.exit_code == 2 and not (home / ".ssh").exists()


def test_the_cell_fetches_the_laptops_editor_server(home: Path, rdev, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import editor_standin

    editor, _ = editor_standin(home, monkeypatch)
    commit = "3" * 40
    with_editor = rdev("colab", "cell", env={**os.environ, "RDEV_EDITOR": str(editor), "RDEV_STANDIN_COMMIT": commit})
    assert with_editor.returncode == 0, with_editor.stderr
    assert f"editor_server='code:stable:{commit}')" in with_editor.stdout
    without = rdev("colab", "cell", env={**os.environ, "PATH": "/usr/bin:/bin"})
    assert "editor_server" not in without.stdout

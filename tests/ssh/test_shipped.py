"""The remote command that runs a runtime module from the zip sent on stdin, run here by a shell as
sshd runs it: the zip lands on PYTHONPATH, a secret first line reaches the module's stdin and never an
argv, the module's exit status comes back and the temporary file goes."""

from __future__ import annotations

import io
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from client_side.ssh import shipped
from tests.conftest import python_38


def remote(command: str, stdin: bytes, tmp: Path) -> subprocess.CompletedProcess:
    # sshd hands the command to the login shell as `SHELL -c COMMAND`.
    return subprocess.run(["bash", "-c", command], check=False, input=stdin, capture_output=True, env={"PATH": "/usr/bin:/bin",
                          "TMPDIR": str(tmp)}, timeout=60)


def test_a_real_module_runs_from_the_zip_and_its_status_comes_back(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = remote(shipped.command("prefetch", "not-an-editor"), shipped.runtime_zip(), scratch)
    assert result.returncode == 1, result.stderr
    assert result.stdout.decode().startswith("Editor server: not fetched ("), result.stdout
    assert list(scratch.iterdir()) == []


def test_the_secret_first_line_reaches_stdin_only(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    python = tmp_path / "python"
    python.write_text('#!/bin/sh\nread -r line\necho "stdin=$line"\necho "argv=$*"\necho "path=$PYTHONPATH"\n'
                      'ps -o args= -p $$ $PPID\n')
    python.chmod(0o755)
    secret = "s3cret-token-value"
    result = remote(shipped.command("notebook.jupyter", "start", "--install", python=shlex.quote(str(python)), secret_first=True),
                    secret.encode() + b"\n" + shipped.runtime_zip(), scratch)
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr
    lines = out.splitlines()
    assert len(lines) >= 5, out  # ps showed the module's process and the shell that runs it
    assert lines[0] == f"stdin={secret}"
    assert lines[1] == "argv=-m colab_side.notebook.jupyter start --install"
    zip_path = lines[2].removeprefix("path=")
    assert zip_path.startswith(str(scratch))
    assert secret not in "\n".join(lines[1:])  # neither the module's argv nor its shell's
    assert list(scratch.iterdir()) == []  # the zip is gone once the module ends


def test_the_zip_holds_the_runtime_side_only() -> None:
    names = zipfile.ZipFile(io.BytesIO(shipped.runtime_zip())).namelist()
    assert {name.split("/")[0] for name in names} == set(shipped.RUNTIME_PACKAGES)
    assert "colab_side/notebook/jupyter.py" in names and "bootstrap/editor_servers.py" in names
    assert shipped.runtime_zip() == shipped.runtime_zip()  # same code, same bytes: the cell names it by content


def test_every_runtime_module_imports_from_the_zip_under_python_3_8(tmp_path: Path) -> None:
    """The hosts' oldest Python rdev promises."""
    python = python_38()
    archive = tmp_path / "runtime.zip"
    archive.write_bytes(shipped.runtime_zip())
    modules = sorted(name[:-3].replace("/", ".").removesuffix(".__init__")
                     for name in zipfile.ZipFile(archive).namelist() if name.endswith(".py"))
    result = subprocess.run([python, "-c", "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)",
                             *modules], check=False, capture_output=True, text=True, env={"PYTHONPATH": str(archive),
                                                                            "PATH": "/usr/bin:/bin"},
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "colab_side.notebook.jupyter_env" in modules and "colab_side.server" in modules


# The runtime side as it travelled before client_side was grouped into subpackages (the move must not change it),
# with the bridge added since.
RUNTIME_MODULES = [
    "bootstrap/__init__.py", "bootstrap/binaries.py", "bootstrap/cell.py", "bootstrap/editor_servers.py",
    "bootstrap/files.py", "bootstrap/pubkeys.py", "bootstrap/ticket.py", "bootstrap/validate.py",
    "colab_side/__init__.py", "colab_side/__main__.py", "colab_side/background.py", "colab_side/bridge.py",
    "colab_side/environment.py", "colab_side/errors.py",
    "colab_side/long_runs/__init__.py", "colab_side/long_runs/idle.py", "colab_side/long_runs/notices.py",
    "colab_side/long_runs/run_wrapper.py", "colab_side/long_runs/runs.py", "colab_side/long_runs/slurm_runs.py",
    "colab_side/notebook/__init__.py", "colab_side/notebook/jupyter.py", "colab_side/notebook/jupyter_env.py",
    "colab_side/notebook/kernel_env.py",
    "colab_side/prefetch.py", "colab_side/processes.py", "colab_side/runtime.py", "colab_side/server.py",
    "colab_side/sshd.py", "colab_side/state.py", "colab_side/status.py", "colab_side/supervisor.py",
    "colab_side/tunnels/__init__.py", "colab_side/tunnels/base.py", "colab_side/tunnels/cloudflared.py",
    "colab_side/tunnels/direct.py", "colab_side/tunnels/ngrok.py", "colab_side/tunnels/process.py",
]


def test_the_zip_holds_the_same_modules_as_before_the_layout_changed() -> None:
    assert sorted(zipfile.ZipFile(io.BytesIO(shipped.runtime_zip())).namelist()) == RUNTIME_MODULES


def test_every_runtime_module_imports_on_a_fresh_interpreter_with_the_standard_library_only(tmp_path: Path) -> None:
    """-I -S: no site-packages, no user site, no PYTHON* variables; the zip is all there is besides the stdlib."""
    archive = tmp_path / "runtime.zip"
    archive.write_bytes(shipped.runtime_zip())
    modules = [name[:-3].replace("/", ".").removesuffix(".__init__") for name in RUNTIME_MODULES]
    code = ("import importlib, sys\nsys.path.insert(0, sys.argv[1])\nfor m in sys.argv[2:]: importlib.import_module(m)\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'client_side', 'typer', 'paramiko', 'keyring'}))")
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(archive), *modules], check=False,
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


PYENV_36 = Path(os.environ.get("PYENV_ROOT", "/root/.pyenv")) / "versions" / "3.6.15" / "bin" / "python3.6"


def path_of(tmp: Path, **pythons: str) -> str:
    """A PATH of one folder holding the given Pythons (name -> target) and the few tools the command uses."""
    folder = tmp / "bin"
    folder.mkdir()
    for tool in ("sh", "mktemp", "cat", "rm", "head"):
        (folder / tool).symlink_to(shutil.which(tool) or f"/bin/{tool}")
    for name, target in pythons.items():
        (folder / name).symlink_to(target)
    return str(folder)


def run_with(tmp: Path, path: str, python: str | None = None) -> subprocess.CompletedProcess:
    scratch = tmp / "tmp"
    scratch.mkdir(exist_ok=True)
    return subprocess.run(["sh", "-c", shipped.command("prefetch", "not-an-editor", python=python)],
                          input=shipped.runtime_zip(), capture_output=True, timeout=60, check=False,
                          env={"PATH": path, "TMPDIR": str(scratch)})


@pytest.mark.skipif(not PYENV_36.exists(), reason="pyenv's Python 3.6 is not on this machine")
def test_an_old_python3_gives_way_to_the_newest_python3_x(tmp_path: Path) -> None:
    result = run_with(tmp_path, path_of(tmp_path, python3=str(PYENV_36), **{"python3.11": sys.executable}))
    assert result.returncode == 1 and result.stdout.decode().startswith("Editor server: not fetched ("), result.stderr


@pytest.mark.skipif(not PYENV_36.exists(), reason="pyenv's Python 3.6 is not on this machine")
def test_with_only_an_old_python_nothing_runs_and_the_laptop_gets_one_sentence(tmp_path: Path) -> None:
    result = run_with(tmp_path, path_of(tmp_path, python3=str(PYENV_36), **{"python3.6": str(PYENV_36)}))
    stderr = result.stderr.decode()
    assert result.returncode == shipped.NO_PYTHON and result.stdout == b""
    assert stderr.strip() == "rdev-python: Python 3.6.15"
    assert list((tmp_path / "tmp").iterdir()) == []  # not even the zip was written
    failure = shipped.python_failure("lab", result.returncode, stderr)
    assert failure is not None and str(failure) == (
        "lab's python3 is Python 3.6.15, older than the Python 3.8 rdev's runtime side needs, and no newer python3.X "
        "is on its PATH: put a Python 3.8 or newer first on PATH there (e.g. 'module load python' in your shell's rc "
        "file), or name one: rdev add lab ... --python PATH.")


def test_a_host_without_python_is_named_so(tmp_path: Path) -> None:
    result = run_with(tmp_path, path_of(tmp_path))
    failure = shipped.python_failure("lab", result.returncode, result.stderr.decode())
    assert failure is not None and failure.problem == "lab has no python3, and no newer python3.X is on its PATH"


def test_a_named_python_is_the_only_one_tried(tmp_path: Path) -> None:
    path = path_of(tmp_path, python3=sys.executable)
    named = run_with(tmp_path, path, python=shlex.quote(sys.executable))
    assert named.stdout.decode().startswith("Editor server: not fetched ("), named.stderr
    missing = run_with(tmp_path, path, python="/nonexistent/python")
    failure = shipped.python_failure("lab", missing.returncode, missing.stderr.decode(), "/nonexistent/python")
    assert failure is not None and failure.problem == "lab has no /nonexistent/python"


def test_other_failures_are_not_taken_for_a_missing_python() -> None:
    assert shipped.python_failure("lab", 1, "rdev-python: Python 3.6.15") is None
    assert shipped.python_failure("lab", shipped.NO_PYTHON, "something else") is None

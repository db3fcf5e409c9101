"""Tests for colab_side/notebook/kernel_env.py: SSH shells on a runtime get the notebook kernel's variables.

Through Google's SSH proxy to Colab nothing passes the kernel's PATH, LD_LIBRARY_PATH, CUDA_* and
NVIDIA_* on to a session; the laptop runs `python3 -m colab_side.notebook.kernel_env` on the runtime, which
copies them (never a secret) into ~/.rdev/kernel-env.sh and makes bash's startup files read it.
The kernel here is a real process started as `python -m colab_kernel_launcher -f kernel-1.json`,
and real bash shells read the files.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from colab_side.notebook.kernel_env import SOURCE_LINE, ensure_sourced, env_file_text, find_kernel, main, write_files
from tests.conftest import run_module

KERNEL_VARIABLES = {
    "LD_LIBRARY_PATH": "/usr/lib64-nvidia",
    "PATH": "/opt/bin/nvidia:/usr/local/bin:/usr/bin:/bin",
    "CUDA_VERSION": "12.2",
    "NVIDIA_VISIBLE_DEVICES": "all",
    "PYTHONPATH": "/env/python",
}
SECRETS = {"HF_TOKEN": "hunter2", "MY_API_KEY": "sk-live-4242"}
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"
DEBIAN_GUARD = b"# ~/.bashrc\n\ncase $- in\n    *i*) ;;\n      *) return;;\nesac\n\nalias ll='ls -l'\n"


def base_environment(home: Path) -> dict[str, str]:
    """This test's environment without anything the stand-in kernel is given."""
    env = {key: value for key, value in os.environ.items() if key not in {*KERNEL_VARIABLES, *SECRETS}}
    return {**env, "HOME": str(home), "PATH": BASE_PATH}


@pytest.fixture
def kernel(home: Path) -> Iterator[Callable[[dict[str, str]], int]]:
    """`kernel(variables)` starts a stand-in notebook kernel with them added to the base environment."""
    folder = home.parent / "kernel"
    folder.mkdir()
    (folder / "colab_kernel_launcher.py").write_text("import time\ntime.sleep(120)\n")
    started: list[subprocess.Popen] = []

    def start(variables: dict[str, str]) -> int:
        # cwd puts the launcher on sys.path, so the kernel's PYTHONPATH can be anything.
        started.append(subprocess.Popen([sys.executable, "-m", "colab_kernel_launcher", "-f", "kernel-1.json"],
                                        cwd=folder, env={**base_environment(home), **variables}))
        return started[-1].pid

    try:
        yield start
    finally:
        for process in started:
            process.kill()
            process.wait(10)


def run_kernel_env(env: dict[str, str]) -> tuple[dict, subprocess.CompletedProcess]:
    result = run_module("colab_side.notebook.kernel_env", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout), result


def shell(home: Path, *args: str, **extra: str) -> str:
    """bash's stdout, started with nearly nothing in its environment, as a fresh session would be."""
    result = subprocess.run(["bash", *args], check=False, env={"HOME": str(home), "PATH": BASE_PATH, **extra},
                            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    return result.stdout


def every_file(home: Path) -> dict[str, bytes]:
    return {str(path): path.read_bytes() for path in home.rglob("*") if path.is_file()}


def test_kernel_variables_reach_login_and_interactive_shells(home: Path, kernel) -> None:
    pid = kernel({**KERNEL_VARIABLES, **SECRETS})
    report, _ = run_kernel_env(base_environment(home))
    assert report == {"kernel": pid, "source": "kernel", "variables": sorted(KERNEL_VARIABLES)}

    env_file = home / ".rdev" / "kernel-env.sh"
    lines = env_file.read_text().splitlines()
    assert lines[0].startswith("# rdev wrote this from the notebook kernel's environment")
    assert lines[1:] == [f"export {name}='{value}'" for name, value in sorted(KERNEL_VARIABLES.items())]
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(env_file.parent.stat().st_mode) == 0o700
    for rc in (".bashrc", ".profile"):
        assert (home / rc).read_text() == SOURCE_LINE + "\n"
        assert stat.S_IMODE((home / rc).stat().st_mode) == 0o644
    assert not (home / ".bash_profile").exists() and not (home / ".bash_login").exists()

    written = b"".join(every_file(home).values())
    for name, value in SECRETS.items():
        assert name.encode() not in written and value.encode() not in written

    assert shell(home, "--login", "-c", 'echo "$LD_LIBRARY_PATH"') == "/usr/lib64-nvidia\n"
    assert shell(home, "--rcfile", str(home / ".bashrc"), "-i", "-c", 'echo "$CUDA_VERSION"') == "12.2\n"
    assert shell(home, "--login", "-c", 'echo "$PATH"') == KERNEL_VARIABLES["PATH"] + "\n"


def test_line_goes_first_once_and_every_other_byte_stays(home: Path) -> None:
    bashrc, bash_profile = home / ".bashrc", home / ".bash_profile"
    bashrc.write_bytes(DEBIAN_GUARD)
    bashrc.chmod(0o640)
    bash_profile.write_bytes(b"[ -f ~/.bashrc ] && . ~/.bashrc")  # no final newline: still kept as it was
    write_files(home, {"CUDA_VERSION": "12.2"})
    write_files(home, {"CUDA_VERSION": "12.2"})

    assert bashrc.read_bytes() == SOURCE_LINE.encode() + b"\n" + DEBIAN_GUARD
    assert stat.S_IMODE(bashrc.stat().st_mode) == 0o640
    assert bash_profile.read_bytes() == SOURCE_LINE.encode() + b"\n[ -f ~/.bashrc ] && . ~/.bashrc"
    assert (home / ".profile").read_bytes() == SOURCE_LINE.encode() + b"\n"
    # ssh runs a command as `bash -c CMD`, which reads ~/.bashrc when SSH_CLIENT is set (Debian's
    # bash): the guard's early return comes after the line.
    assert shell(home, "-c", 'echo "$CUDA_VERSION"', SSH_CLIENT="10.0.0.1 5000 22") == "12.2\n"
    assert shell(home, "--login", "-c", 'echo "$CUDA_VERSION"') == "12.2\n"


def test_a_line_already_anywhere_leaves_the_file_alone(home: Path) -> None:
    profile = home / ".profile"
    profile.write_bytes(b"umask 022\n" + SOURCE_LINE.encode() + b"\nexport EDITOR=vi")
    before = profile.stat()
    assert ensure_sourced(profile) is False
    assert profile.read_bytes() == b"umask 022\n" + SOURCE_LINE.encode() + b"\nexport EDITOR=vi"
    assert profile.stat().st_ino == before.st_ino


def test_what_the_session_already_has_is_not_written(home: Path, kernel) -> None:
    pid = kernel({"GPU_SAME": "one", "CUDA_VERSION": "12.2"})
    session = {**base_environment(home), "GPU_SAME": "one", "CUDA_VERSION": "11.8"}
    report, _ = run_kernel_env(session)
    assert report == {"kernel": pid, "source": "kernel", "variables": ["CUDA_VERSION"]}
    assert "GPU_SAME" not in (home / ".rdev" / "kernel-env.sh").read_text()

    # The next connect's session has CUDA_VERSION from the file itself: it must stay in it.
    report, _ = run_kernel_env({**session, "CUDA_VERSION": "12.2"})
    assert report["variables"] == ["CUDA_VERSION"]
    assert shell(home, "--login", "-c", 'echo "$CUDA_VERSION"') == "12.2\n"


def test_nothing_different_still_rewrites_the_file(home: Path, kernel) -> None:
    env_file = home / ".rdev" / "kernel-env.sh"
    env_file.parent.mkdir(mode=0o700)
    env_file.write_text("export STALE='yes'\n")
    kernel({"PATH": BASE_PATH})
    report, _ = run_kernel_env(base_environment(home))
    assert report["variables"] == []
    assert env_file.read_text().splitlines()[1:] == []


def test_a_quote_and_a_space_survive_the_shell(home: Path) -> None:
    value = "it's a \"test\" $HOME `x` \\n"
    env_file = home / "env.sh"
    env_file.write_text(env_file_text({"X": value}))
    assert shell(home, "-c", f'. "{env_file}"; printf %s "$X"') == value


def fake_process(proc: Path, pid: int, argv: list[str], started: int, environ: dict[str, str] | None = None) -> None:
    folder = proc / str(pid)
    folder.mkdir(parents=True)
    (folder / "cmdline").write_bytes(b"\0".join(arg.encode() for arg in argv) + b"\0")
    # A command name with a space and a ')' in it, as a process may give itself.
    (folder / "stat").write_text(f"{pid} (odd) name) S 1 " + "0 " * 17 + f"{started} 0 0\n")
    (folder / "environ").write_bytes(b"".join(f"{k}={v}\0".encode() for k, v in (environ or {}).items()))


def test_no_kernel_prints_null_and_writes_nothing(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    fake_process(tmp_path, 10, ["/bin/bash"], 5, {"CUDA_VERSION": "12.2"})
    fake_process(tmp_path, 11, ["grep", "kernel_launcher"], 6)
    assert find_kernel(tmp_path) is None
    assert main(tmp_path) == 0
    assert json.loads(capsys.readouterr().out) == {"kernel": None, "source": None, "variables": []}
    assert every_file(home) == {}


def test_the_newest_kernel_wins(tmp_path: Path) -> None:
    fake_process(tmp_path, 300, ["/usr/bin/python3", "-m", "colab_kernel_launcher", "-f", "a.json"], 900, {"A": "old"})
    fake_process(tmp_path, 200, ["python", "/usr/lib/python3/dist-packages/ipykernel_launcher.py", "-f", "b.json"],
                 1000)
    fake_process(tmp_path, 400, ["/usr/local/bin/jupyter-lab"], 2000)
    # Not UTF-8, or no '=': left out rather than written back garbled.
    (tmp_path / "200" / "environ").write_bytes(b"A=new\0BAD=\xff\0NOEQUALS\0B=caf\xc3\xa9\0")
    kernel = find_kernel(tmp_path)
    assert kernel is not None
    assert (kernel.pid, kernel.source, kernel.environ) == (200, "kernel", {"A": "new", "B": "café"})


@pytest.mark.skipif(os.geteuid() != 0, reason="a process of another user needs root to make")
def test_another_users_kernel_is_never_copied(tmp_path: Path) -> None:
    """On a shared host root could read every user's kernel: only the user's own is a source, however new the
    other one is."""
    fake_process(tmp_path, 300, ["/usr/bin/python3", "-m", "colab_kernel_launcher", "-f", "a.json"], 900, {"A": "own"})
    fake_process(tmp_path, 301, ["/usr/bin/python3", "-m", "ipykernel_launcher", "-f", "b.json"], 5000,
                 {"A": "someone else's", "AWS_PROFILE": "theirs"})
    os.chown(tmp_path / "301", 65534, 65534)  # nobody's
    kernel = find_kernel(tmp_path)
    assert kernel is not None and (kernel.pid, kernel.environ) == (300, {"A": "own"})


@pytest.mark.parametrize("argv", [["/usr/bin/python3", "/usr/local/bin/jupyter-notebook", "--ip=0.0.0.0"],
                                  ["/usr/bin/python3", "/usr/local/bin/jupyter", "server"]])
def test_a_jupyter_server_when_no_kernel_runs(tmp_path: Path, argv: list[str]) -> None:
    fake_process(tmp_path, 50, argv, 10, {"CUDA_VERSION": "12.2"})
    fake_process(tmp_path, 51, ["/usr/bin/python3", "-m", "jupyterish"], 20)
    (tmp_path / "52").mkdir()  # ended while being looked at: no files left
    kernel = find_kernel(tmp_path)
    assert kernel is not None
    assert (kernel.pid, kernel.source, kernel.environ) == (50, "jupyter", {"CUDA_VERSION": "12.2"})


def test_a_file_that_cannot_be_written_exits_1_with_one_sentence(home: Path, kernel) -> None:
    (home / ".profile").mkdir()
    kernel({"CUDA_VERSION": "12.2"})
    result = run_module("colab_side.notebook.kernel_env", env=base_environment(home))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("rdev could not write the notebook kernel's environment for SSH shells: ")
    assert ".profile" in result.stderr and len(result.stderr.strip().splitlines()) == 1

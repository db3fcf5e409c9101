"""`rdev jupyter`'s two halves on their own: the host's helper run directly in a throwaway HOME (real
jupyter_server from this project's .venv), and the laptop's refusal of what cannot be used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from client_side.cli import main
from client_side.commands.jupyter import _python_word
from client_side.errors import BadInput
from colab_side.notebook.jupyter import state_dir
from colab_side.notebook.jupyter_env import env_folder
from tests.conftest import REPO

TOKEN = "t" * 20 + "-_0123456789ABCDEFGHIJ"


def helper(home: Path, *args: str, token: str = TOKEN, python: str = sys.executable,
           env: dict[str, str] | None = None) -> tuple[int, list[dict]]:
    """Run the host's side as the laptop does (token on stdin); its exit status and JSON lines."""
    result = subprocess.run([python, "-m", "colab_side.notebook.jupyter", *args], check=False, input=token + "\n",
                            capture_output=True, text=True, env={**os.environ, "HOME": str(home), **(env or {})}, cwd=REPO, timeout=300)
    return result.returncode, [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture
def bare_python(tmp_path: Path) -> str:
    """A Python with neither jupyter_server nor pip."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True, timeout=120)
    return str(tmp_path / "bare" / "bin" / "python")


def test_a_named_python_without_jupyter_gets_the_command_that_installs_it(home: Path, bare_python: str) -> None:
    code, said = helper(home, "start", python=bare_python)
    assert code == 1 and said[-1]["error"] == f"{bare_python} has no jupyter_server or ipykernel"
    assert f"'{bare_python} -m pip install jupyter_server ipykernel'" in said[-1]["fix"]
    assert sorted(p.name for p in state_dir().iterdir()) == ["lock"]


def test_the_hosts_own_python_without_pip_gets_an_environment_of_rdevs_and_a_failed_install_is_a_sentence(
        home: Path, bare_python: str) -> None:
    # No package index answers: pip fails at once, as on a host without internet.
    offline = {"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_RETRIES": "0", "PIP_TIMEOUT": "2"}
    code, said = helper(home, "start", "--install", python=bare_python, env=offline)
    assert code == 1
    env = env_folder(state_dir().parent)
    builds = env.parent / f"{env.name}.builds"
    assert said[0]["say"].startswith(f"{bare_python} has no jupyter_server or ipykernel and it has no pip: installing "
                                     f"jupyter_server ipykernel into a virtual environment of rdev's ({builds}/")
    assert said[0]["say"].endswith("), once.")
    assert said[-1]["error"].startswith("installing jupyter_server ipykernel failed (")
    assert said[-1]["fix"].startswith("check the host's internet access and free space in ")
    # A failed build is never taken, nor left behind: the next start builds anew.
    assert list(builds.iterdir()) == [] and not (env.parent / f"{env.name}.current").exists()
    assert not (state_dir() / "server.json").exists()


def test_a_malformed_token_starts_nothing(home: Path) -> None:
    code, said = helper(home, "start", token="short")
    assert code == 1 and "token" in said[-1]["error"]
    assert not (state_dir() / "server.json").exists()


def test_stop_never_ends_a_process_that_only_has_the_recorded_pid(home: Path) -> None:
    other = subprocess.Popen(["sleep", "60"])
    try:
        state = state_dir()
        state.mkdir(parents=True)
        (state / "server.json").write_text(json.dumps({"pid": other.pid, "started": "1", "port": 1, "python": "x"}))
        assert helper(home, "stop") == (0, [{"stopped": None}])
        assert other.poll() is None
        assert not (state / "server.json").exists()
    finally:
        other.kill()
        other.wait()


def test_start_reuses_its_server_with_the_first_token_and_stop_ends_it(home: Path) -> None:
    code, said = helper(home, "start")
    assert code == 0, said
    first = said[-1]
    try:
        assert first["token"] == TOKEN and not first["reused"]
        code, said = helper(home, "start", token="n" * 43)
        assert code == 0 and said[-1]["reused"] and (said[-1]["pid"], said[-1]["token"]) == (first["pid"], TOKEN)
        state = state_dir()
        assert state.stat().st_mode & 0o777 == 0o700 and (state / "runtime").stat().st_mode & 0o777 == 0o700
        for name in ("token", "server.json", "server.log"):
            assert (state / name).stat().st_mode & 0o777 == 0o600
        assert TOKEN not in (state / "server.log").read_text()
        assert not list((state / "runtime").glob("*-open.html"))  # Jupyter's page with the token, at the umask's mode
    finally:
        code, said = helper(home, "stop")
    assert (code, said) == (0, [{"stopped": first["pid"]}])
    assert not Path(f"/proc/{first['pid']}").exists() or b") Z" in Path(f"/proc/{first['pid']}/stat").read_bytes()


@pytest.mark.parametrize("given, word", [("/opt/py 3/bin/python", "'/opt/py 3/bin/python'"),
                                         ("~/env/bin/python", '"$HOME"/env/bin/python'), ("python3.12", "python3.12"),
                                         ("/x/$(id)", "'/x/$(id)'")])
def test_the_python_becomes_one_word_of_the_remote_command(given: str | None, word: str) -> None:
    assert _python_word(given, "box") == word


@pytest.mark.parametrize("python", ["", "  ", "py\nthon"])
def test_a_python_that_is_no_command_is_refused(python: str) -> None:
    with pytest.raises(BadInput):
        _python_word(python, "box")


@pytest.mark.parametrize("argv, words", [(["jupyter", "box", "--port", "0"], "The port 0 is not a TCP port"),
                                         (["jupyter", "box", "--stop", "--port", "8888"], "--port has no meaning"),
                                         (["jupyter", "nobox"], "There is no host named 'nobox'")])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], words: str, home: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.startswith(f"rdev: {words}") and len(err.splitlines()) == 1
    assert not (home / ".ssh").exists()

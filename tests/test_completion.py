"""Shell completion of rdev's commands and host names in bash, zsh and fish: the script typer gives each shell is
loaded into that real shell, whose own completion function then asks rdev (`_RDEV_COMPLETE`), as it would at a
prompt. Only the last step, the shell's menu, is not driven: zsh's `_arguments` is replaced by one that prints."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

BIN = str(Path(sys.executable).parent)  # where the venv's `rdev` is, which the scripts call by name


@pytest.fixture
def hosts(home: Path, rdev) -> dict[str, str]:
    for name in ("gpu1", "gpu2", "lab"):
        assert rdev("add", name, "--host", "127.0.0.1").returncode == 0
    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}


def in_shell(shell: str, script: str, env: dict[str, str]) -> str:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not on this machine (scripts/setup.sh installs it)")
    result = subprocess.run([shell, "-c", script], check=False, capture_output=True, text=True, env=env, cwd=REPO,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


# Each shell asks for the script itself, so that typer finds that shell among rdev's parents (`; true` keeps the
# shell from exec-ing rdev), loads it, and completes WORDS as that shell's completion machinery would.
COMPLETE = {
    "bash": 'source <(rdev --show-completion; true); COMP_WORDS=({words}); COMP_CWORD={last}; _rdev_completion rdev; '
            'printf "%s\\n" "${{COMPREPLY[@]}}"',
    "zsh": 'compdef() {{ :; }}; _arguments() {{ print -r -- "$@"; }}; eval "$(rdev --show-completion; true)"; '
           'words=({words}); CURRENT={current}; _rdev_completion',
    "fish": 'rdev --show-completion | source; complete -C "{words}"',
}


def completions(shell: str, words: str, env: dict[str, str]) -> list[str]:
    """What `shell` offers for the command line `words` (its last word being completed), without descriptions."""
    count = len(words.split())
    said = in_shell(shell, COMPLETE[shell].format(words=words, last=count - 1, current=count), env)
    if shell == "zsh":  # _arguments '*: :(("gpu1"\n"gpu2"))', or (("connect":"Connect NAME..."))
        return re.findall(r'"((?:[^"\\]|\\.)*)"(?::"(?:[^"\\]|\\.)*")?', said)
    return [line.split("\t")[0] for line in said.splitlines() if line]  # fish: name<TAB>description


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
@pytest.mark.parametrize("command", ["connect", "ssh", "gpus", "run"])
def test_host_names_complete(shell: str, command: str, hosts: dict[str, str]) -> None:
    assert completions(shell, f"rdev {command} gp", hosts)[:2] == ["gpu1", "gpu2"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_commands_complete(shell: str, hosts: dict[str, str]) -> None:
    offered = completions(shell, "rdev con", hosts)
    assert offered[:1] == ["connect"], offered


def test_a_host_list_rdev_cannot_read_completes_to_nothing_rather_than_failing(home: Path) -> None:
    (home.parent / "cfg" / "rdev").mkdir(parents=True, exist_ok=True)
    (home.parent / "cfg" / "rdev" / "hosts.toml").write_text("[[[ not toml")
    env = {**os.environ, "_RDEV_COMPLETE": "complete_bash", "COMP_WORDS": "rdev connect gp", "COMP_CWORD": "2"}
    result = subprocess.run([sys.executable, "-m", "client_side"], check=False, capture_output=True, text=True,
                            env=env, cwd=REPO, timeout=60)
    assert result.returncode == 0 and result.stdout.split() == [], result.stderr

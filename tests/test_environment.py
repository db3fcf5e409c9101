"""Unit tests for colab_side/environment.py: which variables SSH sessions inherit, and the SetEnv line.

A terminal opened over SSH on a notebook runtime should find the notebook's Python and CUDA, but
must not inherit the serving process's own plumbing, anything secret (it would be written into
sshd's config file), or a value that one sshd_config line cannot hold.
"""

from __future__ import annotations

import pytest

from colab_side.environment import session_environment, setenv_lines

KEPT = {
    "CUDA_HOME": "/usr/local/cuda",
    "LD_LIBRARY_PATH": "/usr/lib64-nvidia:/usr/local/cuda/lib64",
    "PATH": "/opt/bin:/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/bin:/usr/bin:/bin",
    "PYTHONPATH": "/env/python",
    "NVIDIA_VISIBLE_DEVICES": "all",
    "NOTE": "a value with spaces # and a hash",
    "EMPTY": "",
}

DROPPED_NAMES = [
    "PWD", "SHLVL", "HOME", "USER", "TERM", "MPLBACKEND", "SSH_AUTH_SOCK", "SSH_CONNECTION", "JPY_PARENT_PID",
    "JPY_SESSION_NAME", "RDEV_X", "VSCODE_PID", "PYDEVD_USE_FRAME_EVAL", "TMUX", "_",
    # named like secrets
    "NGROK_AUTHTOKEN", "HF_TOKEN", "MY_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "OPENAI_API_KEY",
    "WANDB_APIKEY", "GOOGLE_APPLICATION_CREDENTIALS", "PGPASSWORD", "my_private_thing", "hf_token",
]

BAD_VALUES = ["line one\nline two", "trailing newline\n", "carriage\rreturn", "tab\there", 'say "hi"', "C:\\path",
              "\\", "bell\x07"]

BAD_NAMES = ["1ABC", "A-B", "A B", "A=B", "A.B", "", "A\nB", "É"]


@pytest.mark.parametrize(("key", "value"), list(KEPT.items()))
def test_kept(key: str, value: str) -> None:
    assert session_environment({key: value}) == {key: value}


def test_kept_together() -> None:
    assert session_environment(dict(KEPT)) == KEPT


@pytest.mark.parametrize("key", DROPPED_NAMES)
def test_dropped_by_name(key: str) -> None:
    assert session_environment({key: "x", "CUDA_HOME": "/usr/local/cuda"}) == {"CUDA_HOME": "/usr/local/cuda"}


def test_kaggle_key_dropped() -> None:
    assert session_environment({"KAGGLE_USERNAME": "jdoe", "KAGGLE_KEY": "0123abcd"}) == {"KAGGLE_USERNAME": "jdoe"}


@pytest.mark.parametrize("value", BAD_VALUES)
def test_dropped_by_value(value: str) -> None:
    """A config line cannot hold a newline, and a quote or backslash has no portable escape in SetEnv."""
    assert session_environment({"SOME_VAR": value, "PATH": "/usr/bin"}) == {"PATH": "/usr/bin"}


@pytest.mark.parametrize("key", BAD_NAMES)
def test_dropped_by_name_shape(key: str) -> None:
    assert session_environment({key: "x", "PATH": "/usr/bin"}) == {"PATH": "/usr/bin"}


def test_input_is_not_changed() -> None:
    environ = {"PATH": "/usr/bin", "HOME": "/root", "HF_TOKEN": "hf_x"}
    session_environment(environ)
    assert environ == {"PATH": "/usr/bin", "HOME": "/root", "HF_TOKEN": "hf_x"}


def test_setenv_lines_empty() -> None:
    """No variables: no SetEnv line at all."""
    assert setenv_lines({}) == []


def test_setenv_lines_one_variable() -> None:
    assert setenv_lines({"PATH": "/usr/bin:/bin"}) == ['SetEnv "PATH=/usr/bin:/bin"']


def test_setenv_lines_sorted_on_one_line() -> None:
    """sshd keeps only the first SetEnv line, so all variables go on one, quoted so spaces and # survive."""
    variables = {"PATH": "/usr/bin", "CUDA_HOME": "/usr/local/cuda", "NOTE": "a b # c", "EMPTY": "", "B": "2"}
    assert setenv_lines(variables) == [
        'SetEnv "B=2" "CUDA_HOME=/usr/local/cuda" "EMPTY=" "NOTE=a b # c" "PATH=/usr/bin"'
    ]


def test_setenv_from_a_notebook_environment() -> None:
    """The whole path: a realistic notebook environment becomes one line with only the useful variables."""
    environ = {
        **KEPT,
        "HOME": "/root", "PWD": "/content", "SHLVL": "1", "TERM": "xterm-color", "MPLBACKEND": "module://x",
        "JPY_PARENT_PID": "12", "HF_TOKEN": "hf_secret", "NGROK_AUTHTOKEN": "2abc", "BAD": 'say "hi"',
    }
    lines = setenv_lines(session_environment(environ))
    assert lines == [
        ('SetEnv "CUDA_HOME=/usr/local/cuda" "EMPTY=" "LD_LIBRARY_PATH=/usr/lib64-nvidia:/usr/local/cuda/lib64" '
        '"NOTE=a value with spaces # and a hash" "NVIDIA_VISIBLE_DEVICES=all" '
        '"PATH=/opt/bin:/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/bin:/usr/bin:/bin" '
        '"PYTHONPATH=/env/python"')
    ]
    assert "secret" not in lines[0] and "\n" not in lines[0]

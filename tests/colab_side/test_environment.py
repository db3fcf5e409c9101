"""Unit tests for colab_side/environment.py: which variables SSH sessions and child processes inherit, and the
SetEnv line.

A terminal opened over SSH on a notebook runtime should find the notebook's Python and CUDA, but
must not inherit the serving process's own plumbing, anything secret (it would be written into
sshd's config file), or a value that one sshd_config line cannot hold. A secret is known by its name
(a convention for naming one) or by its value: the credentials of a URL are cut out, a connection
string's key or password and a token of a known shape take the whole variable out.
"""

from __future__ import annotations

import pytest

from colab_side.environment import (
    MARKER_VARIABLE,
    looks_secret,
    passable,
    session_environment,
    setenv_lines,
    without_secrets,
)

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

# Named like secrets by conventions the first rule missed (issue 19): each would reach every SSH session.
SECRET_NAMES = [
    "BORG_PASSPHRASE", "GPG_PASSPHRASE", "SSHPASS", "DB_PASS", "RCLONE_CONFIG_PASS", "MYSQL_PWD", "DB_PWD", "GH_PAT",
    "HF_PAT", "GITHUB_PAT", "JWT", "SUPABASE_JWT_SECRET", "COOKIE", "SESSION_COOKIE", "HTTP_COOKIES", "SESSION_ID",
    "FLASK_SESSION", "SENTRY_DSN", "DSN", "AZURE_STORAGE_CONNECTION_STRING", "DB_CONNSTR", "SQL_CONN_STRING",
    "SLACK_WEBHOOK_URL", "HTTP_AUTHORIZATION", "TBE_CREDS_ADDR", "ACCOUNTKEY", "AccountKey", "MASTER_KEYS",
    "AWS_ACCESS_KEY_ID", "X_AMZ_SIGNATURE", "NPM_TOKEN", "TWINE_PASSWORD", "HTPASSWD", "mysql_pwd",
]

# Everyday variables that look a little like secrets and must stay.
HARMLESS_NAMES = [
    "PATH", "PYTHONPATH", "LD_LIBRARY_PATH", "LIBRARY_PATH", "MANPATH", "CLASSPATH", "PKG_CONFIG_PATH", "CUDA_HOME",
    "CUDA_VISIBLE_DEVICES", "CUDA_PATH", "NVIDIA_DRIVER_CAPABILITIES", "PYTHON_KEYRING_BACKEND", "KEYRING_PROPERTY",
    "KEYBOARD", "TOKENIZERS_PARALLELISM", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "PWDEBUG",
    "PASSENGER_APP_ENV", "PATIENCE", "HF_HOME", "HTTPS_PROXY", "NO_PROXY", "DATABASE_URL", "PIP_INDEX_URL",
    "LM_LICENSE_FILE", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "OMP_NUM_THREADS", "KMP_AFFINITY", "TWINE_USERNAME",
]

# Values whose credentials are cut out: the rest still says where to go (a proxy stays a proxy).
STRIPPED_VALUES = {
    "postgres://u:p@h/db": "postgres://h/db",
    "https://key@o0.ingest.sentry.io/1": "https://o0.ingest.sentry.io/1",
    "http://u:p@proxy:3128": "http://proxy:3128",
    "http://u:p@ss@proxy:3128/": "http://proxy:3128/",  # an unescaped @ in the password
    "https://__token__:glt-x@gitlab.example.org/api/v4/simple": "https://gitlab.example.org/api/v4/simple",
    "jdbc:postgresql://u:p@h:5432/db": "jdbc:postgresql://h:5432/db",
    "http://a:1@x:3128,https://b:2@y": "http://x:3128,https://y",
    "mongodb+srv://u:p@c.example.net/?retryWrites=true": "mongodb+srv://c.example.net/?retryWrites=true",
    "ssh://u:p@h/repo": "ssh://h/repo",
}

# Values that hold a secret that cannot be cut out: the variable goes.
DROPPED_VALUES = [
    "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=abc==;EndpointSuffix=core.windows.net",
    "Server=tcp:db,1433;Database=d;User ID=u;Password=p;Encrypt=true",
    "Driver={ODBC Driver 18};Server=s;Uid=u;pwd=p",
    "BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=sv=2020-08-04&sig=abc",
    "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=abc=",
    "https://a.blob.core.windows.net/c?sv=2020-08-04&sig=abc%3D",
    "https://bucket.s3.amazonaws.com/o?X-Amz-Credential=AK%2F&X-Amz-Signature=abc",
    "https://api.example.com/v1?access_token=abc",
    "jdbc:mysql://db/app?user=u&password=p",
    "-Xmx1g -Djavax.net.ssl.trustStorePassword=changeit",
    "ghp_" + "a1B2" * 9, "github_pat_" + "11AB" * 10, "hf_" + "AbCd" * 9, "glpat-" + "x1Y2" * 5,
    "xoxb-1234-5678-abcdEFGH", "sk-" + "a1B2" * 12, "sk-proj-" + "a1_B" * 10, "AKIA" + "ABCDEFGH23456789",
    "AIza" + "Sy" + "a1B2" * 8 + "c", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
]

# Values that look a little like those and must stay as they are.
HARMLESS_VALUES = [
    "http://proxy:3128", "localhost,127.0.0.1,.internal", "ssh://git@github.com/org/repo",
    "git+ssh://git@github.com/org/repo.git", "git@github.com:org/repo.git", "27000@licserver",
    "rs=0:di=01;34:ln=01;36:*.tar=01;31", "--xla_gpu_cuda_data_dir=/usr/local/cuda", "granularity=fine,compact,1,0",
    "ssh -o StrictHostKeyChecking=no", "/content/hf_cache_for_this_project", "/tmp/sk-learn-cache-directory-x",
    "https://pypi.org/simple", "mailto:someone@example.org", "expandable_segments:True",
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


@pytest.mark.parametrize("key", SECRET_NAMES)
def test_named_like_a_secret(key: str) -> None:
    assert looks_secret(key)
    assert without_secrets({key: "x", "CUDA_HOME": "/usr/local/cuda"}) == {"CUDA_HOME": "/usr/local/cuda"}
    assert session_environment({key: "x", "CUDA_HOME": "/usr/local/cuda"}) == {"CUDA_HOME": "/usr/local/cuda"}


@pytest.mark.parametrize("key", HARMLESS_NAMES)
def test_harmless_name_kept(key: str) -> None:
    assert not looks_secret(key)
    assert session_environment({key: "/usr/local/x"}) == {key: "/usr/local/x"}


@pytest.mark.parametrize("key", ["PWD", "OLDPWD"])
def test_the_shells_folders_are_no_password(key: str) -> None:
    """Named like MYSQL_PWD, but a folder: a child keeps them (a session gets its own)."""
    assert not looks_secret(key)
    assert without_secrets({key: "/content"}) == {key: "/content"}


@pytest.mark.parametrize(("value", "stripped"), list(STRIPPED_VALUES.items()))
def test_url_credentials_cut_out(value: str, stripped: str) -> None:
    environ = {"HTTPS_PROXY": value, "PATH": "/usr/bin"}
    assert passable(value) == stripped
    assert without_secrets(environ) == session_environment(environ) == {"HTTPS_PROXY": stripped, "PATH": "/usr/bin"}


@pytest.mark.parametrize("value", DROPPED_VALUES)
def test_secret_value_dropped(value: str) -> None:
    environ = {"SOME_SETTING": value, "PATH": "/usr/bin"}
    assert passable(value) is None
    assert without_secrets(environ) == session_environment(environ) == {"PATH": "/usr/bin"}


@pytest.mark.parametrize("value", HARMLESS_VALUES)
def test_harmless_value_kept(value: str) -> None:
    assert passable(value) == value
    assert session_environment({"SOME_SETTING": value}) == {"SOME_SETTING": value}


def test_the_review_examples() -> None:
    """Issue 19's list, as a notebook would have it: nothing of a secret is left, every harmless variable is."""
    environ = {
        "BORG_PASSPHRASE": "pp-leak", "SSHPASS": "sp-leak", "MYSQL_PWD": "my-leak", "GH_PAT": "ghpat-leak",
        "HF_PAT": "hfpat-leak", "JWT": "jwt-leak", "SESSION_COOKIE": "ck-leak", "DATABASE_URL": "postgres://u:db-leak@h/db",
        "SENTRY_DSN": "https://dsn-leak@o0.ingest.sentry.io/1", "HTTPS_PROXY": "http://u:px-leak@proxy:3128",
        "AZURE_STORAGE_CONNECTION_STRING": "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=az-leak",
        **KEPT,
    }
    for passed in (without_secrets(environ), session_environment(environ)):
        assert "leak" not in repr(passed)
        assert passed == {**KEPT, "DATABASE_URL": "postgres://h/db", "HTTPS_PROXY": "http://proxy:3128"}


def test_a_child_gets_no_state_marker() -> None:
    assert without_secrets({MARKER_VARIABLE: "/srv/rdev", "PATH": "/usr/bin"}) == {"PATH": "/usr/bin"}


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

"""Which of the serving process's environment variables SSH sessions and its other children get.

A VS Code terminal on a notebook runtime should find the notebook's Python, CUDA libraries and
`nvidia-smi`: sshd hands the variables kept here to every session through `SetEnv`, and
kernel_env writes them into the file SSH shells read. No secret of the serving process goes along:
a session that needs a token reads it the way the notebook did.
"""

from __future__ import annotations

import re

# Set in sshd's environment and in every session's: how `stop` finds a session whose listener is gone.
# sshd alone gets it (its own server's); any other child would be taken for a session of the server
# whose session started this process, and ended by that server's `stop`.
MARKER_VARIABLE = "RDEV_STATE"

# Variables that describe the serving process itself, its terminal or its login: sshd sets
# its own (USER, HOME, SSH_*), the client sends TERM, and a copied PWD, SHLVL or TMUX would lie
# to the session. Notebook kernels' plumbing (JPY_*, MPLBACKEND pointing at the inline backend,
# debugger hooks) breaks plain `python` in a terminal.
_PER_PROCESS = {
    "_", "PWD", "OLDPWD", "SHLVL", "HOME", "USER", "LOGNAME", "SHELL", "MAIL", "TERM", "COLUMNS",
    "LINES", "PS1", "PS2", "TMUX", "TMUX_PANE", "STY", "WINDOW", "DISPLAY", "XAUTHORITY",
    "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "MPLBACKEND", "PAGER", "CLICOLOR", "GIT_PAGER",
    "KRB5CCNAME", "INVOCATION_ID", "JOURNAL_STREAM", "NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS",
}
_PER_PROCESS_PREFIXES = ("SSH_", "XDG_SESSION_", "JPY_", "PYDEVD_", "VSCODE_", "TERM_", "RDEV_")

# A name that follows a convention for naming a secret (case ignored; words are separated by `_`):
# - anywhere in the name: TOKEN (not TOKENIZERS_PARALLELISM), SECRET, PASSW(ORD|D), PASSPHRASE, CREDS,
#   CREDENTIAL, PRIVATE, COOKIE, JWT, SESSION, WEBHOOK (its URL is the secret), SIGNATURE, CONNECTION_STRING
#   (CONNSTR, CONN_STR), AUTH (AUTHTOKEN, AUTHORIZATION; not GIT_AUTHOR_NAME);
# - ending a word: PASS (DB_PASS, SSHPASS), PWD (MYSQL_PWD; the shell's PWD and OLDPWD are folders), KEY or
#   KEYS (API_KEY, APIKEY, AccountKey, AWS_ACCESS_KEY_ID; not PYTHON_KEYRING_BACKEND);
# - a whole word: PAT (GH_PAT, HF_PAT; not PATH) and DSN (SENTRY_DSN).
_SECRET_NAME = re.compile(
    r"TOKEN(?!IZ)|SECRET|PASSW|PASSPHRASE|CREDS|CREDENTIAL|PRIVATE|COOKIE|JWT|SESSION|WEBHOOK|SIGNATURE"
    r"|CONN(?:ECTION)?_?STR|AUTH(?!ORS?(?:_|$))|(?:PASS|PWD|KEYS?)(?:_|$)|(?:^|_)(?:PAT|DSN)(?:_|$)",
    re.IGNORECASE)
_NOT_SECRET = {"PWD", "OLDPWD"}
# Inside a value: the key of a `key=value` part (a connection string's `AccountKey=`, `Password=` or `pwd=`, a
# URL query's `sig=` or `access_token=`, a JVM option's `-Dpassword=`), and tokens whose shape gives them away
# (GitHub, Hugging Face, GitLab, Slack, OpenAI-style `sk-`, AWS access key ids, Google API keys, JWTs).
_PART_KEY = re.compile(r"([A-Za-z0-9_.-]+)\s*=")
_SECRET_KEYS = {"PWD", "SIG"}
_TOKEN_SHAPE = re.compile(
    r"(?<![A-Za-z0-9])(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_\w{30,}|hf_[A-Za-z]{30,}|glpat-[\w-]{20,}"
    r"|xox[abposr]-[\w-]{10,}|sk-(?:(?:proj|ant|svcacct)-[\w-]{20,}|[A-Za-z0-9]{20,})|AKIA[0-9A-Z]{16}"
    r"|AIza[\w-]{35}|eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.)")
# Credentials in a URL: what comes before the `@` of its authority (user:password, or a token alone).
_URL_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/?#\s]*)@")
# ...except a bare user name in an ssh URL (ssh://git@github.com/...): ssh takes no password there.
_SSH_SCHEMES = {"ssh", "git+ssh", "ssh+git", "sftp"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def looks_secret(name: str) -> bool:
    """True if `name` is named like a secret (see _SECRET_NAME)."""
    return name.upper() not in _NOT_SECRET and bool(_SECRET_NAME.search(name))


def passable(value: str) -> str | None:
    """`value` as it may be passed on: None if it holds a secret that cannot be cut out of it (a secret part of a
    connection string, a token of a known shape), else the value with the credentials of its URLs removed.

    Removed rather than the whole value dropped: a proxy (`http://user:password@proxy:3128`) still names the way
    out, and one that wants the password answers 407 where no proxy at all would time out.
    """
    keys = (key.replace(".", "_").replace("-", "_") for key in _PART_KEY.findall(value))
    if _TOKEN_SHAPE.search(value) or any(looks_secret(key) or key.upper() in _SECRET_KEYS for key in keys):
        return None
    return _URL_USERINFO.sub(_without_userinfo, value)


def _without_userinfo(url: re.Match[str]) -> str:
    scheme, userinfo = url.group(1), url.group(2)
    if scheme.lower() in _SSH_SCHEMES and ":" not in userinfo:
        return url.group(0)
    return f"{scheme}://"


def without_secrets(environ: dict[str, str]) -> dict[str, str]:
    """The environment for a child process: none of the serving process's secrets, by name or by value (nor the
    state marker of a session this process may run in)."""
    kept = {}
    for key, value in environ.items():
        if key == MARKER_VARIABLE or looks_secret(key):
            continue
        clean = passable(value)
        if clean is not None:
            kept[key] = clean
    return kept


def session_environment(environ: dict[str, str]) -> dict[str, str]:
    """The variables to pass on to SSH sessions: a child's (without_secrets) less the serving process's own,
    each one representable on a single sshd_config line."""
    kept = {}
    for key, value in without_secrets(environ).items():
        if not _NAME.fullmatch(key) or key in _PER_PROCESS or key.startswith(_PER_PROCESS_PREFIXES):
            continue
        # A config line cannot hold a newline, and a quote inside a quoted SetEnv argument has
        # no escape that every OpenSSH version reads the same way.
        if any(ord(c) < 32 for c in value) or '"' in value or "\\" in value:
            continue
        kept[key] = value
    return kept


def setenv_lines(variables: dict[str, str]) -> list[str]:
    """The sshd_config `SetEnv` line; each variable quoted so spaces and `#` survive.

    sshd keeps only the first SetEnv line it reads, so every variable goes on one line.
    """
    if not variables:
        return []
    return ["SetEnv " + " ".join(f'"{key}={value}"' for key, value in sorted(variables.items()))]

"""Which of the serving process's environment variables SSH sessions get.

A VS Code terminal on a notebook runtime should find the notebook's Python, CUDA libraries and
`nvidia-smi`: sshd hands the variables kept here to every session through `SetEnv`.
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
# Secrets must not be written into sshd's config file, so anything named like one stays out;
# a session that needs a token reads it the way the notebook did.
_SECRET = re.compile(r"TOKEN|SECRET|PASSW|CREDENTIAL|API_?KEY|AUTH|PRIVATE|(^|_)KEY($|_)", re.IGNORECASE)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def looks_secret(name: str) -> bool:
    return bool(_SECRET.search(name))


def without_secrets(environ: dict[str, str]) -> dict[str, str]:
    """The environment for a child process that needs none of the serving process's secrets (nor
    the state marker of a session this process may run in)."""
    return {key: value for key, value in environ.items() if not looks_secret(key) and key != MARKER_VARIABLE}


def session_environment(environ: dict[str, str]) -> dict[str, str]:
    """The variables to pass on, each one representable on a single sshd_config line."""
    kept = {}
    for key, value in environ.items():
        if not _NAME.fullmatch(key) or key in _PER_PROCESS or key.startswith(_PER_PROCESS_PREFIXES):
            continue
        if looks_secret(key):
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

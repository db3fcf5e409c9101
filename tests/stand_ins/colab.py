"""A stand-in for Google's colab CLI where it talks to Google: `new`, `status` and `stop`.

The real CLI's API address is fixed (colab.research.google.com), beyond this machine's network, so
these three commands are played here: they print what the real ones print and edit the session
file (~/.config/colab-cli/sessions.json) as the real ones do. `ssh` is the real CLI, run as it
is ($RDEV_STANDIN_REAL_COLAB), against the stand-in runtime proxy. Every call is recorded in
$RDEV_STANDIN_DIR/colab-calls.jsonl. The runtime `new` assigns is read from
$RDEV_STANDIN_DIR/colab-next-runtime.json ({"url", "token", "endpoint"}); without it, `new` fails
as the real one does when Colab has no runtime to give. With $RDEV_STANDIN_DIR/colab-login-needed,
`status` and `new` ask for an authorization code, as the real CLI's login does.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path


def records() -> Path:
    return Path(os.environ["RDEV_STANDIN_DIR"])


def sessions_file() -> Path:
    return Path(os.path.expanduser("~/.config/colab-cli/sessions.json"))


def load() -> dict:
    try:
        return json.loads(sessions_file().read_text())
    except FileNotFoundError:
        return {}


def save(sessions: dict) -> None:
    sessions_file().parent.mkdir(parents=True, exist_ok=True)
    sessions_file().write_text(json.dumps(sessions, indent=2))


def option(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv[:-1] else None


def login_if_needed() -> None:
    if (records() / "colab-login-needed").exists():
        print("Please visit this URL to authorize this application: https://accounts.google.com/o/oauth2/auth?x",
              file=sys.stderr)
        input("Enter the authorization code: ")  # EOFError without a terminal, as the real one ends


def new(argv: list[str]) -> int:
    name = option(argv, "-s") or option(argv, "--session") or "a1b2c3"
    login_if_needed()
    print(f"[colab] Creating session '{name}'...")
    try:
        runtime = json.loads((records() / "colab-next-runtime.json").read_text())
    except FileNotFoundError:
        print("[colab] Error: no runtime is available (quota exceeded). Try again later.", file=sys.stderr)
        return 1
    gpu = (option(argv, "--gpu") or "").upper()
    sessions = load()
    sessions[name] = {
        "name": name, "token": runtime["token"], "url": runtime["url"], "endpoint": runtime["endpoint"],
        "token_expires_at": (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat(),
        "variant": "GPU" if gpu else "DEFAULT", "accelerator": gpu or "NONE", "machine_shape": "STANDARD",
        "kernel_id": None, "session_id": None, "last_execution": None, "running": None,
    }
    save(sessions)
    print("[colab] Session READY.")
    return 0


def existing(argv: list[str]) -> tuple[str, dict] | None:
    """The session `-s NAME` and the whole table; None (after the CLI's words) when there is no such session."""
    name = option(argv, "-s") or ""
    sessions = load()
    if name not in sessions:
        print(f"[colab] Session '{name}' not found.")
        return None
    return name, sessions


def status(argv: list[str]) -> int:
    found = existing(argv)
    if found:
        name, sessions = found
        login_if_needed()
        sessions[name]["token_expires_at"] = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
        save(sessions)
        print(f"[colab] Session '{name}': RUNNING")
    return 0


def stop(argv: list[str]) -> int:
    found = existing(argv)
    if found:
        name, sessions = found
        print(f"[colab] Stopping session '{name}'...")
        del sessions[name]
        save(sessions)
        print("[colab] Session terminated.")
    return 0


def main(argv: list[str]) -> int:
    with open(records() / "colab-calls.jsonl", "a") as calls:
        calls.write(json.dumps(argv) + "\n")
    if argv[:1] == ["ssh"]:
        real = os.environ["RDEV_STANDIN_REAL_COLAB"]
        os.execv(real, [real, *argv])
    commands = {"new": new, "status": status, "stop": stop}
    if not argv or argv[0] not in commands:
        print(f"stand-in colab: {argv[:1]} is not played here", file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

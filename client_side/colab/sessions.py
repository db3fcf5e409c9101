"""What Google's colab CLI knows of its sessions, read from its own file (rdev never writes it).

The CLI keeps `{NAME: {token, url, endpoint, token_expires_at, accelerator, ...}}` in
`~/.config/colab-cli/sessions.json`. rdev reads it to tell whether a session exists (a
ProxyCommand for a missing one would make the CLI create a runtime), which runtime it names
(`endpoint`, the server's assignment id: url and token change on every refresh, it does not), and
whether its proxy token is fresh (else the CLI refreshes it inside the ProxyCommand, where a login
prompt would read the SSH stream). Standard library only: the ProxyCommand guard imports it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from client_side.errors import RdevError
from client_side.local import paths

# The CLI refreshes a proxy token within 5 minutes of its expiry; rdev does it earlier, in the
# foreground, so that an editor connecting soon after does not have to.
REFRESH_MARGIN = timedelta(minutes=10)
# The CLI rewrites the file in place (truncate, write, fsync) under a lock of its own, so a reader
# may catch it empty or half-written for a moment.
_READ_ATTEMPTS = 5


@dataclass(frozen=True)
class Session:
    """One session of the CLI: the runtime it names, and until when its proxy token is good."""

    name: str
    endpoint: str
    expires: datetime | None
    accelerator: str

    def fresh(self, margin: timedelta = REFRESH_MARGIN) -> bool:
        return self.expires is not None and self.expires - margin > datetime.now(timezone.utc)


def read(name: str) -> Session | None:
    """The session called `name`, or None when the CLI has no such session."""
    found = _table().get(name)
    if found is None:
        return None
    return Session(name=name, endpoint=found["endpoint"], expires=_when(found.get("token_expires_at")),
                   accelerator=found.get("accelerator") or "NONE")


def _table() -> dict[str, dict]:
    """The file's sessions, read as the CLI reads them. The CLI takes a file it cannot read whole
    (bad JSON, one entry not as it writes them) for no sessions at all, and would then create a
    runtime for any session asked for: rdev refuses such a file instead."""
    path = paths.colab_sessions()
    for attempt in range(_READ_ATTEMPTS):
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if text.strip() else {}
            if _as_the_cli_writes(data):
                return data
            why = "an entry is not as the CLI writes it"
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError, ValueError) as err:
            why = str(err)
        time.sleep(0.1)  # perhaps caught half-written
    raise RdevError(f"Google's colab CLI cannot read its own session file {path} ({why}), and would start a new "
                    "runtime for any session", "run 'colab sessions' to see what it has, and mend that file's "
                    "damaged entry (do not remove the file: it is how the CLI finds runtimes that still run).")


_REQUIRED = ("name", "token", "url", "endpoint")
_TEXT = ("variant", "accelerator", "machine_shape")  # with defaults, but never null
_OPTIONAL_TEXT = ("kernel_id", "session_id", "running")


def _as_the_cli_writes(data: object) -> bool:
    """Whether every entry would load into the CLI's own model (`colab_cli.state.SessionState`)."""
    if not isinstance(data, dict):
        return False
    for entry in data.values():
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in _REQUIRED):
            return False
        if not all(isinstance(entry.get(k, ""), str) for k in _TEXT):
            return False
        if not all(isinstance(entry.get(k), (str, type(None))) for k in _OPTIONAL_TEXT):
            return False
        expires = entry.get("token_expires_at")
        if expires is not None and _when(expires) is None:
            return False
        last = entry.get("last_execution")
        if last is not None and not (isinstance(last, list) and len(last) == 3):
            return False
    return True


def _when(text: object) -> datetime | None:
    """The token's expiry as the CLI writes it (ISO 8601, UTC when no zone is given); None if absent."""
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)

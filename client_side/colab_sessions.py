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

from client_side import paths
from client_side.errors import RdevError

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
    table = _table()
    found = table.get(name)
    if not isinstance(found, dict) or not isinstance(found.get("endpoint"), str):
        return None
    return Session(name=name, endpoint=found["endpoint"], expires=_when(found.get("token_expires_at")),
                   accelerator=str(found.get("accelerator") or "NONE"))


def _table() -> dict:
    path = paths.colab_sessions()
    for attempt in range(_READ_ATTEMPTS):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError, ValueError) as err:
            if attempt == _READ_ATTEMPTS - 1:
                raise RdevError(f"Google's colab CLI's session file {path} cannot be read ({err})",
                                "run 'colab sessions' to see what the CLI makes of it, or remove that file.") from None
            time.sleep(0.1)
            continue
        return data if isinstance(data, dict) else {}
    return {}


def _when(text: object) -> datetime | None:
    """The token's expiry as the CLI writes it (ISO 8601, UTC when no zone is given); None if absent."""
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)

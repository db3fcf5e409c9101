"""What Google's colab CLI knows of its sessions, read from its own file (rdev never writes it).

The CLI keeps `{NAME: {token, url, endpoint, token_expires_at, accelerator, ...}}` in
`~/.config/colab-cli/sessions.json`. rdev reads it to tell whether a session exists (a
ProxyCommand for a missing one would make the CLI create a runtime), which runtime it names
(`endpoint`, the server's assignment id: url and token change on every refresh, it does not), and
whether its proxy token is fresh (else the CLI refreshes it inside the ProxyCommand, where a login
prompt would read the SSH stream). The file is read by the CLI's own rules (its pydantic model,
mirrored below), since a file that rdev accepts and the CLI does not is a file in which the CLI
finds no session and creates one. Standard library only: the ProxyCommand guard imports it.
"""

from __future__ import annotations

import json
import math
import re
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
        """Whether the token outlasts `margin`. An expiry without a time zone is as good as none: the CLI
        compares it with its aware UTC clock and fails."""
        return (self.expires is not None and self.expires.tzinfo is not None
                and self.expires - datetime.now(timezone.utc) > margin)


def read(name: str) -> Session | None:
    """The session called `name`, or None when the CLI has no such session."""
    found = _table().get(name)
    if found is None:
        return None
    return Session(name=name, endpoint=found["endpoint"], expires=_expiry(found.get("token_expires_at")),
                   accelerator=found.get("accelerator", "NONE"))


def _table() -> dict[str, dict]:
    """The file's sessions, read as the CLI reads them. The CLI takes a file it cannot read whole
    (bad JSON, one entry its model refuses) for no sessions at all, and would then create a
    runtime for any session asked for: rdev refuses such a file instead."""
    path = paths.colab_sessions()
    for attempt in range(_READ_ATTEMPTS):
        if attempt:
            time.sleep(0.1)  # perhaps it was caught half-written
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if text.strip() else {}
            if isinstance(data, dict) and all(map(_loads, data.values())):
                return data
            why = "an entry is not as the CLI writes it"
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
            why = str(err) or type(err).__name__
    raise RdevError(f"Google's colab CLI cannot read its own session file {path} ({why}), and would start a new "
                    "runtime for any session", "run 'colab sessions' to see what it has, and mend that file's "
                    "damaged entry (do not remove the file: it is how the CLI finds runtimes that still run).")


# The fields of the CLI's model (colab_cli.state.SessionState, 0.7.5) by type. Pydantic's lax mode turns
# no JSON number or boolean into text, so each text field must be a JSON string.
_TEXT = ("name", "token", "url", "endpoint")
_TEXT_WITH_DEFAULT = ("variant", "accelerator", "machine_shape")  # may be missing, never null
_TEXT_OR_NULL = ("kernel_id", "session_id", "running")


def _loads(entry: object) -> bool:
    """Whether `entry` loads into the CLI's model (extra keys are ignored there too)."""
    if not isinstance(entry, dict):
        return False
    if not (all(isinstance(entry.get(key), str) for key in _TEXT)
            and all(isinstance(entry.get(key, ""), str) for key in _TEXT_WITH_DEFAULT)
            and all(isinstance(entry.get(key), (str, type(None))) for key in _TEXT_OR_NULL)):
        return False
    last = entry.get("last_execution")  # Optional[Tuple[str, Optional[str], str]]: a list of exactly three
    if last is not None and not (isinstance(last, list) and len(last) == 3 and isinstance(last[0], str)
                                 and isinstance(last[1], (str, type(None))) and isinstance(last[2], str)):
        return False
    try:
        _expiry(entry.get("token_expires_at"))
    except ValueError:
        return False
    return True


# Pydantic's datetime from text: RFC 3339's shape (separator T, t, space or _; seconds, a fraction of any
# length, cut to microseconds, and the zone optional; U+2212 as a minus), or a date alone. ISO 8601's other
# forms (week and ordinal dates, the basic format) are refused. ASCII digits only.
_RFC3339 = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[Tt _]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]+))?)?"
                      r"(?:([Zz])|([-+\u2212])([0-9]{2}):?([0-9]{2}))?)?")
# A Unix time as text: an integer, or a decimal with a point (then an exponent may follow).
_NUMBER = re.compile(r"[-+]?(?:[0-9]+|(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Beyond this a Unix time counts in milliseconds; the result must be a Python datetime (years 1 to 9999).
_MILLISECONDS_FROM = 2e10
_SECONDS = (int((datetime(1, 1, 1, tzinfo=timezone.utc) - _EPOCH).total_seconds()),
            int((datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc) - _EPOCH).total_seconds()))


def _expiry(value: object) -> datetime | None:
    """`token_expires_at` as the CLI's model reads it (None when missing or null); ValueError where it refuses it."""
    if value is None:
        return None
    if isinstance(value, str):
        if match := _RFC3339.fullmatch(value):
            return _from_fields(*match.groups())
        if _NUMBER.fullmatch(value):
            return _from_unix(float(value) if "." in value else int(value))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return _from_unix(value)
    raise ValueError(f"not a time the CLI reads: {value!r}")


def _from_fields(year: str, month: str, day: str, hour: str | None, minute: str | None, second: str | None,
                 fraction: str | None, utc: str | None, sign: str | None, zone_hours: str | None,
                 zone_minutes: str | None) -> datetime:
    """The datetime of _RFC3339's groups; ValueError for a day, hour or zone out of range, or the year 0."""
    zone = timezone.utc if utc else None
    if sign and zone_hours and zone_minutes:
        if int(zone_minutes) >= 60:
            raise ValueError("zone minutes beyond 59")
        # timezone() refuses an offset of a whole day or more, as pydantic does.
        zone = timezone((1 if sign == "+" else -1) * timedelta(hours=int(zone_hours), minutes=int(zone_minutes)))
    return datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                    int((fraction or "")[:6].ljust(6, "0")), tzinfo=zone)


def _from_unix(number: float) -> datetime:
    """A Unix time in seconds, or milliseconds beyond 2e10, as pydantic reads it (in UTC)."""
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError("not a finite number")
    if abs(number) <= _MILLISECONDS_FROM:
        return _EPOCH + timedelta(seconds=number)
    whole = math.floor(number) // 1000  # pydantic floors the milliseconds first
    if not _SECONDS[0] <= whole <= _SECONDS[1]:
        raise ValueError("beyond the years 1 to 9999")
    return _EPOCH + timedelta(seconds=whole, milliseconds=number - whole * 1000)

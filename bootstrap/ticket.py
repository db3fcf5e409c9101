"""The ticket: one line that tells the laptop how to reach a runtime.

`rdev1.` followed by unpadded base64url of a UTF-8 JSON object, so that it survives copy and
paste out of a notebook. It carries no secret. Parsing is strict: every rejection is one sentence
that names the field at fault.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

from bootstrap import pubkeys, validate

PREFIX = "rdev1."
PUBLIC_TUNNELS = ("cloudflared", "ngrok")  # the ones that reach a notebook runtime from outside
TUNNELS = (*PUBLIC_TUNNELS, "direct")
RUNTIMES = ("colab", "kaggle", "generic")
MAX_DEPTH = 8  # a ticket nests two deep (the object, its host_keys list); the rest is room, not a use
_FRACTION = re.compile(r"(\.\d{1,6})\d*")
_VERSION = re.compile(r"[0-9][0-9A-Za-z.+-]{0,39}")  # PEP 440 as rdev writes it: shown to the user, so kept plain
# A ticket with three large host keys (RSA 4096 among them) is under 3000 characters; a longer
# text is not a ticket, and refusing it early keeps the decoder's work small.
MAX_TICKET_CHARS = 8192
# How much of a ticket file or a paste a reader takes in: enough for a whole cell output, while
# `--ticket-file /dev/zero` cannot fill the memory.
MAX_TEXT_BYTES = 1 << 20
_NOT_BASE64URL = re.compile(r"[^A-Za-z0-9_-]")


class TicketError(ValueError):
    """The text given is not a ticket this version of rdev can use."""


@dataclass(frozen=True)
class Ticket:
    tunnel: str
    host: str
    port: int
    user: str
    host_keys: tuple[str, ...]
    workdir: str
    runtime: str
    started: str
    expires: str | None
    v: int = 1
    rdev: str | None = None  # the runtime's rdev version (bootstrap.__version__); tickets before 0.2.0 have none

    def encode(self) -> str:
        fields = asdict(self)
        fields["host_keys"] = list(self.host_keys)
        raw = json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()
        return PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def utc_timestamp(moment: datetime) -> str:
    """UTC ISO-8601 with a `Z`, the form tickets carry."""
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse(text: str) -> Ticket:
    """Decode and check a ticket; raise TicketError with one sentence saying what is wrong."""
    text = text.strip()
    if not text.startswith("rdev"):
        raise TicketError("This is not an rdev ticket: a ticket is one line starting with 'rdev1.'.")
    if not text.startswith(PREFIX):
        raise TicketError(
            "This ticket is from another version of rdev: run the same rdev version on both sides."
        )
    if len(text) > MAX_TICKET_CHARS:
        raise TicketError(
            f"The ticket is {len(text)} characters long, more than a ticket can be ({MAX_TICKET_CHARS}): "
            "copy only the line that starts with 'rdev1.'."
        )
    fields = _decode(text[len(PREFIX):])
    if "v" not in fields:
        raise TicketError("The ticket has no 'v' (version) field: copy the whole ticket line again.")
    if fields["v"] != 1:
        raise TicketError(
            f"The ticket has version {fields.get('v')!r}, but this rdev reads version 1: "
            "run the same rdev version on both sides."
        )
    expected = {f for f in Ticket.__dataclass_fields__}
    missing = sorted(expected - fields.keys() - {"rdev"})
    if missing:
        raise TicketError(f"The ticket has no '{missing[0]}' field: copy the whole ticket line again.")
    unknown = sorted(fields.keys() - expected)
    if unknown:
        raise TicketError(f"The ticket has an unknown field '{unknown[0]}': it was altered or comes from another rdev.")
    return Ticket(
        v=1,
        tunnel=_choice(fields, "tunnel", TUNNELS),
        host=_checked(fields, "host", validate.host),
        port=_checked(fields, "port", validate.port, int),
        user=_checked(fields, "user", validate.user),
        host_keys=_host_keys(fields["host_keys"]),
        workdir=_checked(fields, "workdir", validate.remote_path),
        runtime=_choice(fields, "runtime", RUNTIMES),
        started=_time(fields, "started"),
        expires=None if fields["expires"] is None else _time(fields, "expires"),
        rdev=_version(fields.get("rdev")),
    )


def _version(value: object) -> str | None:
    if value is None or (isinstance(value, str) and _VERSION.fullmatch(value)):
        return value
    raise TicketError("The ticket's 'rdev' (version) field is not a version: copy the whole ticket line again.")


def newest(text: str) -> Ticket:
    """The ticket in `text` whose server started last, for a paste of a whole cell output.

    Each line that starts with 'rdev' (surrounding spaces aside) is a candidate: a tunnel that
    restarted prints a new ticket below the old one, and only the newest one works. A later line
    wins a tie. Without such a line the whole text is parsed, so the user gets parse's sentence;
    if no candidate parses, the first one's error is raised.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("rdev")]
    if not lines:
        return parse(text)
    found: list[Ticket] = []
    first_error: TicketError | None = None
    for line in lines:
        try:
            found.append(parse(line))
        except TicketError as err:
            first_error = first_error or err
    if not found:
        raise first_error  # type: ignore[misc]  # set, since every line failed
    _, _, ticket = max((moment(t.started), index, t) for index, t in enumerate(found))
    return ticket


def _decode(body: str) -> dict:
    # urlsafe_b64decode drops characters outside its alphabet, so a NUL or junk spliced into a
    # ticket would pass unnoticed: check the alphabet first.
    odd = _NOT_BASE64URL.search(body)
    if odd:
        raise TicketError(f"The ticket holds the character {odd.group()!r}, which no ticket has: "
                          "copy the ticket line again, exactly as printed.")
    try:
        text = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8")
        # A ticket's fields nest two deep; how deep json itself would go differs between Pythons.
        if _depth(text) > MAX_DEPTH:
            raise RecursionError
        fields = json.loads(text)
    except (binascii.Error, ValueError):
        raise TicketError("The ticket is damaged or cut short: copy the whole line again.") from None
    except RecursionError:
        raise TicketError("The ticket is damaged (its fields nest far deeper than a ticket's): "
                          "copy the whole line again.") from None
    if not isinstance(fields, dict):
        raise TicketError("The ticket is damaged: it does not hold a set of fields.")
    return fields


def _depth(text: str) -> int:
    """How deep JSON `text` nests its lists and objects (brackets inside strings do not count)."""
    deepest = depth = 0
    quoted = escaped = False
    for char in text:
        if quoted:
            escaped, quoted = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            quoted = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _choice(fields: dict, key: str, allowed: tuple[str, ...]) -> str:
    value = fields[key]
    if value not in allowed:
        raise TicketError(f"The ticket's '{key}' is {value!r}; it must be one of {', '.join(allowed)}.")
    return value


def _checked(fields: dict, key: str, check, kind: type = str):
    value = fields[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TicketError(f"The ticket's '{key}' has the wrong type: it was altered.")
    try:
        return check(value)
    except validate.InvalidValue as err:
        reason = str(err)
        raise TicketError(f"The ticket's '{key}' is refused, because {reason[0].lower()}{reason[1:]}") from None


def _host_keys(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise TicketError("The ticket's 'host_keys' must list at least one host key.")
    return tuple(_host_key(key) for key in value)


def _host_key(line: object) -> str:
    try:
        return pubkeys.parse(line)
    except pubkeys.NotAKey as err:
        raise TicketError(f"The ticket's 'host_keys' holds the host key {line!r}, which {err}.") from None


def moment(value: object) -> datetime | None:
    """The UTC time an ISO-8601 text names, or None if it names none (or not in UTC)."""
    if not isinstance(value, str):
        return None
    # Pythons before 3.11 read a fraction of a second only as 3 or 6 digits, and no "Z".
    text = _FRACTION.sub(lambda found: found.group(1).ljust(7, "0"), value.replace("Z", "+00:00"), count=1)
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        return None
    return found if found.utcoffset() == timedelta(0) else None


def _time(fields: dict, key: str) -> str:
    value = fields[key]
    if moment(value) is None:
        raise TicketError(f"The ticket's '{key}' is not a UTC time in ISO-8601 form.")
    return value

"""Unit tests for bootstrap/ticket.py: the one line that tells the laptop how to reach a runtime.

Every rejection must raise TicketError with one sentence that names the field at fault
(DESIGN.md, "The ticket"), so that a user who pasted a damaged or altered ticket knows what to do.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bootstrap.ticket import MAX_TICKET_CHARS, PREFIX, Ticket, TicketError, newest, parse, utc_timestamp

FIELDS = ("v", "tunnel", "host", "port", "user", "host_keys", "workdir", "runtime", "started", "expires", "rdev")



# ---------------------------------------------------------------------------------------------- helpers


def sentence_count(message: str) -> int:
    """Sentences in `message`: a `.`, `!` or `?` ending the text or followed by space and a capital."""
    return len(re.findall(r"[.!?](?:\s+(?=[A-Z(])|$)", message.strip()))


def public_key(directory: Path, kind: str, bits: int | None = None) -> str:
    """A real OpenSSH public key line (with its comment) made by ssh-keygen."""
    path = directory / f"key_{kind}_{bits or 'default'}"
    command = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "root@runtime", "-f", str(path)]
    if bits:
        command[4:4] = ["-b", str(bits)]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    return Path(f"{path}.pub").read_text().strip()


def bare(line: str) -> str:
    """`type base64` without the comment: the form a parsed ticket carries."""
    kind, blob = line.split()[:2]
    return f"{kind} {blob}"


def fields_of(text: str) -> dict[str, Any]:
    """The JSON object inside a ticket."""
    body = text[len(PREFIX):]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def encode_raw(raw: bytes, prefix: str = PREFIX) -> str:
    """Bytes as a ticket body: unpadded base64url after the prefix."""
    return prefix + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def reencode(fields: Any) -> str:
    return encode_raw(json.dumps(fields).encode())


def tampered(good: str, change: Callable[[dict[str, Any]], None]) -> str:
    """`good` decoded, changed by `change` in place and encoded again."""
    fields = fields_of(good)
    change(fields)
    return reencode(fields)


def setting(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(fields: dict[str, Any]) -> None:
        fields[key] = value
    return change


def rejection(text: str) -> str:
    """The message parse() refuses `text` with."""
    with pytest.raises(TicketError) as caught:
        parse(text)
    message = str(caught.value)
    assert message and "\n" not in message, f"message is not a single line: {message!r}"
    return message


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Real host keys, generated once for the module (full lines, comment included)."""
    directory = tmp_path_factory.mktemp("hostkeys")
    return {
        "ed25519": public_key(directory, "ed25519"),
        "ecdsa": public_key(directory, "ecdsa"),
        "ecdsa384": public_key(directory, "ecdsa", 384),
    }


@pytest.fixture
def ticket(keys: dict[str, str]) -> Ticket:
    return Ticket(
        tunnel="cloudflared",
        host="abc-def.trycloudflare.com",
        port=22,
        user="root",
        host_keys=(bare(keys["ed25519"]), bare(keys["ecdsa"])),
        workdir="/content",
        runtime="colab",
        started="2024-05-01T10:00:00Z",
        expires="2024-05-01T22:00:00Z",
    )


@pytest.fixture
def good(ticket: Ticket) -> str:
    return ticket.encode()


# ------------------------------------------------------------------------------------ accepted tickets


def test_round_trip(ticket: Ticket, good: str) -> None:
    assert parse(good) == ticket


def test_encoded_form_is_one_copyable_line(good: str) -> None:
    """Unpadded base64url after `rdev1.`, so nothing in it breaks when pasted out of a notebook."""
    assert good.startswith("rdev1.")
    assert re.fullmatch(r"rdev1\.[A-Za-z0-9_-]+", good)


def test_encoded_json_carries_exactly_the_design_fields(ticket: Ticket, good: str) -> None:
    fields = fields_of(good)
    assert set(fields) == set(FIELDS)
    assert fields["v"] == 1
    assert fields["host_keys"] == list(ticket.host_keys)


@pytest.mark.parametrize(
    ("tunnel", "host", "port", "runtime", "keynames"),
    [
        ("cloudflared", "abc.trycloudflare.com", 22, "colab", ("ed25519",)),
        ("ngrok", "0.tcp.ngrok.io", 12345, "kaggle", ("ecdsa",)),
        ("direct", "192.168.1.20", 2222, "generic", ("ecdsa384", "ed25519")),
        ("direct", "::1", 65535, "generic", ("ed25519", "ecdsa", "ecdsa384")),
    ],
)
def test_round_trip_variants(keys: dict[str, str], tunnel: str, host: str, port: int, runtime: str,
                             keynames: tuple[str, ...]) -> None:
    original = Ticket(tunnel=tunnel, host=host, port=port, user="jdoe", host_keys=tuple(bare(keys[k]) for k in keynames),
                      workdir="~/my project", runtime=runtime, started="2024-01-01T00:00:00Z", expires=None)
    assert parse(original.encode()) == original


def test_host_key_comment_is_dropped(ticket: Ticket, keys: dict[str, str]) -> None:
    """Keys are reduced to `type base64`; the comment (which may name the runtime) is not kept."""
    text = tampered(ticket.encode(), setting("host_keys", [keys["ed25519"], keys["ecdsa"]]))
    assert keys["ed25519"].endswith("root@runtime")
    assert parse(text).host_keys == (bare(keys["ed25519"]), bare(keys["ecdsa"]))


@pytest.mark.parametrize("around", [(" ", " "), ("\n", "\n"), ("  \t", "\r\n"), ("\n\n", "")])
def test_surrounding_whitespace_is_ignored(ticket: Ticket, good: str, around: tuple[str, str]) -> None:
    assert parse(around[0] + good + around[1]) == ticket


def test_expires_null(ticket: Ticket, good: str) -> None:
    text = tampered(good, setting("expires", None))
    assert parse(text).expires is None
    assert parse(text).started == ticket.started


@pytest.mark.parametrize("when", ["2024-05-01T22:00:00Z", "2024-05-01T22:00:00+00:00"])
def test_expires_time(good: str, when: str) -> None:
    assert parse(tampered(good, setting("expires", when))).expires == when


def test_the_runtimes_version_is_carried_and_may_be_absent(good: str) -> None:
    assert parse(tampered(good, setting("rdev", "0.2.0"))).rdev == "0.2.0"
    assert parse(tampered(good, lambda fields: fields.pop("rdev"))).rdev is None  # from a runtime before 0.2.0


@pytest.mark.parametrize("version", ["", "x1", "0.2.0; rm -rf", "1" * 41, 2, ["0.2.0"]])
def test_a_version_that_is_not_one_is_refused(good: str, version: object) -> None:
    with pytest.raises(TicketError, match="'rdev' \\(version\\) field is not a version"):
        parse(tampered(good, setting("rdev", version)))


def test_utc_timestamp_form() -> None:
    """The form tickets carry: UTC, whole seconds, ending in Z."""
    moment = datetime(2024, 5, 1, 12, 30, 15, 987654, tzinfo=timezone(timedelta(hours=2)))
    assert utc_timestamp(moment) == "2024-05-01T10:30:15Z"


# ------------------------------------------------------------------------------------------ rejections
# Each case: a function from a good ticket (and the real keys) to the text to parse, and the words the
# message must contain to name the field at fault (None where there is no field to name).

TextCase = Callable[[str, dict[str, str]], str]


def _cut_blob(keys: dict[str, str], length: int) -> str:
    kind, blob = bare(keys["ed25519"]).split()
    return f"{kind} {blob[:length]}"


def _relabel(keys: dict[str, str], name: str, label: str) -> str:
    return f"{label} {bare(keys[name]).split()[1]}"


def _standard_alphabet(text: str) -> str:
    """`text` in standard base64's alphabet; five '?' in a row always encode to a group holding '_'."""
    assert "_" in text
    return text.replace("-", "+").replace("_", "/")


def _without(key: str) -> TextCase:
    def make(good: str, keys: dict[str, str]) -> str:
        return tampered(good, lambda fields: fields.pop(key))
    return make


def _with(key: str, value: Any) -> TextCase:
    return lambda good, keys: tampered(good, setting(key, value))


def _with_key(make_key: Callable[[dict[str, str]], Any]) -> TextCase:
    return lambda good, keys: tampered(good, setting("host_keys", [make_key(keys)]))


BAD_HOSTS = ["gpu 1.example.edu", "gpu1#x", "gpu%h", "gpu=1", 'gpu"1', "gpu'1", "gpu1\nProxyCommand sh", "-oProxyCommand"]
BAD_USERS = ["j doe", "root#x", "root%u", "root=x", 'ro"ot', "ro'ot", "root\nProxyCommand sh", "-oProxyCommand"]

# (id, case, words naming the field, passes on from a validate refusal)
REJECTIONS: list[tuple[str, TextCase, str | None, bool]] = [
    ("empty", lambda g, k: "", None, False),
    ("not-rdev", lambda g, k: "hello world", None, False),
    ("ssh-key-pasted", lambda g, k: k["ed25519"], None, False),
    ("body-without-prefix", lambda g, k: g[len(PREFIX):], None, False),
    ("other-version-prefix", lambda g, k: "rdev2." + g[len(PREFIX):], None, False),
    ("base64-garbage", lambda g, k: "rdev1.!!!!####", None, False),
    ("base64-bad-length", lambda g, k: "rdev1.a", None, False),
    ("empty-body", lambda g, k: "rdev1.", None, False),
    ("not-utf8", lambda g, k: encode_raw(b"\xff\xfe\xfd\xfc"), None, False),
    ("not-json", lambda g, k: encode_raw(b"host=gpu1 port=22"), None, False),
    ("cut-in-half", lambda g, k: g[: len(g) // 2], None, False),
    ("cut-last-5", lambda g, k: g[:-5], None, False),
    ("json-list", lambda g, k: reencode([1, 2]), None, False),
    ("json-string", lambda g, k: reencode("rdev"), None, False),
    ("json-number", lambda g, k: reencode(1), None, False),
    ("json-null", lambda g, k: reencode(None), None, False),
    *[(f"host-{i}", _with("host", h), "'host'", True) for i, h in enumerate(BAD_HOSTS)],
    ("host-not-string", _with("host", 12), "'host'", False),
    *[(f"user-{i}", _with("user", u), "'user'", True) for i, u in enumerate(BAD_USERS)],
    ("user-empty", _with("user", ""), "'user'", True),
    ("port-0", _with("port", 0), "'port'", True),
    ("port-70000", _with("port", 70000), "'port'", True),
    ("port-string", _with("port", "22"), "'port'", False),
    ("port-true", _with("port", True), "'port'", False),
    ("port-float", _with("port", 22.0), "'port'", False),
    ("tunnel-ssh", _with("tunnel", "ssh"), "'tunnel'", False),
    ("tunnel-null", _with("tunnel", None), "'tunnel'", False),
    ("runtime-aws", _with("runtime", "aws"), "'runtime'", False),
    ("workdir-relative", _with("workdir", "content"), "'workdir'", True),
    ("workdir-empty", _with("workdir", ""), "'workdir'", True),
    ("workdir-newline", _with("workdir", "/content\nx"), "'workdir'", True),
    ("workdir-not-string", _with("workdir", ["/content"]), "'workdir'", False),
    ("started-not-time", _with("started", "yesterday"), "'started'", False),
    ("started-no-timezone", _with("started", "2024-05-01T10:00:00"), "'started'", False),
    ("started-number", _with("started", 1714557600), "'started'", False),
    ("started-null", _with("started", None), "'started'", False),
    ("expires-not-time", _with("expires", "soon"), "'expires'", False),
    ("expires-no-timezone", _with("expires", "2024-05-01T22:00:00"), "'expires'", False),
    ("unknown-field", _with("comment", "hi"), "'comment'", False),
    *[(f"missing-{f}", _without(f), "version" if f == "v" else f"'{f}'", False) for f in FIELDS if f != "rdev"],
    ("v-2", _with("v", 2), "version", False),
    ("v-string", _with("v", "1"), "version", False),
    ("host-keys-empty", _with("host_keys", []), "'host_keys'", False),
    ("host-keys-string", lambda g, k: tampered(g, setting("host_keys", k["ed25519"])), "'host_keys'", False),
    ("host-keys-null", _with("host_keys", None), "'host_keys'", False),
    ("host-key-not-string", _with_key(lambda k: 5), "'host_keys'", False),
    ("host-key-type-only", _with_key(lambda k: "ssh-ed25519"), "'host_keys'", False),
    ("host-key-unknown-type", _with_key(lambda k: _relabel(k, "ed25519", "ssh-dss")), "'host_keys'", False),
    ("host-key-made-up-type", _with_key(lambda k: _relabel(k, "ed25519", "foo")), "'host_keys'", False),
    ("host-key-ed25519-blob-as-rsa", _with_key(lambda k: _relabel(k, "ed25519", "ssh-rsa")), "host key", False),
    ("host-key-ecdsa-blob-as-ed25519", _with_key(lambda k: _relabel(k, "ecdsa", "ssh-ed25519")), "host key", False),
    ("host-key-ecdsa256-blob-as-384", _with_key(lambda k: _relabel(k, "ecdsa", "ecdsa-sha2-nistp384")), "host key",
     False),
    ("host-key-bad-base64", _with_key(lambda k: "ssh-ed25519 AAAA$$$$not*base64"), "host key", False),
    ("host-key-not-a-key", _with_key(lambda k: "ssh-ed25519 " + base64.b64encode(b"hello world!").decode()),
     "host key", False),
    ("host-key-cut-unpadded", _with_key(lambda k: _cut_blob(k, 34)), "host key", False),
    ("host-key-cut-to-type", _with_key(lambda k: _cut_blob(k, 20)), "host key", False),
    ("workdir-c1-control", _with("workdir", "/content\x85x"), "'workdir'", True),
    ("workdir-line-separator", _with("workdir", "/content\u2028x"), "'workdir'", True),
    ("workdir-lone-surrogate", _with("workdir", "/content\ud800"), "'workdir'", True),
    # The decoder skips characters outside the base64url alphabet (four keep the length's padding right),
    # and reads '+' and '/' as '-' and '_', so each of these decoded to a good ticket.
    ("nul-inside", lambda g, k: g[:20] + "\x00" * 4 + g[20:], "'\\x00'", False),
    ("nul-at-end", lambda g, k: g + "\x00" * 4, "'\\x00'", False),
    ("space-inside", lambda g, k: g[:20] + " " * 4 + g[20:], "' '", False),
    ("junk-inside", lambda g, k: g[:20] + "!!!!" + g[20:], "'!'", False),
    ("standard-alphabet", lambda g, k: _standard_alphabet(tampered(g, setting("workdir", "/?????"))), "character",
     False),
    # Nested past Python's recursion limit (1000), yet short enough to be decoded.
    ("deep-list", lambda g, k: encode_raw(b"[" * 3000 + b"]" * 3000), "nest", False),
    ("deep-object", lambda g, k: encode_raw(b'{"":' * 1050 + b"1" + b"}" * 1050), "nest", False),
    ("too-long", _with("workdir", "/" + "a" * MAX_TICKET_CHARS), "characters", False),
]


@pytest.mark.parametrize(("case", "names"), [pytest.param(c, n, id=i) for i, c, n, _ in REJECTIONS])
def test_rejected_naming_the_field(good: str, keys: dict[str, str], case: TextCase, names: str | None) -> None:
    message = rejection(case(good, keys))
    if names is not None:
        assert names in message


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=i) for i, c, _, _ in REJECTIONS],
)
def test_rejection_is_one_sentence(good: str, keys: dict[str, str], case: TextCase) -> None:
    message = rejection(case(good, keys))
    assert sentence_count(message) == 1, message


@pytest.mark.parametrize(("case", "expected"), [
    (lambda g, k: "hello", "not an rdev ticket"),
    (lambda g, k: "rdev2." + g[len(PREFIX):], "another version"),
    (lambda g, k: g[:-5], "cut short"),
    (lambda g, k: reencode([1]), "does not hold a set of fields"),
], ids=["not-rdev", "other-version", "truncated", "not-object"])
def test_rejection_says_what_is_wrong(good: str, keys: dict[str, str], case: TextCase, expected: str) -> None:
    """Whole-ticket problems have no field to name, so the message must say what kind of damage it is."""
    assert expected in rejection(case(good, keys))


@pytest.mark.parametrize("length", [40, 60])
def test_host_key_cut_short_on_base64_boundary(good: str, keys: dict[str, str], length: int, tmp_path: Path) -> None:
    """A blob truncated to whole base64 quads decodes cleanly but is no longer a key ssh can read."""
    line = _cut_blob(keys, length)
    (tmp_path / "cut.pub").write_text(line + "\n")
    unreadable = subprocess.run(["ssh-keygen", "-l", "-f", str(tmp_path / "cut.pub")], check=False, capture_output=True, timeout=60)
    assert unreadable.returncode != 0, "ssh-keygen reads the cut key, so the test's premise is wrong"
    rejection(tampered(good, setting("host_keys", [line])))


def test_host_scope_id_cannot_smuggle_config_lines(good: str) -> None:
    rejection(tampered(good, setting("host", "fe80::1%x\nProxyCommand sh -c id")))


# ------------------------------------------------------------------------------------------ alphabet, size


def test_padding_is_refused(ticket: Ticket) -> None:
    """Tickets are unpadded base64url; a '=' means something other than rdev wrote or changed the line."""
    padded = []
    for workdir in ("/a", "/ab", "/abc"):  # one JSON length in three needs no padding
        raw = json.dumps(fields_of(replace(ticket, workdir=workdir).encode())).encode()
        padded.append(PREFIX + base64.urlsafe_b64encode(raw).decode("ascii"))
    padded = [text for text in padded if text.endswith("=")]
    assert padded
    for text in padded:
        assert "'='" in rejection(text)


def test_length_bound_fits_large_keys_and_is_exact(ticket: Ticket, tmp_path: Path) -> None:
    """A ticket with large host keys is well inside the bound; a ticket one byte over it is refused."""
    large = tuple(bare(public_key(tmp_path, kind, bits)) for kind, bits in (("rsa", 4096), ("ecdsa", 521)))
    roomy = replace(ticket, host_keys=(*ticket.host_keys, *large))
    assert len(roomy.encode()) < MAX_TICKET_CHARS // 2
    assert parse(roomy.encode()) == roomy
    # Grow the workdir until the ticket is exactly at the bound (some JSON lengths skip a character).
    workdir = "/"
    while len(replace(ticket, workdir=workdir).encode()) < MAX_TICKET_CHARS:
        workdir += "a"
    at_bound = replace(ticket, workdir=workdir)
    if len(at_bound.encode()) > MAX_TICKET_CHARS:
        at_bound = replace(ticket, workdir=workdir[:-1])
    assert len(at_bound.encode()) == MAX_TICKET_CHARS
    assert parse(at_bound.encode()) == at_bound
    over = replace(at_bound, workdir=at_bound.workdir + "a")
    assert str(len(over.encode())) in rejection(over.encode())


# ------------------------------------------------------------------------------------------------ newest


def started_at(ticket: Ticket, hour: int, host: str | None = None) -> Ticket:
    return replace(ticket, started=f"2024-05-01T{hour:02d}:00:00Z", host=host or f"h{hour}.trycloudflare.com")


def test_newest_picks_the_latest_start_whatever_the_order(ticket: Ticket) -> None:
    """A restarted tunnel prints a new ticket; the paste holds old and new ones in the order printed."""
    early, middle, late = (started_at(ticket, hour) for hour in (8, 10, 12))
    output = "\n".join([
        "Starting sshd...",
        middle.encode(),
        "tunnel restarted, new ticket:",
        "   " + late.encode() + "  ",
        "\t" + early.encode(),
        "keep-alive: ok",
    ])
    assert newest(output) == late
    assert newest(output.replace("\n", "\r\n")) == late


def test_newest_later_line_wins_a_tie(ticket: Ticket) -> None:
    first, second = started_at(ticket, 9, "first.example.org"), started_at(ticket, 9, "second.example.org")
    assert newest(f"{first.encode()}\n{second.encode()}\n") == second
    assert newest(f"{second.encode()}\n{first.encode()}\n") == first


def test_newest_compares_times_not_text(ticket: Ticket) -> None:
    """Half a second after 09:00:00Z sorts before it as text ('.' < 'Z'), but it is the later start."""
    earlier = replace(ticket, started="2024-05-01T09:00:00Z", host="earlier.example.org")
    later = replace(ticket, started="2024-05-01T09:00:00.5+00:00", host="later.example.org")
    assert newest(f"{earlier.encode()}\n{later.encode()}") == later


def test_newest_skips_damaged_lines(ticket: Ticket) -> None:
    good = started_at(ticket, 8)
    damaged = started_at(ticket, 23).encode()[:-7]
    assert newest(f"{damaged}\nrdev2.AAAA\n{good.encode()}\n") == good


def test_newest_without_a_ticket_line_gives_parse_sentence() -> None:
    text = "sshd started\nwaiting for the tunnel"
    with pytest.raises(TicketError) as caught:
        newest(text)
    assert str(caught.value) == rejection(text)


def test_newest_raises_the_first_damaged_line_error(good: str) -> None:
    first, second = good[:-7], "rdev2." + good[len(PREFIX):]
    with pytest.raises(TicketError) as caught:
        newest(f"log line\n  {first}\n{second}\n")
    assert str(caught.value) == rejection(first)
    assert str(caught.value) != rejection(second)

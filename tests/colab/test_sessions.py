"""Reading Google's colab CLI's session file as the CLI reads it: which runtime a session names,
whether its token is fresh, and a file the CLI would take for "no sessions" refused. Whether rdev
finds a session is checked against the real CLI's own reader, file by file."""

from __future__ import annotations

import json
import random
import subprocess
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from client_side.colab import sessions
from client_side.errors import RdevError
from client_side.local import paths
from tests.stand_ins.colab_runtime import colab_binary


def entry(name: str = "gpu", **fields: object) -> dict:
    """One session as the CLI writes it (colab_cli.state.SessionState)."""
    return {"name": name, "token": "t", "url": "https://x.prod.colab.dev", "endpoint": "ep-1", "token_expires_at": None,
            "variant": "GPU", "accelerator": "T4", "machine_shape": "STANDARD", "kernel_id": None, "session_id": None,
            "last_execution": None, "running": None, **fields}


def write(data: object) -> None:
    paths.colab_sessions().parent.mkdir(parents=True, exist_ok=True)
    paths.colab_sessions().write_text(data if isinstance(data, str) else json.dumps(data))


def test_a_session_as_the_cli_writes_it(home: Path) -> None:
    soon = datetime.now(timezone.utc) + timedelta(hours=1)
    write({"gpu": entry(token_expires_at=soon.isoformat()), "cpu": entry("cpu", accelerator="NONE")})
    found = sessions.read("gpu")
    assert found == sessions.Session(name="gpu", endpoint="ep-1", expires=soon, accelerator="T4")
    assert found.fresh()
    assert sessions.read("other") is None


@pytest.mark.parametrize(("expires", "fresh"), [
    (None, False), ("2020-01-01T00:00:00", False),
    ((datetime.now(timezone.utc) + timedelta(minutes=3)).isoformat(), False),  # within the margin
    # Without a zone: the CLI loads it, then fails comparing it with its aware clock, so it is no expiry rdev trusts.
    ((datetime.now(timezone.utc) + timedelta(hours=2)).replace(tzinfo=None).isoformat(), False),
    ((datetime.now(timezone.utc) + timedelta(hours=2)).astimezone(timezone(timedelta(hours=-5))).isoformat(), True),
    (int((datetime.now(timezone.utc) + timedelta(hours=2)).timestamp()), True),  # a Unix time: UTC
    ((datetime.now(timezone.utc) + timedelta(hours=2)).isoformat().replace("+00:00", "Z"), True),
])
def test_freshness(home: Path, expires: str | None, fresh: bool) -> None:
    write({"gpu": entry(token_expires_at=expires)})
    assert sessions.read("gpu").fresh() is fresh


@pytest.mark.parametrize("text", ["", "  \n", "{}"])
def test_no_file_or_an_empty_one_means_no_session(home: Path, text: str) -> None:
    assert sessions.read("gpu") is None
    write(text)
    assert sessions.read("gpu") is None


@pytest.mark.parametrize("data", [
    {"gpu": entry(), "old": {"name": "old", "endpoint": "ep0"}},  # another entry the CLI cannot load
    {"gpu": entry(accelerator=None)}, {"gpu": entry(token=5)}, {"gpu": entry(token_expires_at="soon")},
    {"gpu": entry(last_execution="x")}, {"gpu": "x"}, [1, 2], "{not json",
    # Accepted by rdev's former check, refused by the CLI's model (issue 19):
    {"gpu": entry(last_execution=[None, None, None])}, {"gpu": entry(token_expires_at="2026-W49-1")},
    {"gpu": entry(token_expires_at="2026-335")}, {"gpu": entry(token_expires_at="20261201T100000Z")},
    {"gpu": entry(token_expires_at="2026-12-01T10:00:00+05")}, {"gpu": entry(token_expires_at="2026-12-01T24:00:00")},
    {"gpu": entry(token_expires_at=True)}, "null", "[" * 100_000,
])
def test_a_file_the_cli_would_take_for_no_sessions_is_refused(home: Path, data: object) -> None:
    # The CLI would then create a runtime for any session asked for: rdev says so instead.
    write(data)
    with pytest.raises(RdevError) as caught:
        sessions.read("gpu")
    assert "would start a new runtime" in caught.value.problem
    assert "colab sessions" in caught.value.fix and "do not remove" in caught.value.fix


def test_a_file_caught_half_written_is_read_again(home: Path) -> None:
    write('{"gpu": {"endpo')
    threading.Timer(0.15, write, ({"gpu": entry()},)).start()
    assert sessions.read("gpu").endpoint == "ep-1"


# Whole entries at the edges of the CLI's model, beside a session it writes.
_EDGES: list[object] = [
    {"gpu": entry(last_execution=["2026-12-01T10:00:00", None, "ok"])}, {"gpu": entry(last_execution=["a", "b"])},
    {"gpu": entry(last_execution=["a", None, None])}, {"gpu": entry(last_execution=[1, None, "c"])},
    {"gpu": entry(last_execution={"a": 1})}, {"gpu": entry(kernel_id=7)}, {"gpu": entry(running=False)},
    {"gpu": entry(variant=None)}, {"gpu": entry(machine_shape=1.5)}, {"gpu": entry(url=None)}, {"gpu": entry(name=3)},
    {"gpu": {"name": "gpu", "token": "", "url": "", "endpoint": "ep"}}, {"gpu": {"token": "t", "url": "u", "endpoint": "e"}},
    {"gpu": entry(extra={"anything": [1]})}, {"gpu": entry(), "old": entry("old", token=None)},
    {"gpu": entry(), "other": entry("other")}, {"other": entry("other")}, {"gpu": []}, {}, 5, "", " \n", "{}x",
]
# Expiries at the edges of pydantic's datetime: RFC 3339's variants, ISO 8601's other forms, ranges, Unix times
# in seconds and (beyond 2e10) milliseconds up to the years 1 and 9999, as numbers and as text.
_TIMES: list[object] = [
    None, "2026-12-01T10:00:00Z", "2026-12-01t10:00:00z", "2026-12-01 10:00:00", "2026-12-01_10:00", "2026-12-01",
    "2026-12-01T10:00:00.1234567+01:00", "2026-12-01T10:00:00,5Z", "2026-12-01T10:00:00.Z", "2026-12-01T10:00:00\u221205:00",
    "2026-12-01T10:00:00+0530", "2026-12-01T10:00:00+23:59", "2026-12-01T10:00:00+24:00", "2026-12-01T10:00:00+00:60",
    "2026-12-01T23:59:60Z", "2026-02-29T00:00:00Z", "2024-02-29T00:00:00Z", "0000-01-01T00:00:00Z", "0001-01-01",
    "9999-12-31T23:59:59-01:00", "2026-12-01T10", "2026-12-01T", "2026-12-01Z", " 2026-12-01", "2026-12-01\n",
    "\u0662\u0660\u0662\u0666-12-01", "2026-W49", "2026-12", "12/01/2026", "", "soon",
    0, -1, 1.5, 1700000000, 20_000_000_000, 20_000_000_001, -20_000_000_001, 20_000_000_000.5, 253_402_300_799_999,
    253_402_300_800_000, 253_402_300_799_999.6, -62_135_596_800_000, -62_135_596_800_001, -62_135_596_800_000.4,
    10**30, float("nan"), float("inf"), 1e300, False, [], {},
    "1700000000", "+1700000000", "-0", "1700000000.5", "1.7e9", "1.7E+9", "1e9", ".5", "5.", "5.e3", ".", "-", "0x10",
    "1_000", "253402300799999.5", "253402300799999.9994", "-62135596800000.0001", "99999999999999999999", "1.5e400",
]


def mutated_times(count: int) -> list[str]:
    """Each shape of expiry pydantic reads, with a few characters changed, added or dropped (seeded)."""
    rng = random.Random(19)
    shapes = ["2026-12-01T10:00:00.123456Z", "2026-12-01T10:00:00+05:30", "2026-12-01", "1700000000.5",
              "253402300799999.5", "-62135596800000"]
    alphabet = "0123456789-+:.,TtZz _eW\u2212"
    found = []
    for _ in range(count):
        text = list(rng.choice(shapes))
        for _ in range(rng.randint(1, 3)):
            at = min(rng.randrange(len(text) + 1), len(text) - 1)
            change = rng.choice(("insert", "replace", "drop")) if text else "insert"
            if change == "insert":
                text.insert(at + 1, rng.choice(alphabet))
            elif change == "replace":
                text[at] = rng.choice(alphabet)
            else:
                del text[at]
        found.append("".join(text))
    return found


def cli_finds(files: list[Path]) -> list[bool]:
    """Whether Google's real CLI, through its own reader (colab_cli.state.StateStore), finds session gpu in each file."""
    code = ("import json, sys\nfrom colab_cli.state import StateStore\n"
            "print(json.dumps([StateStore(p).get('gpu') is not None for p in json.load(sys.stdin)]))")
    result = subprocess.run([str(colab_binary().parent / "python"), "-c", code], input=json.dumps([str(f) for f in files]),
                            capture_output=True, text=True, check=True, timeout=120)
    return json.loads(result.stdout)


def test_rdev_finds_a_session_in_exactly_the_files_the_cli_finds_it_in(home: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = [*_EDGES, *({"gpu": entry(token_expires_at=t)} for t in [*_TIMES, *mutated_times(1500)])]
    files = []
    for number, data in enumerate(corpus):
        files.append(tmp_path / f"{number}.json")
        files[-1].write_text(data if isinstance(data, str) else json.dumps(data))
    monkeypatch.setattr(sessions, "_READ_ATTEMPTS", 1)  # nothing here is half-written

    def rdev_finds(file: Path) -> bool:
        monkeypatch.setattr(paths, "colab_sessions", lambda: file)
        try:
            return sessions.read("gpu") is not None
        except RdevError:
            return False

    found = cli_finds(files)
    assert [(data, cli) for data, file, cli in zip(corpus, files, found) if rdev_finds(file) != cli] == []
    assert 0.2 < sum(found) / len(found) < 0.8  # the corpus has both sides, not only one

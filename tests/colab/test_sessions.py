"""Reading Google's colab CLI's session file as the CLI reads it: which runtime a session names,
whether its token is fresh, and a file the CLI would take for "no sessions" refused."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from client_side.colab import sessions
from client_side.errors import RdevError
from client_side.local import paths


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
    ((datetime.now(timezone.utc) + timedelta(hours=2)).replace(tzinfo=None).isoformat(), True),  # naive: UTC
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

"""Reading Google's colab CLI's session file: which runtime a session names and whether its token is fresh."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from client_side import colab_sessions, paths
from client_side.errors import RdevError


def write(text: str) -> None:
    paths.colab_sessions().parent.mkdir(parents=True, exist_ok=True)
    paths.colab_sessions().write_text(text)


def test_a_session_as_the_cli_writes_it(home: Path) -> None:
    soon = datetime.now(timezone.utc) + timedelta(hours=1)
    write(json.dumps({"gpu": {"name": "gpu", "token": "t", "url": "https://x", "endpoint": "ep-1",
                              "token_expires_at": soon.isoformat(), "accelerator": "T4"}}))
    found = colab_sessions.read("gpu")
    assert found == colab_sessions.Session(name="gpu", endpoint="ep-1", expires=soon, accelerator="T4")
    assert found.fresh()
    assert colab_sessions.read("other") is None


@pytest.mark.parametrize(("expires", "fresh"), [
    (None, False), ("garbage", False), ("2020-01-01T00:00:00", False),
    ((datetime.now(timezone.utc) + timedelta(minutes=3)).isoformat(), False),  # within the margin
    ((datetime.now(timezone.utc) + timedelta(hours=2)).replace(tzinfo=None).isoformat(), True),  # naive: UTC
])
def test_freshness(home: Path, expires: str | None, fresh: bool) -> None:
    write(json.dumps({"gpu": {"endpoint": "ep-1", "token_expires_at": expires}}))
    assert colab_sessions.read("gpu").fresh() is fresh


def test_no_file_means_no_session(home: Path) -> None:
    assert colab_sessions.read("gpu") is None


@pytest.mark.parametrize("text", ['{"gpu": {"token": "t"}}', '{"gpu": "x"}', "[1, 2]"])
def test_entries_not_laid_out_as_the_cli_writes_them_are_no_session(home: Path, text: str) -> None:
    write(text)
    assert colab_sessions.read("gpu") is None


def test_a_file_caught_half_written_is_read_again(home: Path) -> None:
    write('{"gpu": {"endpo')
    whole = json.dumps({"gpu": {"endpoint": "ep-1"}})
    threading.Timer(0.15, write, (whole,)).start()
    assert colab_sessions.read("gpu").endpoint == "ep-1"


def test_a_damaged_file_is_one_sentence(home: Path) -> None:
    write("{not json")
    with pytest.raises(RdevError) as caught:
        colab_sessions.read("gpu")
    assert "colab sessions" in caught.value.fix

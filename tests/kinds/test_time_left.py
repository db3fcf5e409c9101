"""client_side/kinds/time_left.py, and `rdev list`'s column: the time a host has left, said as sure as it is, and
nothing where it is not known."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest

from client_side.commands import list_hosts
from client_side.kinds import time_left
from client_side.local import presets, registry
from client_side.local.registry import HostEntry

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
LATER = "2030-01-01T15:05:00Z"
BASE = HostEntry(name="h", host="127.0.0.1", port=22, user="me")


@pytest.mark.parametrize(("seconds", "said"), [(0, "0 min"), (59, "0 min"), (720, "12 min"), (11100, "3 h 5 min"),
                                                (86400, "24 h 0 min")])
def test_durations(seconds: int, said: str) -> None:
    assert time_left.duration(seconds) == said


@pytest.mark.parametrize(("entry", "said"), [
    (replace(BASE, slurm="", slurm_job="7", expires=LATER), "3 h 5 min left"),  # the scheduler's limit: exact
    (replace(BASE, runtime="colab", expires=LATER), "up to 3 h 5 min left"),  # Colab's longest
    (replace(BASE, runtime="kaggle", expires=LATER), "up to 3 h 5 min left"),
    (replace(BASE, login=True, preset="clusteria", expires=LATER), "about 3 h 5 min left"),  # counted by the laptop
    (replace(BASE, runtime="colab", colab_session="s", expires=None), None),  # the CLI knows neither start nor plan
    (replace(BASE, login=True, preset="school"), None),
    (replace(BASE, slurm="", slurm_job="7", expires="2030-01-01T11:00:00Z"), "ended"),
    (replace(BASE, login=True, preset="clusteria", expires="2030-01-01T11:00:00Z"), "probably ended"),
])
def test_time_left_says_how_sure_it_is(entry: HostEntry, said: str | None) -> None:
    assert time_left.left(entry, NOW) == said


def test_connect_says_the_time_left_and_where_it_comes_from() -> None:
    entry = replace(BASE, login=True, preset="clusteria", expires=LATER)
    assert time_left.sentence(entry, NOW) == ("h: about 3 h 5 min left (until 2030-01-01T15:05:00Z: the clusteria "
                                              "preset's lifetime, counted from this reservation's first connect).")
    assert time_left.sentence(BASE, NOW) is None


def test_a_reservation_lives_its_presets_hours_from_its_first_connect() -> None:
    assert presets.get("clusteria").lifetime_hours == 8
    assert time_left.reservation(8, NOW) == ("2030-01-01T12:00:00Z", "2030-01-01T20:00:00Z")


def test_list_shows_the_end_and_the_time_left(monkeypatch: pytest.MonkeyPatch) -> None:
    hosts = {"a": replace(BASE, name="a", runtime="colab", expires="2999-01-01T00:00:00Z"),
             "b": replace(BASE, name="b", login=True, preset="school")}
    monkeypatch.setattr(registry, "load", lambda: hosts)
    rows = list_hosts.listing(as_json=False).splitlines()
    assert rows[0].split()[-1] == "EXPIRES"
    assert "2999-01-01T00:00:00Z (up to " in rows[1] and rows[1].endswith("min left)")
    assert rows[2].endswith(" -")


def test_a_presets_lifetime_is_checked() -> None:
    from client_side.errors import RdevError

    for bad in ("lifetime_hours = -1", "lifetime_hours = 'eight'", "lifetime_hours = true", "before_end = 3"):
        with pytest.raises(RdevError, match="cannot be used"):
            presets._parse(f"[lab]\n{bad}\n", "test")
    assert presets._parse("[lab]\nlifetime_hours = 2.5\n", "test")["lab"].lifetime_hours == 2.5

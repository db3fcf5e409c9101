"""How long a host has left, as `rdev list` and `rdev connect` say it, and nothing where that is not known.

A host's `expires` comes from its kind: a Slurm job's time limit (exact, from squeue), a notebook runtime's ticket
(Colab's or Kaggle's longest: the runtime may end sooner, and on Colab a paid plan may run longer), or a lab
container's lifetime from its preset, counted from the first connect of the reservation (the laptop cannot see the
reservation itself: about). A Colab runtime reached through Google's CLI has none: neither its start nor the plan is
in the CLI's session file.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bootstrap import ticket as tickets
from client_side.local.registry import HostEntry


def duration(seconds: int) -> str:
    """A time left as `rdev connect` and `rdev list` say it: "3 h 5 min", "12 min"."""
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _bound(entry: HostEntry) -> str:
    """How sure the end is: "" (a scheduler's limit), "up to " (a platform's longest), "about " (an estimate)."""
    if entry.slurm_job:
        return ""
    if entry.login:
        return "about "
    return "up to " if entry.runtime in ("colab", "kaggle") else ""


def left(entry: HostEntry, now: datetime | None = None) -> str | None:
    """"3 h 5 min left", "up to 11 h 20 min left", "about 7 h left", "ended"; None when the end is not known."""
    ends = tickets.moment(entry.expires)
    if ends is None:
        return None
    seconds = int((ends - (now or datetime.now(timezone.utc))).total_seconds())
    bound = _bound(entry)
    if seconds <= 0:
        return "probably ended" if bound == "about " else "ended"
    return f"{bound}{duration(seconds)} left"


def why(entry: HostEntry) -> str:
    """Where the end comes from, in a few words."""
    if entry.slurm_job:
        return "the job's time limit"
    if entry.login:
        return f"the {entry.preset} preset's lifetime, counted from this reservation's first connect"
    if entry.runtime == "colab":
        return "Colab's longest for a runtime used free of charge; a paid plan may run longer, idleness ends it sooner"
    if entry.runtime == "kaggle":
        return "Kaggle's longest session"
    return "the runtime's own end"


def sentence(entry: HostEntry, now: datetime | None = None) -> str | None:
    """What `rdev connect` says of the end, or None when it is not known."""
    shown = left(entry, now)
    return f"{entry.name}: {shown} (until {entry.expires}: {why(entry)})." if shown else None


def reservation(hours: float, now: datetime | None = None) -> tuple[str, str]:
    """(started, expires) of a reservation whose first connect is now, for a preset's lifetime of `hours`."""
    start = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    return tickets.utc_timestamp(start), tickets.utc_timestamp(start + timedelta(hours=hours))

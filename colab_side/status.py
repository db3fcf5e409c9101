"""The keep-alive status: one line on tunnel, endpoint, sessions, GPU and time, shown in place in
a notebook and as log lines in a terminal."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from colab_side.environment import without_secrets

TYPE_CHECKING = False  # as typing's, without importing typing on every start; type checkers take it as True
if TYPE_CHECKING:
    from typing import Any


TERMINAL_EVERY = timedelta(minutes=5)


@dataclass(frozen=True)
class View:
    """What the status line shows about a server, as plain values (the server makes one per round)."""

    tunnel: str
    where: str
    sessions: int
    started: datetime
    expires: datetime | None


def gpu_summary() -> str:
    """`nvidia-smi`'s view of the GPUs in a few words, or 'no GPU'."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return "no GPU"
    try:
        out = subprocess.run([smi, "--query-gpu=name,utilization.gpu,memory.used,memory.total",
                              "--format=csv,noheader,nounits"], check=False, capture_output=True, text=True, timeout=10,
                             env=without_secrets(dict(os.environ))).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "GPU not answering"
    rows = [[cell.strip() for cell in line.split(",")] for line in out.strip().splitlines() if line.count(",") == 3]
    return "; ".join(f"{name} {util}% {used}/{total} MiB" for name, util, used, total in rows) or "no GPU"


def _span(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    return f"{minutes // 60}h{minutes % 60:02d}m"


def line(view: View, gpus: str | None = None, now: datetime | None = None) -> str:
    """The status line; `gpus` and `now` default to asking nvidia-smi and the clock."""
    now = now or datetime.now(timezone.utc)
    left = f", about {_span(view.expires - now)} left" if view.expires else ""
    return (f"rdev: {view.tunnel} {view.where} | {view.sessions} SSH session(s) | {gpus or gpu_summary()} | "
            f"up {_span(now - view.started)}{left}")


class Display:
    """Where the status goes: an updating IPython display in a notebook, else log lines now and then."""

    def __init__(self, out: Callable[[str], None]) -> None:
        self.out = out
        self.handle = _notebook_display()
        self.last_shown: tuple[str, datetime] | None = None

    def show(self, text: str, changed_part: str) -> None:
        if self.handle is not None:
            self.handle.update(text)
            return
        now = datetime.now(timezone.utc)
        if self.last_shown is None or self.last_shown[0] != changed_part or now - self.last_shown[1] >= TERMINAL_EVERY:
            self.out(text)
            self.last_shown = (changed_part, now)


def _notebook_display() -> Any | None:
    """IPython's updating display handle in a notebook kernel, else None."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return None
    return display("rdev: starting", display_id=True)

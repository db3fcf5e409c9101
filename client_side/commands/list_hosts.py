"""`rdev list`: the hosts rdev knows."""

from __future__ import annotations

import json
from dataclasses import asdict

from client_side.kinds import time_left
from client_side.local import registry
from client_side.local.registry import HostEntry


def listing(as_json: bool) -> str:
    entries = registry.load()
    if as_json:
        return json.dumps([asdict(e) for e in entries.values()], indent=2)
    if not entries:
        return "No hosts yet: 'rdev connect NAME --ticket ...' adds one."
    rows = [("NAME", "ADDRESS", "USER", "TUNNEL", "FOLDER", "EXPIRES")]
    rows += [(e.name, f"{e.host}:{e.port}", e.user, _route(e), e.workdir, _ends(e)) for e in entries.values()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def _route(entry: HostEntry) -> str:
    if entry.slurm_job:
        return f"slurm job {entry.slurm_job} on {entry.slurm_node}"
    if entry.jump:
        return f"via {entry.jump}" + (" (bridge)" if entry.bridge else "")
    return entry.tunnel


def _ends(entry: HostEntry) -> str:
    """When the host's runtime ends and how long it has left, where that is known."""
    shown = time_left.left(entry)
    return f"{entry.expires} ({shown})" if shown else "-"

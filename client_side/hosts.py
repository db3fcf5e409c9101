"""`rdev list`: the hosts rdev knows."""

from __future__ import annotations

import json
from dataclasses import asdict

from client_side import registry


def listing(as_json: bool) -> str:
    entries = registry.load()
    if as_json:
        return json.dumps([asdict(e) for e in entries.values()], indent=2)
    if not entries:
        return "No hosts yet: 'rdev connect NAME --ticket ...' adds one."
    rows = [("NAME", "ADDRESS", "USER", "TUNNEL", "FOLDER", "EXPIRES")]
    rows += [(e.name, f"{e.host}:{e.port}", e.user, f"slurm job {e.slurm_job}" if e.slurm_job else e.tunnel, e.workdir,
              e.expires or "-") for e in entries.values()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)

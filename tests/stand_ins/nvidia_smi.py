"""A stand-in for `nvidia-smi`, for machines without an NVIDIA GPU.

It answers the CSV queries rdev makes the way the real tool does:
`--query-gpu=FIELDS` and `--query-compute-apps=FIELDS` with `--format=csv[,noheader][,nounits]`
print one line per GPU or process, the requested fields in order joined by ", ", values as they
are (a name with a comma is not quoted; `[N/A]` stays `[N/A]`), and nothing at all when no
compute process runs. An unknown field prints `Field "x" is not a valid field to query.` on
stdout and exits 2, as the real one does.

The machine it describes comes from a JSON file (`--rdev-data PATH`, put first by the wrapper
`install` writes):

    {"delay": 1.0,                      # optional: seconds to sleep first (a slow driver)
     "error": "NVIDIA-SMI has failed ...", "exit": 9,   # optional: fail like a broken driver
     "gpus": [{"index": 0, "uuid": "GPU-...", "name": "NVIDIA A100-SXM4-80GB",
               "memory.used": 40536, "memory.total": 81920, "utilization.gpu": 97}],
     "processes": [{"gpu_uuid": "GPU-...", "pid": 4242, "used_memory": 40500,
                    "process_name": "/usr/bin/python3"}]}
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
# Each query's valid names (the real tool's aliases included) -> the key in the JSON data.
GPU_FIELDS = {"index": "index", "uuid": "uuid", "gpu_uuid": "uuid", "name": "name", "gpu_name": "name",
              "memory.used": "memory.used", "memory.total": "memory.total", "utilization.gpu": "utilization.gpu"}
APP_FIELDS = {"gpu_uuid": "gpu_uuid", "pid": "pid", "process_name": "process_name", "name": "process_name",
              "used_memory": "used_memory", "used_gpu_memory": "used_memory"}
# What the real tool appends to a header cell, and to a value when `nounits` is not given.
UNITS = {"memory.used": "MiB", "memory.total": "MiB", "utilization.gpu": "%", "used_memory": "MiB"}


def install(bin_dir: Path, data: dict) -> Path:
    """Write `data` beside `bin_dir` and an executable `bin_dir/nvidia-smi` that answers from it.

    A PATH starting with `bin_dir` then finds this stand-in as `nvidia-smi`, as a shell on a GPU
    machine finds the real one.
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    data_file = bin_dir.parent / f"{bin_dir.name}-nvidia-smi.json"
    data_file.write_text(json.dumps(data))
    wrapper = bin_dir / "nvidia-smi"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{HERE}" --rdev-data "{data_file}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def cell(row: dict, key: str, with_unit: bool) -> str:
    """One value as nvidia-smi prints it: as is, with its unit unless `nounits` (never after `[N/A]`)."""
    value = str(row.get(key, "[N/A]"))
    unit = UNITS.get(key)
    return f"{value} {unit}" if with_unit and unit and not value.startswith("[") else value


def query(rows: list[dict], fields: list[str], valid: dict[str, str], form: set[str]) -> int:
    """Print `rows` as CSV with `fields`; 2 (and the real message) for a field it does not know."""
    for name in fields:
        if name not in valid:
            print(f'Field "{name}" is not a valid field to query.\n')
            return 2
    if "csv" not in form:
        print(f'"{",".join(sorted(form))}" is not a valid format.\n')
        return 2
    units = "nounits" not in form
    if "noheader" not in form:
        print(", ".join(f"{n} [{UNITS[valid[n]]}]" if valid[n] in UNITS else n for n in fields))
    for row in rows:
        print(", ".join(cell(row, valid[n], units) for n in fields))
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nvidia-smi", add_help=False)
    parser.add_argument("--rdev-data", required=True)
    parser.add_argument("--query-gpu")
    parser.add_argument("--query-compute-apps")
    parser.add_argument("--format", default="")
    args = parser.parse_args(argv)
    data = json.loads(Path(args.rdev_data).read_text())
    time.sleep(float(data.get("delay", 0)))
    if data.get("error"):
        print(data["error"])
        return int(data.get("exit", 9))
    form = {part.strip() for part in args.format.split(",") if part.strip()}
    if args.query_gpu:
        return query(data.get("gpus", []), args.query_gpu.split(","), GPU_FIELDS, form)
    if args.query_compute_apps:
        return query(data.get("processes", []), args.query_compute_apps.split(","), APP_FIELDS, form)
    print("This stand-in answers --query-gpu and --query-compute-apps only.")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

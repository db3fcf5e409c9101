"""`rdev gpus [NAME...]`: which GPUs on each host look free, asked of all hosts at the same time.

Each host is asked through the real `ssh` and the written config (keys, jump hosts, tunnels and
shared connections all apply), so the whole report takes about as long as the slowest host, and
never longer than its time limit: a host that has not answered by then is named, not waited for.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from client_side import inputs
from client_side.local import registry
from client_side.ssh import probe

# The whole report waits this long at most: one silent host must not hold up the table.
REPORT_TIMEOUT = 8.0
NO_ANSWER = "no-answer"
NO_SMI = 127
# One round trip: the GPUs, a separator, then the processes on them.
QUERY = ("command -v nvidia-smi >/dev/null 2>&1 || exit 127; "
         "nvidia-smi --query-gpu=index,uuid,memory.used,memory.total,utilization.gpu,name --format=csv,noheader,nounits"
         " && echo -- && "
         "nvidia-smi --query-compute-apps=gpu_uuid,pid,used_memory,process_name --format=csv,noheader,nounits")
# A GPU with almost no memory taken, little load and no process of its own is taken to be free.
FREE_MEMORY_SHARE = 0.05
FREE_UTILISATION = 10


@dataclass
class Process:
    pid: int
    name: str
    memory_mib: int | None


@dataclass
class Gpu:
    index: int
    name: str
    memory_used_mib: int | None
    memory_total_mib: int | None
    utilisation: int | None
    processes: list[Process] = field(default_factory=list)
    free: bool = False


@dataclass
class HostGpus:
    host: str
    status: str  # ok | no-nvidia-smi | unreachable | no-answer | error
    message: str = ""
    gpus: list[Gpu] = field(default_factory=list)

    @property
    def cuda_visible_devices(self) -> str:
        return ",".join(str(gpu.index) for gpu in self.gpus if gpu.free)


def report(names: list[str], as_json: bool, timeout: float = REPORT_TIMEOUT) -> str:
    """The GPUs of the hosts `names` (all hosts if none), as a table or JSON, within `timeout` seconds."""
    entries = registry.load()
    chosen = list(dict.fromkeys(inputs.name(n) for n in names)) or sorted(entries)
    unknown = [n for n in chosen if n not in entries]
    if unknown:
        raise registry.unknown_host(unknown[0])
    if not chosen:
        return "[]" if as_json else "No hosts yet: 'rdev add NAME --host H' or 'rdev connect NAME' adds one."
    deadline = time.monotonic() + timeout
    # One thread per host, so that every host gets the whole time, not what a queue leaves it.
    with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
        results = list(pool.map(lambda name: ask(name, deadline=deadline, timeout=timeout), chosen))
    if as_json:
        return json.dumps([{**asdict(r), "cuda_visible_devices": r.cuda_visible_devices} for r in results], indent=2)
    return render(results)


def ask(name: str, deadline: float, timeout: float) -> HostGpus:
    """Ask `name` for its GPUs; stop its ssh at `deadline` (`timeout` s after the report began)."""
    # Through sh: the login shell may be csh, which reads `2>&1` and `command -v` otherwise.
    argv = probe.ssh_argv(name, "-o", "BatchMode=yes", "-o", "ConnectTimeout=10") + [f"sh -c {shlex.quote(QUERY)}"]
    # A session of its own: at the deadline its whole group goes, a ProxyCommand or a jump's ssh included.
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _stop(process)
            return HostGpus(name, NO_ANSWER, f"no answer within {timeout:g} s: 'ssh -v {name}' shows where it waits")
    if process.returncode == 255:
        return HostGpus(name, "unreachable", probe.explain(name, stderr))
    if process.returncode == NO_SMI:
        return HostGpus(name, "no-nvidia-smi", "no nvidia-smi there (no NVIDIA GPU or driver)")
    if process.returncode != 0:
        # nvidia-smi prints its own errors ("No devices were found", driver mismatch) on stdout.
        said = (stdout.strip() or stderr.strip()).splitlines()
        return HostGpus(name, "error", f"nvidia-smi failed: {said[-1] if said else f'exit status {process.returncode}'}")
    return HostGpus(name, "ok", gpus=parse(stdout))


def _stop(process: subprocess.Popen) -> None:
    """Kill `process` and its process group (Windows has no groups: the process alone)."""
    if not hasattr(os, "killpg"):
        process.kill()
        return
    with contextlib.suppress(ProcessLookupError):  # all of them ended meanwhile
        os.killpg(process.pid, signal.SIGKILL)


def parse(output: str) -> list[Gpu]:
    """nvidia-smi's CSV (GPUs, `--`, processes) into GPUs with their processes and a free verdict."""
    gpu_part, _, process_part = output.partition("\n--\n")
    by_uuid: dict[str, Gpu] = {}
    for index, uuid, used, total, util, name in _rows(gpu_part, 6):
        if index.isdigit():
            by_uuid[uuid] = Gpu(int(index), name, _number(used), _number(total), _number(util))
    for uuid, pid, memory, process in _rows(process_part, 4):
        if uuid in by_uuid and pid.isdigit():
            by_uuid[uuid].processes.append(Process(int(pid), process, _number(memory)))
    gpus = sorted(by_uuid.values(), key=lambda g: g.index)
    for gpu in gpus:
        gpu.free = _looks_free(gpu)
    return gpus


def _looks_free(gpu: Gpu) -> bool:
    if gpu.processes or gpu.memory_used_mib is None or not gpu.memory_total_mib:
        return False
    quiet = gpu.utilisation is None or gpu.utilisation < FREE_UTILISATION
    return quiet and gpu.memory_used_mib / gpu.memory_total_mib < FREE_MEMORY_SHARE


def _rows(text: str, width: int) -> list[list[str]]:
    """CSV rows of `width` cells; names come last in both queries, so a comma inside one stays in it."""
    rows = [[cell.strip() for cell in line.split(",", width - 1)] for line in text.strip().splitlines()]
    return [row for row in rows if len(row) == width]


def _number(text: str) -> int | None:
    try:
        return int(float(text))
    except ValueError:
        return None  # [N/A], [Not Supported]


def render(results: list[HostGpus]) -> str:
    rows = [("HOST", "GPU", "NAME", "MEMORY MiB", "UTIL", "PROCESSES", "FREE")]
    notes = []
    for result in results:
        if result.status != "ok":
            rows.append((result.host, "-", result.status, "", "", "", ""))
            notes.append(f"{result.host}: {result.message}")
            continue
        if not result.gpus:
            rows.append((result.host, "-", "nvidia-smi lists no GPU", "", "", "", ""))
        for gpu in result.gpus:
            memory = f"{_shown(gpu.memory_used_mib)}/{_shown(gpu.memory_total_mib)}"
            processes = ", ".join(f"{p.name} ({_shown(p.memory_mib)} MiB)" for p in gpu.processes) or "-"
            rows.append((result.host, str(gpu.index), gpu.name, memory, f"{_shown(gpu.utilisation)}%", processes,
                         "yes" if gpu.free else "no"))
        if result.gpus:
            free = result.cuda_visible_devices
            # nvidia-smi counts GPUs in PCI bus order, CUDA fastest first unless told otherwise.
            notes.append(f"{result.host}: CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES={free}" if free
                         else f"{result.host}: no GPU looks free")
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    table = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(table + ([""] + notes if notes else []))


def _shown(value: int | None) -> str:
    return "?" if value is None else str(value)

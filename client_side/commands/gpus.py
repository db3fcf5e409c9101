"""`rdev gpus [NAME...]`: which GPUs on each host look free, asked of all hosts at the same time.

Each host is asked through the real `ssh` and the written config (keys, jump hosts, tunnels and
shared connections all apply), and its lines are printed the moment it answers, so a silent host
holds up no other. A host that does not answer gets CONNECT_TIMEOUT seconds; one that answered but
is slow to finish (login scripts, a hung driver) gets the whole report's time limit; then each is
named in one line.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, as_completed
from dataclasses import asdict, dataclass, field

from client_side import inputs
from client_side.errors import RdevError, printable
from client_side.local import registry
from client_side.ssh import probe

# The whole report waits this long at most: a host that connected but hangs (a login script, a stuck
# driver, a shared connection whose network is gone) must not hold the last line back for long.
REPORT_TIMEOUT = 8.0
# A host that has not even greeted ssh by then is down or cut off; ssh's own ConnectTimeout gives up on it
# (TCP and the SSH greeting, through any ProxyCommand), while a slow .bashrc on a live host is not counted.
CONNECT_TIMEOUT = 3
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
# The table's columns after HOST, with fixed widths: lines are printed before the longest value is known.
# A longer value pushes only the rest of its own line; the free-length one comes last.
COLUMNS = (("GPU", 3), ("FREE", 4), ("MEMORY MiB", 13), ("UTIL", 4), ("NAME", 23), ("PROCESSES", 0))


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
    status: str  # ok | no-nvidia-smi | error (the host answered) | unreachable | no-answer
    message: str = ""
    gpus: list[Gpu] = field(default_factory=list)

    @property
    def cuda_visible_devices(self) -> str:
        return ",".join(str(gpu.index) for gpu in self.gpus if gpu.free)

    @property
    def answered(self) -> bool:
        """The host ran the query, whatever nvidia-smi said."""
        return self.status in ("ok", "no-nvidia-smi", "error")


def report(names: list[str], as_json: bool, timeout: float = REPORT_TIMEOUT,
           say: Callable[[str], None] | None = None) -> str:
    """The GPUs of the hosts `names` (all hosts if none), within `timeout` seconds.

    As a table, the header and each host's lines go to `say` (stdout by default) as the host answers,
    and the closing count is returned. As JSON, one document listing the hosts as asked is returned
    once all are in: a document cut into pieces is no JSON. RdevError (exit 1) when no host answered.
    """
    say = say or _print_now
    chosen = _chosen(names)
    if not chosen:
        return "[]" if as_json else "No hosts yet: 'rdev add NAME --host H' or 'rdev connect NAME' adds one."
    host_width = max(len(name) for name in ["HOST", *chosen])
    if not as_json:
        say(header(host_width))
    results = []
    with contextlib.closing(answers(chosen, timeout)) as arriving:
        for result in arriving:
            results.append(result)
            if not as_json:
                say("\n".join(host_lines(result, host_width)))  # one write per host: never cut by another
    closing = _as_json(sorted(results, key=lambda r: chosen.index(r.host))) if as_json else f"\n{tally(results)}"
    if any(result.answered for result in results):
        return closing
    if as_json:
        say(closing)  # a script still reads each host's status
    raise RdevError(f"No host answered ({', '.join(r.host for r in results)})",
                    "check your network, VPN or tailnet and that the servers run; each host's line says more.")


def _print_now(text: str) -> None:
    # Flushed: stdout into a pipe is block-buffered, and a line held back is a line that did not arrive.
    print(text, flush=True)


def _chosen(names: list[str]) -> list[str]:
    """The hosts to ask: `names` without repeats (BadInput for one rdev does not know), or all, sorted."""
    entries = registry.load()
    chosen = list(dict.fromkeys(inputs.name(n) for n in names)) or sorted(entries)
    unknown = [n for n in chosen if n not in entries]
    if unknown:
        raise registry.unknown_host(unknown[0])
    return chosen


def _as_json(results: list[HostGpus]) -> str:
    return json.dumps([{**asdict(r), "cuda_visible_devices": r.cuda_visible_devices} for r in results], indent=2)


def answers(names: list[str], timeout: float) -> Generator[HostGpus, None, None]:
    """Each host's answer in the order they arrive, all within `timeout` seconds.

    Every ssh is started here, so that leaving early (Ctrl-C, a closed pipe) ends the ones still
    running at once instead of at their deadline; a thread per host waits for each.
    """
    deadline = time.monotonic() + timeout
    connect_timeout = max(1, math.ceil(min(CONNECT_TIMEOUT, timeout)))  # ssh takes whole seconds
    started: list[subprocess.Popen] = []
    waiting: list[Future[HostGpus]] = []
    try:
        for name in names:
            started.append(_start_query(name, connect_timeout))
            waiting.append(_in_background(_answer, name, started[-1], deadline, timeout, connect_timeout))
        for done in as_completed(waiting):
            yield done.result()
    finally:
        # Left early (Ctrl-C, a closed pipe): what still runs ends now, and is seen gone, not left to its deadline.
        for process in started:
            _stop(process)
        for process in started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1)


def _in_background(work: Callable[..., HostGpus], *args: object) -> Future[HostGpus]:
    """`work(*args)` in a daemon thread, its result (or error) in the Future.

    A daemon, so that a report left early does not wait for it: a shared connection (ControlMaster) holds
    copies of its client's pipes, so ending that ssh need not end the thread's read before the deadline.
    """
    future: Future[HostGpus] = Future()

    def run() -> None:
        try:
            future.set_result(work(*args))
        except Exception as err:  # noqa: BLE001 - raised again where the result is read
            future.set_exception(err)

    threading.Thread(target=run, daemon=True).start()
    return future


def _start_query(name: str, connect_timeout: int) -> subprocess.Popen:
    """ssh to `name` running QUERY, in a session of its own: at the deadline its whole group goes, a
    ProxyCommand or a jump's ssh included."""
    argv = probe.ssh_argv(name, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={connect_timeout}")
    # Through sh: the login shell may be csh, which reads `2>&1` and `command -v` otherwise.
    # errors="replace": a byte that is no UTF-8 (a login script's banner, a GPU's name) must not end the report.
    return subprocess.Popen([*argv, f"sh -c {shlex.quote(QUERY)}"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, encoding="utf-8", errors="replace", start_new_session=True)


def _answer(name: str, process: subprocess.Popen, deadline: float, timeout: float, connect_timeout: int) -> HostGpus:
    """What `name`'s ssh `process` brought back by `deadline` (`timeout` s after the report began)."""
    with process:
        try:
            stdout, stderr = process.communicate(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _stop(process)
            return HostGpus(name, NO_ANSWER, _no_answer(name, timeout))
    if process.returncode == 255:
        if "timed out" in stderr:  # ConnectTimeout: no TCP answer, or no SSH greeting, in time
            return HostGpus(name, NO_ANSWER, _no_answer(name, connect_timeout))
        return HostGpus(name, "unreachable", probe.explain(name, stderr))
    if process.returncode == NO_SMI:
        return HostGpus(name, "no-nvidia-smi", "no nvidia-smi there (no NVIDIA GPU or driver)")
    if process.returncode != 0:
        # nvidia-smi prints its own errors ("No devices were found", driver mismatch) on stdout.
        said = (stdout.strip() or stderr.strip()).splitlines()
        return HostGpus(name, "error", f"nvidia-smi failed: {said[-1] if said else f'exit status {process.returncode}'}")
    return HostGpus(name, "ok", gpus=parse(stdout))


def _no_answer(name: str, seconds: float) -> str:
    return f"no answer within {seconds:g} s: 'ssh -v {name}' shows where it waits"


def _stop(process: subprocess.Popen) -> None:
    """Kill `process` and its process group (Windows has no groups: the process alone)."""
    if process.returncode is not None:
        return  # already reaped: its number may be another process's by now
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


def header(host_width: int) -> str:
    """The table's first line, HOST `host_width` wide (the longest name asked)."""
    return _line("HOST", host_width, [title for title, _ in COLUMNS])


def host_lines(result: HostGpus, host_width: int) -> list[str]:
    """One host's lines: a row per GPU, then the CUDA_VISIBLE_DEVICES to use; or one line saying why not."""
    if result.status != "ok":
        return [_line(result.host, host_width, ["-", result.message])]
    lines = []
    for gpu in result.gpus:
        memory = f"{_shown(gpu.memory_used_mib)}/{_shown(gpu.memory_total_mib)}"
        processes = ", ".join(f"{p.name} ({_shown(p.memory_mib)} MiB)" for p in gpu.processes) or "-"
        lines.append(_line(result.host, host_width, [str(gpu.index), "yes" if gpu.free else "no", memory,
                                                     f"{_shown(gpu.utilisation)}%", gpu.name, processes]))
    free = result.cuda_visible_devices
    # nvidia-smi counts GPUs in PCI bus order, CUDA fastest first unless told otherwise.
    verdict = (f"CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES={free}" if free
               else "no GPU looks free" if result.gpus else "nvidia-smi lists no GPU")
    return [*lines, _line(result.host, host_width, ["-", verdict])]


def _line(host: str, host_width: int, cells: Sequence[str]) -> str:
    """`host` and `cells` in the table's columns, the last cell as long as it is; what a host sent is made
    printable (it reaches the terminal)."""
    widths = [host_width, *(width for _, width in COLUMNS)]
    padded = [cell.ljust(width) for cell, width in zip([host, *cells[:-1]], widths)]
    return printable("  ".join([*padded, cells[-1]]).rstrip())


def tally(results: list[HostGpus]) -> str:
    """How many hosts answered, and which did not: the rows came in arrival order, so they are named here."""
    silent = [r.host for r in results if not r.answered]
    count = f"{len(results) - len(silent)} of {len(results)} host{'s' if len(results) > 1 else ''} answered"
    return f"{count}; no answer from {', '.join(silent)}." if silent else f"{count}."


def _shown(value: int | None) -> str:
    return "?" if value is None else str(value)

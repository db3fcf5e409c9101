"""End to end: `rdev gpus` over real sshd servers on loopback, each with its own `nvidia-smi`
stand-in on the session PATH (or none), plus a registered host where nothing listens, one whose
port takes connections but never speaks SSH, one whose nvidia-smi is slow and one whose nvidia-smi hangs.
Lines are read as they stream out, with the time each arrived."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import colab_side
from client_side.commands import gpus
from tests.conftest import REPO, read_or_empty
from tests.stand_ins import nvidia_smi

A100 = "NVIDIA A100-SXM4-80GB"
UUIDS = [f"GPU-5c3c8a62-1111-4000-8000-00000000000{i}" for i in range(4)]
# Four GPUs: 0 runs a job, 1 is free, 2 is free with utilisation [N/A], 3 has memory taken but no process it can see.
GPU_BOX = {
    "gpus": [
        {"index": 0, "uuid": UUIDS[0], "name": A100, "memory.used": 40536, "memory.total": 81920, "utilization.gpu": 97},
        {"index": 1, "uuid": UUIDS[1], "name": A100, "memory.used": 4, "memory.total": 81920, "utilization.gpu": 0},
        {"index": 2, "uuid": UUIDS[2], "name": A100, "memory.used": 0, "memory.total": 81920,
         "utilization.gpu": "[N/A]"},
        {"index": 3, "uuid": UUIDS[3], "name": A100, "memory.used": 30000, "memory.total": 81920, "utilization.gpu": 3},
    ],
    "processes": [{"gpu_uuid": UUIDS[0], "pid": 4242, "used_memory": 40500, "process_name": "/usr/bin/python3"}],
}
DRIVER_ERROR = "Failed to initialize NVML: Driver/library version mismatch"
# A driver that hangs: nvidia-smi answers long after any report gives up.
HUNG = {**GPU_BOX, "delay": 60}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def serving(home: Path, rdev: Callable, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, dict | None], str]]:
    """`serving(name, machine)` starts a real sshd whose sessions find `machine`'s nvidia-smi stand-in
    (none if None), connects it as `name` and returns what serve() printed; all stop after the test."""
    key = rdev("key").stdout.strip()
    plain_path = os.environ["PATH"]
    servers: list[colab_side.Server] = []

    def start(name: str, machine: dict | None) -> str:
        path = plain_path
        if machine is not None:
            bin_dir = home.parent / f"bin-{name}"
            nvidia_smi.install(bin_dir, machine)
            path = f"{bin_dir}{os.pathsep}{plain_path}"
        # sshd hands the serving process's PATH to every session: this is the host's PATH.
        monkeypatch.setenv("PATH", path)
        lines: list[str] = []
        try:
            servers.append(colab_side.serve(tunnel="direct", authorized_keys=[key],
                                            state_dir=home.parent / f"srv-{name}", keep_alive=False,
                                            out=lines.append))
        finally:
            monkeypatch.setenv("PATH", plain_path)
        result = rdev("connect", name, "--ticket", servers[-1].ticket, "--no-open")
        assert result.returncode == 0, result.stderr
        return "\n".join(lines)

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def fleet(serving: Callable[[str, dict | None], str], rdev: Callable) -> dict[str, str]:
    """Hosts `gpu` (the four GPUs above), `cpu` (no nvidia-smi), `broken` (nvidia-smi fails) and
    `dead` (nothing listens); returns each host's serve() output, joined."""
    machines: dict[str, dict | None] = {"gpu": GPU_BOX, "cpu": None, "broken": {"error": DRIVER_ERROR, "exit": 18}}
    printed = {name: serving(name, machine) for name, machine in machines.items()}
    result = rdev("add", "dead", "--host", "127.0.0.1", "--port", str(closed_port()))
    assert result.returncode == 0, result.stderr
    return printed


@pytest.fixture
def mute(rdev: Callable) -> Iterator[None]:
    """A host `mute` whose port takes connections and never says a word, as a machine hung in the
    middle of a reboot does: ssh waits for its greeting until its ConnectTimeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # the kernel completes the handshakes; nobody ever accepts
        result = rdev("add", "mute", "--host", "127.0.0.1", "--port", str(listener.getsockname()[1]))
        assert result.returncode == 0, result.stderr
        yield


def ssh_processes(home: Path, names: tuple[str, ...]) -> list[list[bytes]]:
    """The argv of every ssh still running with this test's config for one of `names`."""
    config = str(home / ".ssh" / "config").encode()
    found = []
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        argv = read_or_empty(path).split(b"\0")
        if config in argv and any(name.encode() in argv for name in names):
            found.append(argv)
    return found


def rows(stdout: str) -> dict[str, list[str]]:
    """The table's lines by host (the header and the closing count left out)."""
    table = stdout.split("\n\n")[0].splitlines()[1:]
    by_host: dict[str, list[str]] = {}
    for line in table:
        by_host.setdefault(line.split()[0], []).append(line)
    return by_host


def said(line: str) -> str:
    """What a host's one-line verdict says (after HOST and the "-" in the GPU column)."""
    return line.split(None, 2)[2]


def streamed(*args: str) -> tuple[int, list[tuple[float, str]], str]:
    """Run `rdev ARGS...` and read its stdout as it comes: (exit status, each line with the seconds since
    the start at which it arrived, stderr)."""
    start = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "client_side", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=REPO)
    assert process.stdout is not None and process.stderr is not None
    lines = [(time.monotonic() - start, line.rstrip("\n")) for line in process.stdout]
    stderr = process.stderr.read()
    return process.wait(timeout=30), lines, stderr


def test_all_hosts_in_one_table(fleet: dict[str, str], rdev: Callable) -> None:
    result = rdev("gpus")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout.splitlines()[0].split() == ["HOST", "GPU", "FREE", "MEMORY", "MiB", "UTIL", "NAME",
                                                     "PROCESSES"]
    by_host = rows(result.stdout)
    assert sorted(by_host) == ["broken", "cpu", "dead", "gpu"]
    gpu = by_host["gpu"]
    assert [line.split()[1] for line in gpu] == ["0", "1", "2", "3", "-"]
    assert [line.split()[2] for line in gpu[:4]] == ["no", "yes", "yes", "no"]
    assert gpu[0].split() == ["gpu", "0", "no", "40536/81920", "97%", *A100.split(), "/usr/bin/python3", "(40500",
                              "MiB)"]
    assert "?%" in gpu[2]
    assert said(gpu[4]) == "CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=1,2"
    # Each host's lines come together, in one block.
    table = [line.split()[0] for line in result.stdout.split("\n\n")[0].splitlines()[1:]]
    assert table == sorted(table, key=table.index) and len(set(table)) == len(by_host)
    assert [len(by_host[h]) for h in ("cpu", "dead", "broken")] == [1, 1, 1]
    assert said(by_host["cpu"][0]).startswith("no nvidia-smi there")
    assert said(by_host["dead"][0]).startswith("Cannot reach dead: nothing listens there.")
    assert said(by_host["broken"][0]) == f"nvidia-smi failed: {DRIVER_ERROR}"
    # The columns of every GPU row line up under the header.
    starts = {line.index(A100) for line in gpu[:4]}
    assert starts == {result.stdout.splitlines()[0].index("NAME")}
    assert result.stdout.rstrip().splitlines()[-1] == "3 of 4 hosts answered; no answer from dead."


def test_json_has_every_host_and_the_free_devices(fleet: dict[str, str], rdev: Callable) -> None:
    result = rdev("gpus", "--json")
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    assert [entry["host"] for entry in entries] == ["broken", "cpu", "dead", "gpu"]  # as asked, not as they came
    hosts = {entry["host"]: entry for entry in entries}
    assert {name: entry["status"] for name, entry in hosts.items()} == {
        "broken": "error", "cpu": "no-nvidia-smi", "dead": "unreachable", "gpu": "ok"}
    gpu = hosts["gpu"]
    assert gpu["cuda_visible_devices"] == "1,2"
    assert [(g["index"], g["free"]) for g in gpu["gpus"]] == [(0, False), (1, True), (2, True), (3, False)]
    assert gpu["gpus"][0] == {"index": 0, "name": A100, "memory_used_mib": 40536, "memory_total_mib": 81920,
                              "utilisation": 97, "processes": [{"pid": 4242, "name": "/usr/bin/python3",
                                                                "memory_mib": 40500}], "free": False}
    assert gpu["gpus"][2]["utilisation"] is None
    for name in ("cpu", "dead", "broken"):
        assert hosts[name]["gpus"] == [] and hosts[name]["cuda_visible_devices"] == "" and hosts[name]["message"]
    assert hosts["dead"]["message"].startswith("Cannot reach dead")


def test_named_hosts_only(fleet: dict[str, str], rdev: Callable) -> None:
    result = rdev("gpus", "gpu")
    assert result.returncode == 0, result.stderr
    assert sorted(rows(result.stdout)) == ["gpu"]
    assert said(rows(result.stdout)["gpu"][-1]) == "CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=1,2"
    assert result.stdout.rstrip().splitlines()[-1] == "1 of 1 host answered."
    two = rdev("gpus", "dead", "cpu")
    assert two.returncode == 0, two.stderr
    assert sorted(rows(two.stdout)) == ["cpu", "dead"]
    assert "CUDA_VISIBLE_DEVICES" not in two.stdout


def test_failing_nvidia_smi_shows_its_reason(fleet: dict[str, str], rdev: Callable) -> None:
    """nvidia-smi prints its errors on stdout; the row must still say what went wrong."""
    result = rdev("gpus", "broken")
    assert result.returncode == 0, result.stderr  # the host answered: its driver is what failed
    assert said(rows(result.stdout)["broken"][0]) == f"nvidia-smi failed: {DRIVER_ERROR}"


def test_unknown_name_is_one_line_exit_2(home: Path, rdev: Callable) -> None:
    assert rdev("add", "known", "--host", "127.0.0.1", "--port", str(closed_port())).returncode == 0
    result = rdev("gpus", "known", "nope")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("rdev: There is no host named 'nope'") and result.stderr.count("\n") == 1


def test_answering_hosts_print_before_a_silent_host_times_out(fleet: dict[str, str], mute: None) -> None:
    """Each host's lines appear as it answers: the four that answer at once are on screen while ssh still
    waits for mute's greeting, which is given up after CONNECT_TIMEOUT, not the report's 8 s."""
    status, lines, stderr = streamed("gpus")
    assert status == 0, stderr
    hosts = ["broken", "cpu", "dead", "gpu", "mute"]
    by_host: dict[str, list[float]] = {}
    for at, line in lines:
        if line.split(" ", 1)[0] in hosts:
            by_host.setdefault(line.split()[0], []).append(at)
    assert sorted(by_host) == hosts, lines
    mute_at = by_host.pop("mute")[0]
    last_answer = max(at for times in by_host.values() for at in times)
    assert last_answer < mute_at - 1.0, lines
    assert lines[0][1].startswith("HOST") and lines[0][0] < 1.5, lines  # the header does not wait for anyone
    assert gpus.CONNECT_TIMEOUT - 0.5 <= mute_at < gpus.CONNECT_TIMEOUT + 1.5, lines
    assert lines[-1] == (lines[-1][0], "3 of 5 hosts answered; no answer from dead, mute.")
    mute_line = next(line for _, line in lines if line.startswith("mute "))
    assert said(mute_line) == f"no answer within {gpus.CONNECT_TIMEOUT} s: 'ssh -v mute' shows where it waits"


def test_a_silent_host_alone_gets_the_connect_timeout_and_exit_1(home: Path, mute: None) -> None:
    """Nothing answered: the host's line, then one sentence on stderr and exit status 1, after ~3 s."""
    start = time.monotonic()
    status, lines, stderr = streamed("gpus", "mute")
    took = time.monotonic() - start
    assert gpus.CONNECT_TIMEOUT - 0.5 <= took < gpus.CONNECT_TIMEOUT + 1.5, took
    assert status == 1
    assert [line.split()[0] for _, line in lines] == ["HOST", "mute"]
    assert stderr.startswith("rdev: No host answered (mute): check your network") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr


def test_exit_status_says_whether_any_host_answered(fleet: dict[str, str], mute: None, rdev: Callable) -> None:
    """1 when none of the hosts asked answered (JSON still printed, for a script to read why), 0 when one did,
    even one whose nvidia-smi failed."""
    none = rdev("gpus", "dead", "mute")
    assert none.returncode == 1, none.stdout
    assert sorted(rows(none.stdout)) == ["dead", "mute"]
    assert none.stderr == ("rdev: No host answered (dead, mute): check your network, VPN or tailnet and that the "
                           "servers run; each host's line says more.\n")
    as_json = rdev("gpus", "--json", "mute", "dead")
    assert as_json.returncode == 1
    assert [(e["host"], e["status"]) for e in json.loads(as_json.stdout)] == [("mute", gpus.NO_ANSWER),
                                                                             ("dead", "unreachable")]
    for answered in (("dead", "gpu"), ("broken", "mute")):
        result = rdev("gpus", *answered)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""


def test_a_slow_host_that_answered_is_not_cut_at_the_connect_timeout(
        home: Path, serving: Callable[[str, dict | None], str], rdev: Callable) -> None:
    """A host that connected but takes longer than CONNECT_TIMEOUT to run the query (as a slow .bashrc or a slow
    driver makes it) is still reported: the short limit is ssh's ConnectTimeout, not a clock on the command."""
    serving("slow", {**GPU_BOX, "delay": gpus.CONNECT_TIMEOUT / 2 + 0.5})  # nvidia-smi runs twice
    result = rdev("gpus", "slow")
    assert result.returncode == 0, result.stdout + result.stderr
    assert said(rows(result.stdout)["slow"][-1]) == "CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=1,2"


def test_the_bound_holds_and_late_ssh_processes_are_ended(home: Path, fleet: dict[str, str], mute: None,
                                                          serving: Callable[[str, dict | None], str]) -> None:
    """A silent host and a host whose nvidia-smi hangs: both are named "no-answer" (the silent one at the
    connect timeout, the hung one at the bound), the others are reported in full, and no ssh of the late two
    outlives the report."""
    serving("hung", HUNG)
    bound = 4.0
    start = time.monotonic()
    found = {entry["host"]: entry for entry in json.loads(gpus.report([], as_json=True, timeout=bound))}
    took = time.monotonic() - start
    assert bound <= took < bound + 1.5, took
    assert {name: entry["status"] for name, entry in found.items()} == {
        "broken": "error", "cpu": "no-nvidia-smi", "dead": "unreachable", "gpu": "ok", "hung": gpus.NO_ANSWER,
        "mute": gpus.NO_ANSWER}
    assert found["gpu"]["cuda_visible_devices"] == "1,2"
    assert found["hung"]["message"] == "no answer within 4 s: 'ssh -v hung' shows where it waits"
    assert found["mute"]["message"] == f"no answer within {gpus.CONNECT_TIMEOUT} s: 'ssh -v mute' shows where it waits"
    assert found["mute"]["gpus"] == [] and found["mute"]["cuda_visible_devices"] == ""
    assert ssh_processes(home, ("mute", "hung")) == []


def test_leaving_early_ends_every_ssh(home: Path, fleet: dict[str, str],
                                      serving: Callable[[str, dict | None], str]) -> None:
    """A report left early (Ctrl-C, a closed pipe: here the first host's lines fail to go out) ends the ssh still
    waiting at once, rather than leaving them to run to their deadline."""
    serving("hung", HUNG)

    def broken_pipe(text: str) -> None:
        if not text.startswith("HOST"):
            raise BrokenPipeError(32, "Broken pipe")

    start = time.monotonic()
    with pytest.raises(BrokenPipeError):
        gpus.report([], as_json=False, say=broken_pipe)
    assert time.monotonic() - start < 3.0
    assert ssh_processes(home, ("hung",)) == []

"""`rdev gpus` without ssh: the nvidia-smi stand-in's CSV, the remote query run by a local shell,
`parse` and its free verdict, each host's lines and the closing count, and the order in which `report`
says them (with its answers stood in for)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from client_side.commands import gpus
from client_side.commands.gpus import Gpu, HostGpus, Process
from client_side.errors import BadInput, RdevError
from client_side.local import store
from client_side.local.registry import HostEntry
from tests.stand_ins import nvidia_smi

A100 = "NVIDIA A100-SXM4-80GB"
UUIDS = [f"GPU-5c3c8a62-0000-4000-8000-00000000000{i}" for i in range(4)]
MACHINE = {
    "gpus": [
        {"index": 0, "uuid": UUIDS[0], "name": A100, "memory.used": 40536, "memory.total": 81920, "utilization.gpu": 97},
        {"index": 1, "uuid": UUIDS[1], "name": A100, "memory.used": 4, "memory.total": 81920, "utilization.gpu": 0},
        {"index": 2, "uuid": UUIDS[2], "name": "Tesla T4, PCIe", "memory.used": 0, "memory.total": 15360,
         "utilization.gpu": "[N/A]"},
        {"index": 3, "uuid": UUIDS[3], "name": A100, "memory.used": 30000, "memory.total": 81920, "utilization.gpu": 0},
    ],
    "processes": [{"gpu_uuid": UUIDS[0], "pid": 4242, "used_memory": 40500, "process_name": "/usr/bin/python3"}],
}


def smi(tmp_path: Path, data: dict, *args: str) -> subprocess.CompletedProcess:
    """Run the stand-in as `nvidia-smi ARGS...` through the wrapper the e2e tests put on PATH."""
    wrapper = nvidia_smi.install(tmp_path / "bin", data)
    return subprocess.run([str(wrapper), *args], check=False, capture_output=True, text=True, timeout=30)


def run_query(path: str) -> subprocess.CompletedProcess:
    """rdev's remote command, run by a local shell with `path` as PATH (what the ssh session does)."""
    return subprocess.run(["/bin/sh", "-c", gpus.QUERY], check=False, env={"PATH": path}, capture_output=True, text=True,
                          timeout=30)


def gpu(used: int | None, total: int | None, util: int | None, processes: int = 0, index: int = 0) -> Gpu:
    return Gpu(index, A100, used, total, util, [Process(100 + i, "python", 10) for i in range(processes)])


# The stand-in answers like the real nvidia-smi.

def test_standin_prints_requested_fields_in_order(tmp_path: Path) -> None:
    result = smi(tmp_path, MACHINE, "--query-gpu=index,uuid,memory.used,memory.total,utilization.gpu,name",
                 "--format=csv,noheader,nounits")
    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    assert lines[0] == f"0, {UUIDS[0]}, 40536, 81920, 97, {A100}"
    assert lines[2] == f"2, {UUIDS[2]}, 0, 15360, [N/A], Tesla T4, PCIe"
    assert len(lines) == 4


def test_standin_other_order_units_and_header(tmp_path: Path) -> None:
    result = smi(tmp_path, MACHINE, "--query-gpu=name,memory.used,utilization.gpu", "--format=csv")
    assert result.stdout.splitlines()[:2] == ["name, memory.used [MiB], utilization.gpu [%]", f"{A100}, 40536 MiB, 97 %"]
    assert result.stdout.splitlines()[3] == "Tesla T4, PCIe, 0 MiB, [N/A]"


def test_standin_lists_compute_apps(tmp_path: Path) -> None:
    result = smi(tmp_path, MACHINE, "--query-compute-apps=gpu_uuid,pid,used_memory,process_name",
                 "--format=csv,noheader,nounits")
    assert result.returncode == 0
    assert result.stdout == f"{UUIDS[0]}, 4242, 40500, /usr/bin/python3\n"


def test_standin_prints_nothing_without_processes(tmp_path: Path) -> None:
    result = smi(tmp_path, {**MACHINE, "processes": []}, "--query-compute-apps=pid,process_name",
                 "--format=csv,noheader,nounits")
    assert (result.returncode, result.stdout) == (0, "")


def test_standin_refuses_unknown_field_like_the_real_one(tmp_path: Path) -> None:
    result = smi(tmp_path, MACHINE, "--query-gpu=index,x", "--format=csv,noheader,nounits")
    assert result.returncode == 2
    assert result.stdout.splitlines()[0] == 'Field "x" is not a valid field to query.'


# rdev's remote command, run by a local shell.

def test_query_through_shell_parses_into_gpus(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    nvidia_smi.install(bin_dir, MACHINE)
    result = run_query(f"{bin_dir}:/usr/bin:/bin")
    assert result.returncode == 0, result.stdout + result.stderr
    found = gpus.parse(result.stdout)
    assert [(g.index, g.name, g.free) for g in found] == [(0, A100, False), (1, A100, True),
                                                          (2, "Tesla T4, PCIe", True), (3, A100, False)]
    assert found[0].processes == [Process(4242, "/usr/bin/python3", 40500)]
    assert found[2].utilisation is None


def test_query_without_nvidia_smi_exits_127(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_query(str(empty))
    assert result.returncode == gpus.NO_SMI
    assert result.stdout == ""


def test_query_reports_a_failing_nvidia_smi(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    nvidia_smi.install(bin_dir, {"error": "Failed to initialize NVML: Driver/library version mismatch", "exit": 18})
    result = run_query(f"{bin_dir}:/usr/bin:/bin")
    assert result.returncode == 18
    assert "--" not in result.stdout.splitlines()  # the processes were not asked after a failure


# parse

def test_parse_joins_processes_and_sorts_by_index() -> None:
    output = (f"1, {UUIDS[1]}, 10, 100, 0, B\n0, {UUIDS[0]}, 90, 100, 50, A\n--\n"
              f"{UUIDS[1]}, 7, 5, python\n{UUIDS[1]}, 8, [N/A], train, v2.py\n")
    found = gpus.parse(output)
    assert [g.index for g in found] == [0, 1]
    assert found[1].processes == [Process(7, "python", 5), Process(8, "train, v2.py", None)]
    assert not found[0].processes


def test_parse_keeps_commas_in_gpu_names() -> None:
    found = gpus.parse(f"0, {UUIDS[0]}, 0, 16000, 0, Quadro RTX 5000, with Max-Q Design\n--\n")
    assert found[0].name == "Quadro RTX 5000, with Max-Q Design"
    assert found[0].free


def test_parse_reads_not_available_as_unknown() -> None:
    found = gpus.parse(f"0, {UUIDS[0]}, [N/A], [N/A], [Not Supported], A\n1, {UUIDS[1]}, 0, 100, [N/A], B\n--\n")
    assert (found[0].memory_used_mib, found[0].memory_total_mib, found[0].utilisation) == (None, None, None)
    assert not found[0].free  # memory unknown: cannot tell
    assert found[1].free  # utilisation unknown but memory nearly empty and no process


def test_parse_ignores_processes_on_unknown_gpus_and_junk_lines() -> None:
    output = f"0, {UUIDS[0]}, 0, 100, 0, A\nnot a row\n--\nGPU-other, 9, 10, python\n{UUIDS[0]}, x, 1, bad pid\n"
    found = gpus.parse(output)
    assert len(found) == 1 and found[0].processes == [] and found[0].free


def test_parse_empty_output_is_no_gpu() -> None:
    assert gpus.parse("") == []
    assert gpus.parse("--\n") == []


# The free verdict

@pytest.mark.parametrize("candidate, free", [
    (gpu(0, 81920, 0), True),
    (gpu(4095, 81920, 9), True),  # just under 5 % memory, under 10 % load
    (gpu(4096, 81920, 0), False),  # exactly 5 % of memory
    (gpu(0, 81920, 10), False),  # 10 % load
    (gpu(0, 81920, None), True),  # load unknown ([N/A])
    (gpu(None, 81920, 0), False),  # memory unknown
    (gpu(0, None, 0), False),
    (gpu(0, 0, 0), False),  # a total of 0 MiB is no answer
    (gpu(0, 81920, 0, processes=1), False),  # a process, even a small one
])
def test_looks_free(candidate: Gpu, free: bool) -> None:
    assert gpus._looks_free(candidate) is free


# The table's lines

def test_header_and_gpu_rows_line_up() -> None:
    box = HostGpus("box", "ok", gpus=gpus.parse(
        f"0, {UUIDS[0]}, 40536, 81920, 97, {A100}\n1, {UUIDS[1]}, 4, 81920, 0, {A100}\n"
        f"2, {UUIDS[2]}, 0, 15360, [N/A], {A100}\n--\n{UUIDS[0]}, 4242, 40500, /usr/bin/python3\n"))
    head = gpus.header(len("longer-name"))
    lines = gpus.host_lines(box, len("longer-name"))
    assert head.split() == ["HOST", "GPU", "FREE", "MEMORY", "MiB", "UTIL", "NAME", "PROCESSES"]
    assert lines[0].split() == ["box", "0", "no", "40536/81920", "97%", *A100.split(), "/usr/bin/python3", "(40500",
                                "MiB)"]
    assert lines[1].split()[2] == "yes" and "?%" in lines[2]
    assert lines[-1].split(None, 2) == ["box", "-", "CUDA_DEVICE_ORDER=PCI_BUS_ID CUDA_VISIBLE_DEVICES=1,2"]
    assert box.cuda_visible_devices == "1,2"
    for column in ("GPU", "FREE", "MEMORY", "UTIL", "NAME", "PROCESSES"):
        at = head.index(column)
        assert all(line[at - 1] == " " and line[at] != " " for line in lines[:3]), column  # each cell starts there


def test_a_long_value_pushes_only_its_own_line() -> None:
    long_name = "NVIDIA RTX 6000 Ada Generation, PCIe"
    hosts = [HostGpus("a", "ok", gpus=[gpu(0, 100, 0)]), HostGpus("a", "ok", gpus=[Gpu(0, long_name, 0, 100, 0)])]
    short, long = (gpus.host_lines(h, 4)[0] for h in hosts)
    assert short.rindex(" -") + 1 == gpus.header(4).index("PROCESSES")
    assert long.endswith(f"{long_name}  -")


def test_hosts_with_nothing_free_or_without_gpus_say_so_in_one_line() -> None:
    busy = HostGpus("busy", "ok", gpus=[gpu(80000, 81920, 100)])
    none = HostGpus("cpu", "no-nvidia-smi", "no nvidia-smi there (no NVIDIA GPU or driver)")
    gone = HostGpus("dead", "unreachable", "Cannot reach dead: nothing listens there.")
    empty = HostGpus("empty", "ok")
    assert gpus.host_lines(busy, 5)[-1] == "busy   -    no GPU looks free"
    assert gpus.host_lines(none, 5) == ["cpu    -    no nvidia-smi there (no NVIDIA GPU or driver)"]
    assert gpus.host_lines(gone, 5) == ["dead   -    Cannot reach dead: nothing listens there."]
    assert gpus.host_lines(empty, 5) == ["empty  -    nvidia-smi lists no GPU"]


def test_what_a_host_sent_reaches_the_terminal_printable() -> None:
    sly = HostGpus("box", "ok", gpus=[Gpu(0, "A100\x1b[2J", 0, 100, 0, [Process(1, "evil\x07\r", 1)])])
    assert all(line.isprintable() for line in gpus.host_lines(sly, 4))
    assert "A100?[2J" in gpus.host_lines(sly, 4)[0]


def test_tally_names_the_hosts_that_did_not_answer() -> None:
    ok, smi, silent = HostGpus("a", "ok"), HostGpus("b", "no-nvidia-smi"), HostGpus("c", gpus.NO_ANSWER)
    assert gpus.tally([ok]) == "1 of 1 host answered."
    assert gpus.tally([silent, ok, smi, HostGpus("d", "unreachable")]) == "2 of 4 hosts answered; no answer from c, d."


# report's input checks (the rest of report runs end to end in tests/e2e/work/test_gpus.py)

def test_report_refuses_unknown_name(home: Path) -> None:
    with pytest.raises(BadInput, match="no host named 'nope'"):
        gpus.report(["nope"], as_json=False)


def test_report_refuses_bad_name(home: Path) -> None:
    with pytest.raises(BadInput):
        gpus.report(["-oProxyCommand=x"], as_json=False)


def test_report_without_hosts_says_how_to_add_one(home: Path) -> None:
    assert "No hosts yet" in gpus.report([], as_json=False)


def test_report_json_without_hosts_is_an_empty_list(home: Path) -> None:
    """--json output stays JSON with no hosts, as 'rdev list --json' prints []."""
    assert json.loads(gpus.report([], as_json=True)) == []


# report's order of output and exit (the ssh side runs end to end in tests/e2e/work/test_gpus.py)

@pytest.fixture
def three_hosts(home: Path) -> list[str]:
    for name in ("alpha", "beta", "gamma"):
        store.put(HostEntry(name=name, host="127.0.0.1", port=1, user="me"))
    return ["alpha", "beta", "gamma"]


def arriving(*results: HostGpus) -> Callable[[list[str], float], Iterator[HostGpus]]:
    """A stand-in for `answers`: `results` in this order, as if they arrived so."""
    def answers(names: list[str], timeout: float) -> Iterator[HostGpus]:
        yield from results
    return answers


def test_report_says_the_header_then_each_host_as_it_arrives(three_hosts: list[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    came = [HostGpus("gamma", "ok", gpus=[gpu(0, 100, 0)]), HostGpus("alpha", gpus.NO_ANSWER, "no answer"),
            HostGpus("beta", "no-nvidia-smi", "none")]
    monkeypatch.setattr(gpus, "answers", arriving(*came))
    said: list[str] = []
    closing = gpus.report([], as_json=False, say=said.append)
    assert said[0] == gpus.header(5)
    assert said[1:] == ["\n".join(gpus.host_lines(result, 5)) for result in came]
    assert closing == "\n2 of 3 hosts answered; no answer from alpha."


def test_report_json_lists_hosts_as_asked_and_says_nothing_before(three_hosts: list[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpus, "answers", arriving(HostGpus("gamma", "ok"), HostGpus("beta", "ok")))
    said: list[str] = []
    document = gpus.report(["gamma", "beta"], as_json=True, say=said.append)
    assert said == []
    assert [entry["host"] for entry in json.loads(document)] == ["gamma", "beta"]


@pytest.mark.parametrize("as_json", [False, True])
def test_report_fails_with_one_sentence_when_no_host_answered(three_hosts: list[str], as_json: bool,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gpus, "answers", arriving(HostGpus("beta", gpus.NO_ANSWER, "no answer"),
                                                  HostGpus("alpha", "unreachable", "refused")))
    said: list[str] = []
    with pytest.raises(RdevError) as failed:
        gpus.report(["alpha", "beta"], as_json=as_json, say=said.append)
    assert failed.value.exit_code == 1
    assert str(failed.value) == ("No host answered (beta, alpha): check your network, VPN or tailnet and that the "
                                 "servers run; each host's line says more.")
    if as_json:  # the statuses still go out, in the order asked
        assert [entry["host"] for entry in json.loads(said[-1])] == ["alpha", "beta"]
    else:
        assert said[1:] == ["beta   -    no answer", "alpha  -    refused"]

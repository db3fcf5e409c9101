"""colab_side.long_runs.runs on its own: the host's side of `rdev run` run as the laptop runs it (`python -m`, JSON
lines back), in a throwaway HOME, here without tmux (tests/e2e/work/test_runs.py has both, behind a real sshd): its record
keeping."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from colab_side.long_runs import run_wrapper
from tests.conftest import REPO, python_38


def path_without_tmux(folder: Path) -> str:
    """A PATH with everything of this one but tmux: a folder of links to its commands."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in os.environ["PATH"].split(os.pathsep):
        for command in sorted(Path(entry).iterdir()) if Path(entry).is_dir() else []:
            link = folder / command.name
            if command.name != "tmux" and not link.exists() and not link.is_symlink():
                link.symlink_to(command)
    return str(folder)


@pytest.fixture(scope="session")
def no_tmux(tmp_path_factory: pytest.TempPathFactory) -> str:
    return path_without_tmux(tmp_path_factory.mktemp("no-tmux"))


def spec(argv: list[str], workdir: str = "~", env: dict[str, str] | None = None, gpus: dict | None = None) -> str:
    """start's description of a run, as the laptop sends it."""
    described = {"argv": argv, "workdir": workdir, "env": env or {}, **({"gpus": gpus} if gpus else {})}
    return base64.urlsafe_b64encode(json.dumps(described).encode()).decode()


Host = Callable[..., tuple[int, list[dict]]]


@pytest.fixture
def host(home: Path, no_tmux: str) -> Iterator[Host]:
    """Run `python -m colab_side.long_runs.runs ARGS` in the test's HOME with no tmux on PATH; its status and JSON lines.
    Whatever still runs afterwards is killed."""
    def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, list[dict]]:
        result = subprocess.run([sys.executable, "-m", "colab_side.long_runs.runs", *args], check=False,
                                capture_output=True, text=True, env={**os.environ, "HOME": str(home), "PATH": no_tmux, **(env or {})},
                                cwd=REPO, timeout=60)
        assert "Traceback" not in result.stderr, result.stderr
        return result.returncode, [json.loads(line) for line in result.stdout.splitlines()]
    yield run
    for left in (home / ".rdev" / "runs").glob("*.json"):
        run("kill", left.stem)


def record(home: Path, run: str) -> dict:
    return json.loads((home / ".rdev" / "runs" / f"{run}.json").read_text())


def until(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_run_records_its_start_then_its_status_end_and_output_in_private_files(host: Host, home: Path) -> None:
    code, said = host("start", "r1", spec(["sh", "-c", "echo one; read -r x || echo two; sleep 1; exit 3"]))
    shown = said[-1]["run"]
    assert code == 0 and shown["state"] == "running" and shown["tmux"] is None
    assert shown["workdir"] == str(home) and shown["pid"] > 0
    folder = home / ".rdev" / "runs"
    until(lambda: record(home, "r1")["state"] == "exited")
    done = record(home, "r1")
    assert done["status"] == 3 and done["signal"] is None and done["ended_at"] >= done["started_at"]
    assert (folder / "r1.log").read_text() == "one\ntwo\n"  # stdin is /dev/null: `read` fails at once
    assert folder.stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "r1.json", "r1.log"]  # launcher and env file gone
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in folder.iterdir())
    code, said = host("list")
    [shown] = said[-1]["runs"]
    assert (shown["state"], shown["status"], shown["last_line"]) == ("exited", 3, "two")
    assert 1 <= shown["duration"] < 10 and shown["log"] == str(folder / "r1.log")


def test_a_running_name_is_refused_an_ended_one_is_replaced_and_a_lost_one_named_so(host: Host, home: Path) -> None:
    host("start", "same", spec(["sleep", "60"]))
    code, said = host("start", "same", spec(["true"]))
    assert code == 1 and said[-1]["error"].startswith("a run named same is still running on ")
    wrapper, leader = record(home, "same")["wrapper"], record(home, "same")["pid"]
    os.kill(wrapper, signal.SIGKILL)  # nothing records the end; its terminal is gone, and the hangup ends the command
    until(lambda: not alive(wrapper) and not alive(leader))
    assert host("list", "same")[1][-1]["runs"][0]["state"] == "lost"
    code, said = host("start", "same", spec(["sh", "-c", "echo again"]))
    assert code == 0
    until(lambda: record(home, "same")["state"] == "exited")
    assert (home / ".rdev" / "runs" / "same.log").read_text() == "again\n"


def test_the_command_is_an_argv_run_in_the_folder_with_the_sessions_environment_and_env(host: Host, home: Path) -> None:
    (home / "work dir").mkdir()
    words = ["$HOME", "a b", "'quoted' \"twice\"", "; rm -rf ~", "line\nbreak", "$(touch pwned)", "`id`", "-x"]
    show = "import json, os, sys; print(json.dumps([sys.argv[1:], os.getcwd(), os.environ.get('RDEV_RUN_TEST'), " \
           "os.environ.get('PYTHONPATH'), os.environ.get('KEPT')]))"
    code, said = host("start", "argv", spec([sys.executable, "-c", show, *words], "~/work dir", {"RDEV_RUN_TEST": "1"}),
                      env={"PYTHONPATH": f"{REPO}{os.pathsep}/elsewhere", "KEPT": "yes"})
    assert code == 0 and said[-1]["run"]["env"] == {"RDEV_RUN_TEST": "1"}
    until(lambda: record(home, "argv")["state"] == "exited")
    printed = json.loads((home / ".rdev" / "runs" / "argv.log").read_text())
    # The shipped code (here the checkout) was on PYTHONPATH for the helper only; the user's own entry stays.
    assert printed == [words, str(home / "work dir"), "1", "/elsewhere", "yes"]
    assert not list(home.rglob("pwned"))


def test_a_command_that_is_not_there_ends_at_once_with_127_and_says_so_in_its_log(host: Host, home: Path) -> None:
    assert host("start", "nope", spec(["no-such-command-here", "x"]))[0] == 0
    until(lambda: record(home, "nope")["state"] == "exited")
    assert record(home, "nope")["status"] == 127
    assert host("list", "nope")[1][-1]["runs"][0]["last_line"] == \
        "rdev: cannot run no-such-command-here: No such file or directory"


def test_following_a_log_sends_all_of_it_and_ends_with_the_run(host: Host, home: Path) -> None:
    host("start", "f", spec(["sh", "-c", "for i in 1 2 3 4 5; do echo line $i; sleep 0.3; done; exit 4"]))
    started = time.monotonic()
    code, said = host("log", "f", "--follow")
    assert code == 0 and time.monotonic() - started > 0.8
    assert "".join(m["out"] for m in said if "out" in m) == "".join(f"line {i}\n" for i in range(1, 6))
    assert said[-1]["run"]["state"] == "exited" and said[-1]["run"]["status"] == 4
    code, said = host("log", "f")
    assert code == 0 and "".join(m["out"] for m in said if "out" in m).endswith("line 5\n")


def test_kill_ends_the_run_and_its_children_and_records_killed(host: Host, home: Path) -> None:
    # A child in the background that ignores SIGTERM and hangups: only SIGKILL ends it.
    script = "(trap '' TERM HUP; exec sleep 3131) & echo up; while :; do sleep 1; done"
    host("start", "k", spec(["sh", "-c", script]))
    until(lambda: "up" in (home / ".rdev" / "runs" / "k.log").read_text())
    leader = record(home, "k")["pid"]
    children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and alive(int(p.name))
                and (p / "cmdline").exists() and b"3131" in (p / "cmdline").read_bytes()]
    assert children
    code, said = host("kill", "k")
    assert code == 0 and said[-1]["was"] == "running" and said[-1]["ended"] >= 2
    assert said[-1]["run"]["state"] == "killed" and record(home, "k")["signal"] == signal.SIGTERM
    assert not alive(leader) and not any(alive(pid) for pid in children)
    assert not (home / ".rdev" / "runs" / "k.kill").exists()
    code, said = host("kill", "k")  # again: it has ended, nothing is left
    assert code == 0 and said[-1]["was"] == "killed" and said[-1]["ended"] == 0


def test_a_run_of_another_host_sharing_this_home_is_taken_as_its_record_says(host: Host, home: Path) -> None:
    folder = home / ".rdev" / "runs"
    folder.mkdir(parents=True)
    (folder / "far.json").write_text(json.dumps({"run": "far", "argv": ["x"], "host": "another-node", "state": "running",
                                                 "started": "2026-01-01T00:00:00+00:00", "started_at": time.time() - 90,
                                                 "pid": 1, "wrapper": 1, "wrapper_started": "0"}))
    [shown] = host("list")[1][-1]["runs"]
    assert shown["state"] == "running" and 89 < shown["duration"] < 200
    code, said = host("start", "far", spec(["true"]))
    assert code == 1 and "still running on another-node" in said[-1]["error"]


@pytest.mark.parametrize("args", [("start", "bad name", spec(["true"])), ("start", "x" * 65, spec(["true"])),
                                  ("start", "ok", spec([])), ("start", "ok", spec([""])),
                                  ("start", "ok", "not-base64!"), ("start", "ok", spec(["true"], "/no/such/folder")),
                                  ("log", "../x"), ("kill", "a/b"), ("list", "nothing-here")])
def test_what_cannot_be_used_is_one_sentence_and_nothing_starts(host: Host, home: Path, args: tuple[str, ...]) -> None:
    code, said = host(*args)
    assert code == 1 and said[-1]["error"] and said[-1]["fix"] and len(said) == 1
    folder = home / ".rdev" / "runs"
    assert not folder.exists() or sorted(p.name for p in folder.iterdir()) in ([], [".lock"])


def test_an_unknown_action_is_exit_2_and_an_empty_host_lists_nothing(host: Host) -> None:
    assert host("restart", "x")[0] == 2
    assert host("list") == (0, [{"runs": []}])


def test_no_pseudo_terminal_still_runs_with_output_in_the_log(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Some containers have no /dev/ptmx: the command then writes straight into the log."""
    monkeypatch.setattr(run_wrapper.pty, "openpty", lambda: (_ for _ in ()).throw(OSError("no ptys")))
    log = os.open(str(home / "out.log"), os.O_WRONLY | os.O_CREAT, 0o600)
    child, terminal = run_wrapper._spawn({"argv": ["echo", "hi"], "workdir": str(home)}, dict(os.environ), log, on_pane=False)
    assert child.wait() == 0 and terminal is None
    os.close(log)
    assert (home / "out.log").read_text() == "hi\n"


def test_the_python_3_8_of_old_hosts_runs_a_whole_run(home: Path, no_tmux: str) -> None:
    """The runtime side's oldest Python: start, wrap, list and kill under it."""
    python = python_38()
    env = {**os.environ, "HOME": str(home), "PATH": no_tmux}
    result = subprocess.run([str(python), "-m", "colab_side.long_runs.runs", "start", "old",
                             spec(["sh", "-c", "echo ok; exit 5"])], check=False, capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    until(lambda: record(home, "old")["state"] == "exited")
    assert record(home, "old")["status"] == 5


def test_gpus_found_free_are_handed_out_once_to_live_runs(host: Host, home: Path) -> None:
    """Two runs started at once each see GPU 0 and 1 free (neither uses its GPU yet): they get one each, a third none,
    and a GPU is handed out again once its run has ended."""
    free = {"count": 1, "free": [0, 1]}
    show = 'echo "$CUDA_DEVICE_ORDER $CUDA_VISIBLE_DEVICES"; exec sleep 60'
    for run in ("a", "b"):
        code, said = host("start", run, spec(["sh", "-c", show], gpus=free))
        assert code == 0, said
    assert [record(home, run)["gpus"] for run in ("a", "b")] == ["0", "1"]
    until(lambda: (home / ".rdev" / "runs" / "b.log").read_text() != "")
    assert (home / ".rdev" / "runs" / "b.log").read_text() == "PCI_BUS_ID 1\n"
    code, said = host("start", "c", spec(["true"], gpus=free))
    assert code == 1 and said[-1]["error"] == ("1 GPU asked for, but of the GPUs that look free only 0 (none) are not "
                                               "given to a run of rdev's already")
    assert not (home / ".rdev" / "runs" / "c.json").exists()
    host("kill", "a")
    code, said = host("start", "c", spec(["true"], gpus=free))
    assert code == 0 and said[-1]["run"]["gpus"] == "0"

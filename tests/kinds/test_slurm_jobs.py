"""The sbatch options rdev passes through the login node's shell, and how squeue's lines are read."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from client_side.errors import BadInput, RdevError
from client_side.kinds import slurm_host, slurm_jobs
from client_side.local import paths, registry, store
from client_side.local.registry import HostEntry
from colab_side.long_runs import idle


@pytest.mark.parametrize(("given", "kept"), [
    ("--partition=gpu --gres=gpu:1 --time=04:00:00", "--partition=gpu --gres=gpu:1 --time=04:00:00"),
    ("-p gpu  -G 1", "-p gpu -G 1"), ("", ""), ("--mem=32G --constraint=a100,h100", "--mem=32G --constraint=a100,h100"),
    ("--mail-user=me@uni.example.edu", "--mail-user=me@uni.example.edu"),
])
def test_options_sbatch_takes_are_kept(given: str, kept: str) -> None:
    assert slurm_jobs.flags(given) == kept


@pytest.mark.parametrize("given", ["--partition=gpu;id", "--x=$(id)", "--x=`id`", "a|b", "--x='a b'", "--x=\"a\nb\"",
                                   "--x=a>b", "--x=~/f", "--x=*", "'unclosed"])
def test_options_with_shell_characters_are_refused(given: str) -> None:
    with pytest.raises(BadInput) as caught:
        slurm_jobs.flags(given)
    assert caught.value.fix


@pytest.mark.parametrize("given", ["--job-name=x", "--output=/tmp/o", "--wrap=ls", "--array=1-3", "--export=ALL",
                                   "--chdir=/", "--parsable",
                                   # sbatch takes any unambiguous start of a long option
                                   "--job=x", "--out=o", "--expor=ALL", "--chd=/", "--wai", "--hol", "--test", "--pars"])
def test_options_rdev_sets_itself_are_refused(given: str) -> None:
    with pytest.raises(BadInput) as caught:
        slurm_jobs.flags(given)
    assert "rdev sets" in caught.value.problem


@pytest.mark.parametrize("given", ["-J x", "-Jfoo", "-ofoo", "-D/tmp", "-a1-3", "-o /tmp/o", "-pgpu", "--Partition=gpu",
                                   "--partition gpu", "-p", "-p -G"])
def test_short_options_beyond_the_common_ones_and_loose_values_are_refused(given: str) -> None:
    with pytest.raises(BadInput):
        slurm_jobs.flags(given)


def test_squeue_lines_are_read_as_jobs() -> None:
    assert slurm_jobs._job("42|PENDING|Resources|(null)|4:00:00|gpu|rdev:0123\n") == slurm_jobs.Job(
        "42", "PENDING", "Resources", "(null)", "4:00:00", "gpu", "rdev:0123")
    assert slurm_jobs._job("42|RUNNING|None|n1|1:00|gpu|a|b") == slurm_jobs.Job("42", "RUNNING", "None", "n1", "1:00",
                                                                              "gpu", "a|b")  # the comment is last
    assert slurm_jobs._job("garbage") is None
    assert slurm_jobs._job("42|RUNNING|None|n1|1:00|gpu") is None  # a field short: not as rdev asked
    # An id goes back into commands on the login node: only a plain number is one.
    assert slurm_jobs._job("77;touch${IFS}/tmp/x;#|RUNNING|None|n1|1:00|gpu|") is None
    assert slurm_jobs._job("12_3|RUNNING|None|n1|1:00|gpu|") is None
    assert slurm_jobs._job("\u0661\u0662|RUNNING|None|n1|1:00|gpu|") is None  # digits, but not ASCII ones


def test_control_codes_in_squeue_fields_reach_the_terminal_harmless(monkeypatch: pytest.MonkeyPatch) -> None:
    # A reason, node list or partition with an ANSI escape (clear the screen, set the window title), a bell, the
    # one-character CSI and a right-to-left override: each becomes "?", the text around it stays.
    crafted = ("7|PENDING|Res\x1b[2J\x07ources|n\x1b]0;owned\x07ode|4:00|g\u009b31mpu\u202e|rdev:1\n"
               "6|RUNNING|None|n1|1:00|gpu|\x1b[31m\n")
    monkeypatch.setattr(slurm_jobs, "_run", lambda login, command, *args, **kwargs: crafted)
    newest, older = slurm_jobs.jobs("login", "hpc")
    assert (newest.reason, newest.node, newest.partition) == ("Res?[2J?ources", "n?]0;owned?ode", "g?31mpu?")
    assert older.comment == "?[31m"
    for job in (newest, older):
        assert all(field.isprintable() for field in vars(job).values())


@pytest.mark.parametrize(("code", "start"), [(255, "ssh to login failed (squeue: error: ?[31mnope?]0;x?"),
                                             (1, "Slurm on login failed (Welcome?[2J squeue: error: ?[31mnope?]0;x?)")])
def test_what_the_login_node_says_on_failure_reaches_the_terminal_harmless(monkeypatch: pytest.MonkeyPatch,
                                                                           code: int, start: str) -> None:
    said = b"Welcome\x1b[2J\r\nsqueue: error: \x1b[31mnope\x1b]0;x\x07\n"
    monkeypatch.setattr(slurm_jobs.subprocess, "run", lambda argv, **kwargs: subprocess.CompletedProcess(
        argv, code, b"", said))
    with pytest.raises(RdevError) as caught:
        slurm_jobs.jobs("login", "hpc")
    assert str(caught.value).startswith(start) and str(caught.value).isprintable(), str(caught.value)


@pytest.mark.parametrize("given", ["--clusters=other", "--cluster=other", "--clu=other", "-M other", "-Mother",
                                   "--cluster-constraint=x", "--partition=gpu -M all"])
def test_options_that_send_the_job_to_another_cluster_are_refused(given: str) -> None:
    # squeue and scancel on the login node look at its own cluster only: rdev would never find the job again.
    with pytest.raises(BadInput) as caught:
        slurm_jobs.flags(given)
    assert "would run rdev's job on another cluster" in caught.value.problem and caught.value.fix
    assert caught.value.sentence().count("\n") == 0


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl rdev@laptop"
OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb rdev@other"


def test_a_job_is_this_laptops_by_its_record_or_its_mark_never_by_its_name_alone() -> None:
    def job(id: str, comment: str) -> slurm_jobs.Job:
        return slurm_jobs.Job(id, "RUNNING", "None", "n1", "1:00", "gpu", comment)

    mine, recorded, theirs, by_hand = (job("9", slurm_jobs.mark(KEY)), job("5", ""), job("8", slurm_jobs.mark(OTHER)),
                                       job("7", "(null)"))
    assert slurm_jobs.owned([mine, theirs, by_hand, recorded], "5", KEY) == ([recorded, mine], [theirs, by_hand])
    assert slurm_jobs.owned([mine, theirs, by_hand], None, KEY) == ([mine], [theirs, by_hand])
    assert slurm_jobs.owned([theirs, by_hand], "4", KEY) == ([], [theirs, by_hand])  # the recorded job ended
    # The mark is the key's, whatever comment the key line carries; it fits squeue's comment and a shell word.
    assert slurm_jobs.mark(KEY) == slurm_jobs.mark(KEY.replace("rdev@laptop", "me@renamed")) != slurm_jobs.mark(OTHER)
    assert slurm_jobs.flags(f"--partition={slurm_jobs.mark(KEY)}")


def test_rdevs_own_comment_cannot_be_given() -> None:
    with pytest.raises(BadInput) as caught:
        slurm_jobs.flags("--comment=mine")
    assert "rdev sets --comment" in caught.value.problem


def test_the_runtime_on_the_cluster_is_named_by_its_content() -> None:
    assert slurm_jobs.runtime_path(b"a") == slurm_jobs.runtime_path(b"a") != slurm_jobs.runtime_path(b"b")
    assert slurm_jobs.runtime_path(b"a").startswith("$HOME/.rdev/runtime/rdev-")


@pytest.mark.parametrize(("left", "seconds"), [
    ("59", 59), ("19:58", 1198), ("3:59:58", 14398), ("1-02:03:04", 93784), ("UNLIMITED", None), ("NOT_SET", None),
    ("INVALID", None), ("", None), ("1-", None), ("a:b", None),
])
def test_time_left_as_squeue_prints_it(left: str, seconds: int | None) -> None:
    assert slurm_jobs.Job("1", "RUNNING", "None", "n1", left, "gpu").seconds_left() == seconds


# -- the idle stop ------------------------------------------------------------------------------------------------


def test_the_job_serves_with_its_idle_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[bytes] = []

    def run(login: str, command: str, stdin: bytes | None = None, what: str = "Slurm") -> str:
        sent.append(stdin or b"")
        return "rdev-job:17\n"

    monkeypatch.setattr(slurm_jobs, "_run", run)
    for minutes in (60, 0):
        assert slurm_jobs.submit("login", "hpc", "", runtime="$HOME/r.zip", key=KEY, workdir="~", idle_stop=minutes) \
            == "17"
    assert sent[0].decode().splitlines()[-1].endswith(" --idle-stop 60")
    assert sent[1].decode().splitlines()[-1].endswith(" --idle-stop 0")


def test_a_running_job_gets_a_new_idle_stop_in_its_state_folder(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    """The command `set_idle_stop` sends, run by a real sh: the file the job's server reads at every check, in a
    private folder made if the job has not started yet, replaced whole."""
    commands: list[str] = []

    def run(login: str, command: str, *args: object, **kwargs: object) -> str:
        commands.append(command)
        return ""

    monkeypatch.setattr(slurm_jobs, "_run", run)
    slurm_jobs.set_idle_stop("login", "hpc", "42", 5)
    for minutes in (5, 120):
        command = commands[-1].replace(" 5 >", f" {minutes} >")
        subprocess.run(["sh", "-c", command], env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, check=True)
        folder = tmp_path / ".rdev" / "slurm" / "hpc-42"
        assert (folder / idle.SETTING).read_text() == f"{minutes}\n"
        assert folder.stat().st_mode & 0o777 == 0o700 and [p.name for p in folder.iterdir()] == [idle.SETTING]
    with pytest.raises(ValueError):
        slurm_jobs.set_idle_stop("login", "hpc", "42;id", 5)


@pytest.mark.parametrize("minutes", [-1, idle.MOST + 1, True])
def test_an_idle_stop_out_of_range_is_bad_input(minutes: int) -> None:
    with pytest.raises(BadInput) as caught:
        slurm_host.checked_idle_stop(minutes)
    assert "whole number of minutes from 0 to 10080" in caught.value.problem and "--idle-stop 0" in caught.value.fix


def test_the_idle_stop_is_kept_for_the_cluster_and_refused_for_other_hosts(home: Path) -> None:
    cluster = HostEntry(name="hpc", host="127.0.0.1", port=22, user="me", tunnel="slurm", jump="hpc-login", slurm="")
    store.put(cluster)
    store.put(HostEntry(name="box", host="127.0.0.1", port=22, user="me", login=True))
    assert slurm_host.idle_minutes(registry.get("hpc")) == slurm_host.IDLE_STOP == 60
    slurm_host.keep_idle_stop("hpc", 0)
    assert registry.get("hpc").idle_stop == 0 and slurm_host.idle_minutes(registry.get("hpc")) == 0
    slurm_host.keep_idle_stop("hpc", 90)
    assert registry.get("hpc") == replace(cluster, idle_stop=90)
    for name in ("box", "nowhere"):
        with pytest.raises(BadInput) as caught:
            slurm_host.keep_idle_stop(name, 5)
        assert "--idle-stop is for a Slurm cluster's job" in caught.value.problem
    with pytest.raises(BadInput):
        slurm_host.keep_idle_stop("hpc", -1)
    assert registry.get("hpc").idle_stop == 90


@pytest.mark.parametrize("value", ["-5", "\"60\"", "1.5", "true"])
def test_an_idle_stop_edited_wrong_in_the_registry_is_refused(home: Path, value: str) -> None:
    path = paths.registry()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[hosts.hpc]\nhost = "127.0.0.1"\nport = 22\nuser = "me"\nslurm = ""\nidle_stop = {value}\n')
    with pytest.raises(RdevError) as caught:
        registry.load()
    assert "damaged" in caught.value.problem

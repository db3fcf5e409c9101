"""`rdev pull` / `rdev push` without a host: what is refused, the command lines rsync and sftp get, the choice
between them, and how their output becomes rdev's sentences. The copies themselves: tests/e2e/work/test_transfer.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from client_side.commands import transfer
from client_side.errors import USAGE, BadInput, RdevError
from client_side.local import registry
from client_side.local.registry import HostEntry

BOX = HostEntry(name="box", host="127.0.0.1", port=22, user="me", workdir="/content")
STATS = """
Number of files: 1.206 (reg: 1.201, dir: 5)
Number of regular files transferred: 3
Total file size: 50.819.200 bytes
Total transferred file size: 50.008.192 bytes
"""


@pytest.fixture
def box(home: Path, monkeypatch: pytest.MonkeyPatch) -> HostEntry:
    monkeypatch.setattr(registry, "load", lambda: {"box": BOX})
    return BOX


@pytest.mark.parametrize(("given", "taken"), [
    ("results", "./results"),
    ("results/", "./results"),
    ("a b/c d//", "./a b/c d"),
    ("~", "."),
    ("~/", "."),
    ("~/out/run 1", "./out/run 1"),
    (".", "."),
    ("./x", "./x"),
    ("/content/out/", "/content/out"),
    ("/", "/"),
    (":odd", "./:odd"),  # never box::odd, rsync's daemon form
    ("q'\"$HOME x*y [1]", "./q'\"$HOME x*y [1]"),
])
def test_remote_paths_are_absolute_or_under_home_behind_dot_slash(given: str, taken: str) -> None:
    assert transfer.remote_path(given) == taken


@pytest.mark.parametrize(("given", "said"), [
    ("", "empty"),
    ("-rf", "starts with '-'"),
    ("--delete", "starts with '-'"),
    ("a\nb", "U+000A"),
    ("a\x1b[2J", "U+001B"),
    ("a\u202eb", "U+202E"),
    ("~root/x", "another user's home"),
    ("a\\b*", "backslash and a wildcard"),
])
def test_remote_paths_that_could_mean_something_else_are_bad_input(given: str, said: str) -> None:
    with pytest.raises(BadInput) as refused:
        transfer.remote_path(given)
    assert refused.value.exit_code == USAGE and said in str(refused.value)


def test_local_paths_are_absolute_and_refused_with_control_characters(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert transfer.local_path("-x") == tmp_path / "-x"  # absolute: never an option, never host:path
    assert transfer.local_path("a:b") == tmp_path / "a:b"
    with pytest.raises(BadInput):
        transfer.local_path("x\ny")


def test_unknown_hosts_and_missing_sources_are_refused_before_anything_runs(box: HostEntry, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError("a process was started")

    monkeypatch.setattr(transfer.subprocess, "Popen", no_process)
    monkeypatch.setattr(transfer.subprocess, "run", no_process)
    monkeypatch.chdir(tmp_path)
    for call in (lambda: transfer.pull("nobox", "x", say=print), lambda: transfer.push("box", "missing", say=print),
                 lambda: transfer.pull("box", "-x", say=print), lambda: transfer.pull("Box!", "x", say=print)):
        with pytest.raises(BadInput):
            call()
    (tmp_path / "file").write_text("")
    with pytest.raises(BadInput, match="is a file"):
        transfer.pull("box", "x", "file", say=print)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_push_goes_to_the_hosts_folder_by_default(box: HostEntry, tmp_path: Path) -> None:
    planned = transfer.plan_push("box", str(tmp_path), None)
    assert (planned.remote, planned.shown, planned.local) == ("/content", "/content", tmp_path)
    assert transfer.plan_pull("box", "~/out", None).local == Path.cwd()


def test_rsync_copies_the_tree_not_its_owners_and_resumes(box: HostEntry, tmp_path: Path) -> None:
    pull = transfer.rsync_argv(transfer.plan_pull("box", "out/x*y [1]", str(tmp_path)), "rsync", progress=False)
    assert pull[:5] == ["rsync", "-rlpt", "-s", "--partial-dir=.rdev-partial", "--stats"]
    assert not any(flag in pull for flag in ("-a", "-o", "-g", "--info=progress2"))
    # The sending rsync expands wildcards in what it is asked for; escaped, they name the file itself.
    assert pull[-2:] == ["box:./out/x\\*y \\[1]", f"{tmp_path}/"]
    push = transfer.rsync_argv(transfer.plan_push("box", str(tmp_path), "runs/a*"), "rsync", progress=True)
    assert "--info=progress2" in push
    assert push[-2:] == [str(tmp_path), "box:./runs/a*/"]  # where it writes is never expanded


def test_rsyncs_ssh_is_rdevs_config_quoted_where_home_has_a_space(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  box: HostEntry) -> None:
    spaced = home / "my home"
    spaced.mkdir()
    monkeypatch.setenv("HOME", str(spaced))
    assert transfer.rsh().endswith(f" -F '{spaced}/.ssh/config' -o BatchMode=yes")
    assert transfer._rsh_word("it's") == '"it\'s"'
    with pytest.raises(RdevError, match="both kinds of quote"):
        transfer._rsh_word("it's \"x\"")


def test_sftp_batches_quote_every_path(box: HostEntry, tmp_path: Path) -> None:
    odd = tmp_path / 'a "b" \\ c*'
    odd.mkdir()
    pull = transfer.sftp_batch(transfer.plan_pull("box", 'q"\\ x 1', str(odd)))
    assert pull == f'get -R -p "./q\\"\\\\ x 1" "{tmp_path}/a \\"b\\" \\\\ c*/"\n'
    push = transfer.sftp_batch(transfer.plan_push("box", str(odd), "/srv/my runs"))
    assert push == f'-mkdir "/srv/my runs"\nput -R -p "{tmp_path}/a \\"b\\" \\\\ c*" "/srv/my runs/"\n'


def fake_rsync(folder: Path, said: str) -> Path:
    folder.mkdir(exist_ok=True)
    rsync = folder / "rsync"
    rsync.write_text(f"#!/bin/sh\nprintf '%s\\n' '{said}'\n")
    rsync.chmod(0o755)
    return rsync


@pytest.mark.parametrize(("said", "usable"), [
    ("rsync  version 3.2.7  protocol version 31", True),
    ("rsync  version 3.1.0  protocol version 31", True),
    ("rsync  version 3.0.9  protocol version 30", False),
    ("openrsync: protocol version 29\nrsync version 2.6.9 compatible", False),
    ("something else", False),
])
def test_only_an_rsync_that_can_do_it_all_is_used_here(said: str, usable: bool, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    rsync = fake_rsync(tmp_path, said)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert transfer.local_rsync() == (str(rsync) if usable else None)
    monkeypatch.setenv("PATH", os.devnull)
    assert transfer.local_rsync() is None


@pytest.mark.parametrize("rsync_here", [None, "rsync  version 2.6.9  protocol version 29"])
def test_without_rsync_here_sftp_copies_and_says_why(rsync_here: str | None, box: HostEntry, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """No rsync on this laptop, or one too old for rdev's options (which refuses them: its version is asked only
    then)."""
    tools = tmp_path / "bin"
    if rsync_here is not None:
        fake_rsync(tools, rsync_here)
    tools.mkdir(exist_ok=True)
    for tool in ("ssh", "sftp"):  # never run: _run stands in for them
        (tools / tool).write_text("#!/bin/sh\n")
        (tools / tool).chmod(0o755)
    monkeypatch.setenv("PATH", str(tools))
    monkeypatch.setattr(transfer.probe, "end_stuck_master", lambda name: None)
    batches: list[str] = []

    def run(argv: list[str], batch: str | None = None, progress: bool = False) -> tuple[int, str, str]:
        if batch is None:  # rsync, which refuses: "rsync: -s: unknown option"
            return transfer.REFUSED, "", "rsync: -s: unknown option\n"
        batches.append(batch)
        return 0, "", ""

    monkeypatch.setattr(transfer, "_run", run)
    said: list[str] = []
    copied = transfer.pull("box", "out", str(tmp_path), say=said.append)
    assert copied == transfer.Copied("sftp") and batches == [f'get -R -p "./out" "{tmp_path}/"\n']
    assert said[0].startswith("No rsync 3.1.0 or newer on this laptop: copying with sftp")
    assert said[1] == f"Pulled box:out into {tmp_path}."


def test_rsyncs_numbers_become_one_line() -> None:
    assert transfer.stats(STATS) == transfer.Copied("rsync", files=1201, sent=3, size=50008192)
    assert transfer.stats(STATS.replace(".", ",")) == transfer.stats(STATS)
    plan = transfer.Transfer("box", transfer.PULL, "out", "./out", Path("/here"))
    said: list[str] = []
    transfer._done(plan, transfer.stats(STATS), said.append)
    transfer._done(plan, transfer.Copied("rsync", files=4, sent=0, size=0), said.append)
    assert said == ["Pulled box:out into /here: 3 of 1201 files copied (50.0 MB), 1198 already there.",
                    "Pulled box:out into /here: nothing new, all 4 files were already there."]


def test_the_tools_telling_error_line_is_kept_printable() -> None:
    stderr = ('rsync: [sender] link_stat "/no/such" failed: No such file or directory (2)\n'
              "rsync error: some files/attrs were not transferred (see previous errors) (code 23) at main.c(1956)\n"
              "rsync: [Receiver] write error: Broken pipe (32)\n")
    assert transfer.tool_error(stderr) == 'rsync: [sender] link_stat "/no/such" failed: No such file or directory (2)'
    assert transfer.tool_error('File "/x\x1b[2J" not found.\n') == 'File "/x?[2J" not found.'
    assert transfer.tool_error("") == "no error output"


def test_a_failed_pull_before_a_stop_says_the_host_was_left_running(monkeypatch: pytest.MonkeyPatch) -> None:
    def cut(*args: object, **kwargs: object) -> None:
        raise RdevError("Copying box:out to /here was cut off (x)", "run the same command again.")

    monkeypatch.setattr(transfer, "pull", cut)
    with pytest.raises(RdevError) as failed:
        transfer.pull_before_stop("box", "out", say=print)
    assert str(failed.value) == ("Copying box:out to /here was cut off (x), so box was left running: run the same "
                                 "command again.")

    def refused(*args: object, **kwargs: object) -> None:
        raise BadInput("The remote path '-x' starts with '-'")

    monkeypatch.setattr(transfer, "pull", refused)
    with pytest.raises(BadInput, match="starts with"):
        transfer.pull_before_stop("box", "-x", say=print)


NEVER_STARTED = ("bash: rsync: command not found\nrsync: connection unexpectedly closed (0 bytes received so far) "
                 "[Receiver]\nrsync error: remote command not found (code 127) at io.c(232) [Receiver=3.2.7]\n")
CUT_OFF = ("rsync: connection unexpectedly closed (10351938 bytes received so far) [receiver]\n"
           "rsync error: error in rsync protocol data stream (code 12) at io.c(232) [receiver=3.2.7]\n")


@pytest.mark.parametrize(("code", "stderr", "host_has_rsync", "outcome"), [
    (127, NEVER_STARTED, False, "sftp"),
    (12, NEVER_STARTED.replace("bash: rsync: command not found", "rsync: Command not found."), False, "sftp"),  # tcsh
    (127, NEVER_STARTED, True, "failed (bash: rsync: command not found)"),
    (12, CUT_OFF, None, "was cut off (rsync: connection unexpectedly closed (10351938 bytes"),
    (23, 'rsync: [sender] link_stat "/x" failed: No such file or directory (2)\n', None, "failed (rsync: [sender]"),
])
def test_rsync_goes_first_and_only_a_far_end_that_never_ran_it_is_asked(
        code: int, stderr: str, host_has_rsync: bool | None, outcome: str, box: HostEntry, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "local_rsync", lambda: pytest.fail("the laptop's rsync was asked its version"))
    monkeypatch.setattr(transfer.probe, "end_stuck_master", lambda name: None)
    asked: list[str] = []

    def has_rsync(name: str) -> bool:
        asked.append(name)
        assert host_has_rsync is not None, "asked for rsync after rsync had run there"
        return host_has_rsync

    def run(argv: list[str], batch: str | None = None, progress: bool = False) -> tuple[int, str, str]:
        return (0, "", "") if batch is not None else (code, "", stderr)

    monkeypatch.setattr(transfer, "_has_rsync", has_rsync)
    monkeypatch.setattr(transfer, "_run", run)
    plan = transfer.plan_pull("box", "out", str(tmp_path))
    if outcome == "sftp":
        assert transfer.copy(plan, say=lambda line: None) == transfer.Copied("sftp")
    else:
        with pytest.raises(RdevError) as failed:
            transfer.copy(plan, say=lambda line: None)
        assert outcome in str(failed.value) and failed.value.exit_code == 1
    assert asked == (["box"] if host_has_rsync is not None else [])

"""`rdev pull` and `rdev push` against a real sshd on this machine, reached through the config rdev wrote (the
host made with `rdev connect --ticket`, as in test_jupyter): rsync where both ends have it, sftp where the host has
none; a second copy sends nothing; a link cut mid-file resumes; bad input starts nothing.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bootstrap.ticket import Ticket, utc_timestamp
from tests.conftest import REPO, ssh_through
from tests.stand_ins.colab_runtime import Runtime

# `rdev` as a user runs it, from any folder (this checkout on PYTHONPATH).
RUNNER = "import sys\nfrom client_side import cli\ncli.main(sys.argv[1:])"
BIG = 50_000_000
SPACED = "a file with spaces.txt"
PARTIAL = ".rdev-partial"  # transfer.PARTIAL_DIR, as a user would find it
ODD = "q'\"$HOME x*y [1].txt"  # quotes, a variable, wildcards: all literal
Rdev = Callable[..., subprocess.CompletedProcess]


def run_rdev(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`rdev ARGS` as a user runs it in `cwd` (the RUNNER above, this checkout on PYTHONPATH)."""
    env = {**(env or os.environ), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", RUNNER, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def tree(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under `root`: its digest and whole-second mtime."""
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), int(p.stat().st_mtime))
            for p in sorted(root.rglob("*")) if p.is_file()}


def inodes(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def make_tree(root: Path) -> Path:
    """A 50 MB file of random bytes, a file whose name has spaces, one with quotes and wildcards, a nested one."""
    (root / "sub dir").mkdir(parents=True)
    (root / "big.bin").write_bytes(os.urandom(BIG))
    (root / SPACED).write_text("spaces\n")
    (root / ODD).write_text("odd\n")
    (root / "sub dir" / "nested.txt").write_text("nested\n")
    old = time.time() - 3600  # times a copy must keep
    for path in root.rglob("*"):
        os.utime(path, (old, old))
    return root


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rdev: ") and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def start_host(folder: Path, path: str | None = None) -> Runtime:
    """A real sshd whose sessions get HOME (and PATH, if given) by SetEnv."""
    host = Runtime(folder, "transfer-host")
    if path is not None:
        host._sshd.environment["PATH"] = path  # the host's sessions find no rsync
    host.start()
    return host


def connect(host: Runtime, name: str, workdir: Path, rdev: Rdev) -> str:
    host.authorize(rdev("key").stdout.strip())
    workdir.mkdir(parents=True, exist_ok=True)
    ticket = Ticket(tunnel="direct", host="127.0.0.1", port=host.port, user=pwd.getpwuid(os.getuid()).pw_name,
                    host_keys=(host.host_key(),), workdir=str(workdir), runtime="generic",
                    started=utc_timestamp(datetime.now(timezone.utc)), expires=None).encode()
    result = rdev("connect", name, "--ticket", ticket, "--no-open")
    assert result.returncode == 0, result.stderr
    return name


@pytest.fixture
def far(home: Path) -> Path:
    """The host's side of the files: outside the test's HOME, removed with it."""
    return home.parent / "far files"


@pytest.fixture
def vm(home: Path) -> Iterator[Runtime]:
    host = start_host(home.parent / "far")
    yield host
    host.stop()


@pytest.fixture
def box(vm: Runtime, rdev: Rdev, far: Path) -> str:
    return connect(vm, "box", far / "work", rdev)


def laptop_folder(home: Path) -> Path:
    """The current folder of the laptop's rdev runs."""
    folder = home.parent / "here"
    folder.mkdir()
    return folder


@pytest.fixture
def here(home: Path) -> Path:
    return laptop_folder(home)


@pytest.fixture
def recorded_tools(home: Path) -> tuple[dict[str, str], Path]:
    """An environment whose ssh, rsync and sftp are wrappers that note each start in a folder, then run the real one."""
    records, wrappers = home.parent / "tool-calls", home.parent / "tool-bin"
    records.mkdir()
    wrappers.mkdir()
    for tool in ("ssh", "rsync", "sftp"):
        script = wrappers / tool
        script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{records}/{tool}.$$"\nexec {shutil.which(tool)} "$@"\n')
        script.chmod(0o755)
    return {**os.environ, "PATH": f"{wrappers}:{os.environ['PATH']}"}, records


def test_pull_and_push_a_tree_with_a_big_file_and_odd_names(box: str, far: Path, here: Path, home: Path) -> None:
    source = make_tree(far / "results")
    pulled = run_rdev("pull", box, str(source), "back", cwd=here)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.strip() == f"Pulled {box}:{source} into {here / 'back'}: 4 of 4 files copied (50.0 MB)."
    assert tree(here / "back" / "results") == tree(source)

    # LOCAL left out: the current folder; one file named with quotes, a variable and wildcards, taken literally.
    single = run_rdev("pull", box, str(source / ODD), cwd=here)
    assert single.returncode == 0, single.stderr
    assert [p.name for p in here.iterdir() if p.is_file()] == [ODD]

    mine = make_tree(home.parent / "mine")
    pushed = run_rdev("push", box, str(mine), cwd=here)  # REMOTE left out: the host's folder
    assert pushed.returncode == 0, pushed.stderr
    assert tree(far / "work" / "mine") == tree(mine)
    spaced = run_rdev("push", box, str(mine / SPACED), str(far / "new folder"), cwd=here)
    assert spaced.returncode == 0, spaced.stderr
    assert (far / "new folder" / SPACED).read_text() == "spaces\n"


def pull_and_push_twice(name: str, remote: str, source: Path, here: Path, mine: Path, landing: str,
                        landed: Path) -> None:
    """Pull `remote` (`source` on the host) here, and push `mine` into `landing` (`landed` on the host), each twice:
    the first copies the whole tree with its times, the second writes no file and says so."""
    for argv, copied, original in ((("pull", name, remote), here / source.name, source),
                                   (("push", name, str(mine), landing), landed / mine.name, mine)):
        first = run_rdev(*argv, cwd=here)
        assert first.returncode == 0, first.stderr
        assert "4 of 4 files copied (50.0 MB)" in first.stdout, first.stdout
        assert tree(copied) == tree(original)
        before = inodes(copied)
        again = run_rdev(*argv, cwd=here)
        assert again.returncode == 0, again.stderr
        assert "nothing new, all 4 files were already there" in again.stdout, again.stdout
        # rsync writes a copied file beside its place and renames it in: the same inode and time mean no file was
        # written.
        assert inodes(copied) == before


def test_a_second_pull_or_push_sends_nothing(box: str, far: Path, here: Path, home: Path) -> None:
    source = make_tree(far / "results")
    pull_and_push_twice(box, str(source), source, here, make_tree(home.parent / "mine"), str(far / "work"),
                        far / "work")
    before = inodes(here / "results")
    (source / SPACED).write_text("changed, and longer\n")
    changed = run_rdev("pull", box, str(source), cwd=here)
    assert "1 of 4 files copied (20 bytes), 3 already there" in changed.stdout, changed.stdout
    assert {k: v for k, v in inodes(here / "results").items() if k != SPACED} == \
        {k: v for k, v in before.items() if k != SPACED}


def master_pid(home: Path, name: str) -> int:
    answer = ssh_through(home, "-O", "check", name)
    found = re.search(r"pid=(\d+)", answer.stderr)
    assert found, answer.stderr
    return int(found[1])


def counting_rsync(home: Path) -> tuple[dict[str, str], Path]:
    """An environment for rdev whose rsync (test-only) logs the bytes each run received and, while TEST_BWLIMIT is
    set, copies at that many kB/s (the sending rsync on the host is told the limit too), so that a link can be cut
    mid-file."""
    log, wrappers = home.parent / "rsync.log", home.parent / "counting-bin"
    wrappers.mkdir()
    limit = "${TEST_BWLIMIT:+--bwlimit=$TEST_BWLIMIT}"
    (wrappers / "rsync").write_text(f'#!/bin/sh\nexec {shutil.which("rsync")} {limit} --log-file="{log}" "$@"\n')
    (wrappers / "rsync").chmod(0o755)
    return {**os.environ, "PATH": f"{wrappers}:{os.environ['PATH']}", "PYTHONPATH": str(REPO)}, log


def cut_and_resume(name: str, remote: str, source: Path, here: Path, home: Path, cut: Callable[[], None]) -> None:
    """Pull `remote` (`source` on the host) at 5 MB/s and `cut` the link once 15 MB of its big file are here: one
    sentence says so and the part is kept; the next pull completes and receives less than what was already here."""
    env, log = counting_rsync(home)
    copying = subprocess.Popen([sys.executable, "-c", RUNNER, "pull", name, remote], cwd=here,
                               env={**env, "TEST_BWLIMIT": "5000"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, stdin=subprocess.DEVNULL)
    pulled = here / source.name
    deadline, written = time.monotonic() + 60, 0
    while written < 15_000_000:  # rsync writes into a temporary file beside big.bin
        assert time.monotonic() < deadline and copying.poll() is None, copying.communicate()
        written = max((p.stat().st_size for p in pulled.glob(".big.bin.*")), default=0) if pulled.is_dir() else 0
        time.sleep(0.05)
    cut()
    _, stderr = copying.communicate(timeout=60)
    assert copying.returncode == 1, stderr
    said = one_line(subprocess.CompletedProcess([], 1, "", stderr))
    assert "was cut off" in said and "run the same command again" in said, said
    assert not (pulled / "big.bin").exists()
    kept = (pulled / PARTIAL / "big.bin").stat().st_size
    assert kept >= written

    log.write_text("")
    resumed = run_rdev("pull", name, remote, cwd=here, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert tree(pulled) == tree(source)
    assert not (pulled / PARTIAL).exists()
    totals = re.findall(r"sent [\d,.]+ bytes +received ([\d,.]+) bytes", log.read_text())  # the last: the copy's
    received = int(re.sub(r"[,.]", "", totals[-1]))
    assert received < BIG - kept + 1_000_000, (received, kept)  # the part already here was not sent again


def test_a_cut_link_resumes_from_the_part_already_here(box: str, far: Path, here: Path, home: Path) -> None:
    source = make_tree(far / "results")
    # The link goes: the master connection every session rides on ends.
    cut_and_resume(box, str(source), source, here, home, lambda: os.kill(master_pid(home, box), 9))


def test_sftp_copies_where_the_host_has_no_rsync(home: Path, rdev: Rdev, far: Path, here: Path,
                                                 recorded_tools: tuple[dict[str, str], Path]) -> None:
    no_rsync = home.parent / "host-bin"
    no_rsync.mkdir()
    for tool in Path("/usr/bin").iterdir():
        if tool.name != "rsync":
            (no_rsync / tool.name).symlink_to(tool)
    host = start_host(home.parent / "bare", path=str(no_rsync))
    try:
        name = connect(host, "bare", far / "work", rdev)
        assert ssh_through(home, name, "sh -c 'command -v rsync'").returncode != 0  # the host as the test needs it
        env, records = recorded_tools
        source = make_tree(far / "results")
        pulled = run_rdev("pull", name, str(source), cwd=here, env=env)
        assert pulled.returncode == 0, pulled.stderr
        assert "No rsync on bare: copying with sftp" in pulled.stdout
        assert tree(here / "results") == tree(source)
        folder = f"rdev test {uuid.uuid4().hex[:8]}"
        pushed = run_rdev("push", name, str(here / "results"), folder, cwd=here, env=env)
        assert pushed.returncode == 0, pushed.stderr
        # Relative to the home there: the login folder sshd starts sessions in.
        landed = Path(pwd.getpwuid(os.getuid()).pw_dir) / folder
        try:
            assert tree(landed / "results") == tree(source)
        finally:
            shutil.rmtree(landed, ignore_errors=True)
        sftp_calls = [p.read_text().splitlines() for p in records.glob("sftp.*")]
        assert len(sftp_calls) == 2 and all(call[-1] == name for call in sftp_calls)
        missing = run_rdev("pull", name, "/no/such/thing", cwd=here, env=env)
        assert missing.returncode == 1 and "with sftp failed" in one_line(missing)
    finally:
        host.stop()


def test_sftp_copies_where_this_laptop_has_no_rsync(box: str, far: Path, here: Path, home: Path) -> None:
    bin_dir = home.parent / "laptop-bin"
    bin_dir.mkdir()
    for tool in ("ssh", "sftp"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or tool)
    source = make_tree(far / "results")
    pulled = run_rdev("pull", box, str(source), cwd=here, env={**os.environ, "PATH": str(bin_dir)})
    assert pulled.returncode == 0, pulled.stderr
    assert "No rsync 3.1.0 or newer on this laptop: copying with sftp" in pulled.stdout
    assert tree(here / "results") == tree(source)


@pytest.mark.parametrize("args", [
    ("pull", "box", "--", "-rf"),
    ("pull", "box", "results\nrm -rf ~"),
    ("pull", "box", "~root/x"),
    ("pull", "nobox", "results"),
    ("pull", "box", "results", "dest\x1b[2J"),
    ("push", "box", "no such file here"),
    ("push", "box", ".", "--", "--delete"),
    ("push", "Box!", "."),
])
def test_bad_input_is_one_sentence_and_starts_nothing(box: str, here: Path, args: tuple[str, ...],
                                                     recorded_tools: tuple[dict[str, str], Path]) -> None:
    env, records = recorded_tools
    result = run_rdev(*args, cwd=here, env=env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    one_line(result)
    assert not list(records.iterdir()), "a tool was started"
    assert not list(here.iterdir()), "something was written"


def test_a_failed_copy_is_one_sentence(box: str, here: Path) -> None:
    result = run_rdev("pull", box, "/no/such/thing", cwd=here)
    assert result.returncode == 1
    line = one_line(result)
    assert f"Copying {box}:/no/such/thing to {here} failed (" in line and "No such file or directory" in line, line
    assert "check the path on box" in line


def test_a_host_that_cannot_be_reached_gets_ssh_s_sentence(box: str, vm: Runtime, here: Path, home: Path) -> None:
    assert ssh_through(home, "-O", "exit", box).returncode == 0
    vm.stop()
    result = run_rdev("pull", box, "/tmp", cwd=here)
    assert result.returncode == 1
    assert one_line(result) == f"rdev: Cannot reach {box}: nothing listens there. Check that the server is still " \
        "running (for a notebook, that the ticket is current)."

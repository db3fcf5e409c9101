"""`rdev connect NAME --ticket-file PATH` end to end, and where `rdev connect` takes its ticket from.

The order is `--ticket`, then `--ticket-file`, then piped stdin, then the host's remembered ticket
file when it holds a ticket from a server that started later than the one in use, then a prompt.
The ticket file is how a notebook hands a new ticket to the laptop (e.g. through a synced Drive
folder), so a wrong choice here connects to a dead server or silently to an old one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bootstrap import ticket as tickets
from client_side.errors import BadInput
from client_side.kinds import ticket_host as connecting
from client_side.local.registry import HostEntry
from tests.conftest import REPO, snapshot, ssh_through

PROMPT = "Paste the ticket line the notebook printed"


def rdev_child(*args: str, stdin: int | None = None, input: str | None = None, cwd: Path = REPO,
               timeout: float = 60) -> subprocess.CompletedProcess:
    """`rdev ARGS...` as a child process with the given stdin (a file descriptor, or text to pipe)."""
    return subprocess.run([sys.executable, "-m", "client_side", *args], check=False, stdin=stdin, input=input,
                          capture_output=True, text=True, env=os.environ.copy(), cwd=cwd, timeout=timeout)


def rdev_on_tty(*args: str, paste: str | None = None) -> subprocess.CompletedProcess:
    """`rdev ARGS...` with a terminal as stdin; `paste` is typed there when a prompt is expected.

    Without `paste` nothing is typed, so a prompt that should not appear makes the call time out."""
    master, slave = pty.openpty()
    try:
        if paste is not None:
            # The terminal keeps the line until the prompt's input() reads it.
            os.write(master, (paste + "\n").encode())
        return rdev_child(*args, stdin=slave, timeout=60)
    finally:
        os.close(slave)
        os.close(master)


def listed(name: str) -> dict:
    """The host's registry entry as `rdev list --json` shows it."""
    result = rdev_child("list", "--json", stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return next(host for host in json.loads(result.stdout) if host["name"] == name)


def ssh_port(home: Path, name: str) -> int:
    """The port the real ssh client would use for `name`, from the config rdev wrote."""
    shown = ssh_through(home, "-G", name)
    assert shown.returncode == 0, shown.stderr
    return int(next(line.split()[1] for line in shown.stdout.splitlines() if line.startswith("port ")))


def forged(ticket_line: str, **changes: object) -> str:
    """The same ticket with some fields changed, e.g. a later `started`, to tell which ticket was used."""
    return dataclasses.replace(tickets.parse(ticket_line), **changes).encode()


# --- through the CLI, against a real sshd ---------------------------------------------------------------------


def test_ticket_file_connects_and_is_remembered_absolute(home: Path, server: Callable[..., str]) -> None:
    """A relative --ticket-file is read from the caller's folder, ssh works, and the registry keeps its
    absolute path: a later connect may run from anywhere."""
    drive = home.parent / "drive"
    drive.mkdir()
    ticket_line = server("--ticket-file", str(drive / "colab.ticket"))
    assert (drive / "colab.ticket").read_text().strip() == ticket_line

    result = rdev_child("connect", "colab", "--ticket-file", "drive/colab.ticket", "--no-open",
                        stdin=subprocess.DEVNULL, cwd=home.parent)
    assert result.returncode == 0, result.stderr
    assert "colab: ssh works" in result.stdout
    assert ssh_through(home, "colab", "true").returncode == 0
    entry = listed("colab")
    assert entry["ticket_file"] == str(drive / "colab.ticket")
    assert Path(entry["ticket_file"]).is_absolute()
    assert entry["started"] == tickets.parse(ticket_line).started


def test_ticket_file_with_tilde_is_expanded(home: Path, server: Callable[..., str]) -> None:
    """`~/...` given without a shell (e.g. from a script) still means the user's HOME."""
    ticket_line = server()
    (home / "colab.ticket").write_text(f"some cell output\n{ticket_line}\n")
    result = rdev_child("connect", "colab", "--ticket-file", "~/colab.ticket", "--no-open", stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert listed("colab")["ticket_file"] == str(home / "colab.ticket")


def test_newer_ticket_in_remembered_file_is_used(home: Path, server: Callable[..., str]) -> None:
    """With a terminal and no ticket given, a ticket file rewritten by a restarted server is used
    without a prompt, and ssh reaches the new server."""
    ticket_file = home.parent / "colab.ticket"
    first = server("--ticket-file", str(ticket_file))
    assert rdev_child("connect", "colab", "--ticket-file", str(ticket_file), "--no-open",
                      stdin=subprocess.DEVNULL).returncode == 0

    time.sleep(1.1)  # `started` has one-second resolution
    second = server("--ticket-file", str(ticket_file), "--workdir", "/tmp")  # replaces the first server
    new = tickets.parse(second)
    assert new.started > tickets.parse(first).started

    result = rdev_on_tty("connect", "colab", "--no-open")
    assert result.returncode == 0, result.stderr
    assert f"Using the newer ticket in {ticket_file}" in result.stdout
    assert PROMPT not in result.stdout
    assert ssh_port(home, "colab") == new.port
    assert ssh_through(home, "colab", "true").returncode == 0
    entry = listed("colab")
    assert (entry["started"], entry["workdir"], entry["ticket_file"]) == (new.started, "/tmp", str(ticket_file))


def test_remembered_file_not_newer_prompts_and_uses_paste(home: Path, server: Callable[..., str]) -> None:
    """An unchanged ticket file is reported as not newer, and the ticket pasted at the prompt is used."""
    ticket_file = home.parent / "colab.ticket"
    server("--ticket-file", str(ticket_file))
    assert rdev_child("connect", "colab", "--ticket-file", str(ticket_file), "--no-open",
                      stdin=subprocess.DEVNULL).returncode == 0
    before = ticket_file.read_bytes()

    # A second server the file does not know about; its ticket is pasted.
    pasted = server("--workdir", "/tmp")
    assert ticket_file.read_bytes() == before
    result = rdev_on_tty("connect", "colab", "--no-open", paste=pasted)
    assert result.returncode == 0, result.stderr
    assert f"The ticket in {ticket_file} is not newer than the one in use." in result.stdout
    assert PROMPT in result.stdout
    assert ssh_port(home, "colab") == tickets.parse(pasted).port
    assert ssh_through(home, "colab", "true").returncode == 0
    entry = listed("colab")
    assert (entry["workdir"], entry["started"]) == ("/tmp", tickets.parse(pasted).started)
    assert entry["ticket_file"] == str(ticket_file), "a pasted ticket must not make rdev forget the file"


def test_missing_ticket_file_is_one_line_and_writes_nothing(home: Path, tmp_path: Path) -> None:
    """A --ticket-file that does not exist: exit 2, one line naming the path, no traceback, no file written."""
    assert rdev_child("key", stdin=subprocess.DEVNULL).returncode == 0  # the key pair may be created here, not below
    missing = tmp_path / "not synced yet" / "colab.ticket"
    before = snapshot(home.parent)
    result = rdev_child("connect", "colab", "--ticket-file", str(missing), "--no-open", stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and str(missing) in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(home.parent) == before


def test_piped_stdin_wins_over_remembered_file(home: Path, server: Callable[..., str]) -> None:
    """A ticket piped in is used even when the remembered file holds a newer one: what the user
    pipes is what they mean."""
    ticket_file = home.parent / "colab.ticket"
    ticket_line = server("--ticket-file", str(ticket_file))
    assert rdev_child("connect", "colab", "--ticket-file", str(ticket_file), "--no-open",
                      stdin=subprocess.DEVNULL).returncode == 0
    ticket_file.write_text(forged(ticket_line, started="2099-01-01T00:00:00Z", workdir="/from/the/file") + "\n")

    result = rdev_child("connect", "colab", "--no-open", input=f"{ticket_line}\n")
    assert result.returncode == 0, result.stderr
    assert "Using the newer ticket" not in result.stdout
    entry = listed("colab")
    assert (entry["workdir"], entry["started"]) == (tickets.parse(ticket_line).workdir, tickets.parse(ticket_line).started)


def test_ticket_option_wins_over_ticket_file(home: Path, server: Callable[..., str]) -> None:
    """`--ticket` beats `--ticket-file` when both are given."""
    ticket_line = server()
    other = home.parent / "other.ticket"
    other.write_text(forged(ticket_line, workdir="/from/the/file") + "\n")
    result = rdev_child("connect", "colab", "--ticket", ticket_line, "--ticket-file", str(other), "--no-open",
                        stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert listed("colab")["workdir"] == tickets.parse(ticket_line).workdir


# --- read_ticket in this process: the order, without a server -------------------------------------------------

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBE+xhRFLLxxd3SfP8sMd79hDgoYCVaMFDCAV8EmNVOL"
OLD = tickets.Ticket(tunnel="direct", host="127.0.0.1", port=2222, user="root", host_keys=(HOST_KEY,),
                     workdir="/content", runtime="colab", started="2026-11-22T01:00:00Z", expires=None)
NEW = dataclasses.replace(OLD, port=2223, started="2026-11-22T02:00:00Z")


class FakeStdin:
    """A stdin that is or is not a terminal, holding `text`."""

    def __init__(self, text: str, tty: bool) -> None:
        self.text, self.tty = text, tty

    def isatty(self) -> bool:
        return self.tty

    def read(self, size: int = -1) -> str:
        return self.text if size < 0 else self.text[:size]


def remembered(path: Path, started: str | None = OLD.started) -> HostEntry:
    return HostEntry(name="colab", host="127.0.0.1", port=OLD.port, user="root", started=started, ticket_file=str(path))


@pytest.fixture
def prompts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every prompt shown; the answer is OLD's ticket line."""
    shown: list[str] = []

    def fake_input(prompt: str = "") -> str:
        shown.append(prompt)
        return OLD.encode()
    monkeypatch.setattr("builtins.input", fake_input)
    return shown


def test_read_ticket_option_beats_file_stdin_and_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           prompts: list[str]) -> None:
    """`--ticket` is used as given whatever else is there."""
    newer_file = tmp_path / "t"
    newer_file.write_text(NEW.encode())
    monkeypatch.setattr(sys, "stdin", FakeStdin(NEW.encode(), tty=False))
    assert connecting.read_ticket(OLD.encode(), str(newer_file), remembered(newer_file)) == OLD
    assert prompts == []


def test_read_ticket_dash_reads_stdin(monkeypatch: pytest.MonkeyPatch, prompts: list[str]) -> None:
    """`--ticket -` reads stdin even when it is a terminal (the user said so)."""
    monkeypatch.setattr(sys, "stdin", FakeStdin(f"cell output\n{NEW.encode()}\n", tty=True))
    assert connecting.read_ticket("-") == NEW
    assert prompts == []


def test_read_ticket_remembered_needs_a_later_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    prompts: list[str]) -> None:
    """A remembered file is used only when its server started after the one in use; otherwise the prompt."""
    monkeypatch.setattr(sys, "stdin", FakeStdin("", tty=True))
    path = tmp_path / "t"
    said: list[str] = []
    path.write_text(NEW.encode())
    assert connecting.read_ticket(None, None, remembered(path), said.append) == NEW
    assert prompts == [] and "newer ticket" in said[0]

    said.clear()
    path.write_text(OLD.encode())  # same start as the one in use
    assert connecting.read_ticket(None, None, remembered(path), said.append) == OLD
    assert len(prompts) == 1 and "not newer" in said[0]


def test_an_older_ticket_in_the_remembered_file_is_never_taken_for_a_newer_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prompts: list[str]) -> None:
    """The file's ticket started an hour before the one in use (a stale sync): the prompt, not the file."""
    monkeypatch.setattr(sys, "stdin", FakeStdin("", tty=True))
    path = tmp_path / "t"
    path.write_text(dataclasses.replace(NEW, started="2026-11-22T00:59:59Z").encode())
    said: list[str] = []
    assert connecting.read_ticket(None, None, remembered(path, started=OLD.started), said.append) == OLD
    assert len(prompts) == 1 and "not newer" in said[0]


def test_a_newer_ticket_from_the_file_says_where_the_server_moved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   prompts: list[str]) -> None:
    monkeypatch.setattr(sys, "stdin", FakeStdin("", tty=True))
    path = tmp_path / "t"
    path.write_text(NEW.encode())
    said: list[str] = []
    assert connecting.read_ticket(None, None, remembered(path), said.append) == NEW
    moved = "the server moved from root@127.0.0.1:2222 (direct) to root@127.0.0.1:2223 (direct)"
    assert said == [f"Using the newer ticket in {path} (published {NEW.started}): {moved}."]


def test_read_ticket_unreadable_remembered_file_falls_back_to_prompt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      prompts: list[str]) -> None:
    """A remembered file that is missing or half written is no error: the prompt still works."""
    monkeypatch.setattr(sys, "stdin", FakeStdin("", tty=True))
    half = tmp_path / "half"
    half.write_text(NEW.encode()[:40])
    for path in (tmp_path / "missing", half):
        assert connecting.read_ticket(None, None, remembered(path), lambda line: None) == OLD
    assert len(prompts) == 2


def test_read_ticket_missing_file_is_bad_input(tmp_path: Path) -> None:
    """An explicit --ticket-file that cannot be read is the user's input at fault (exit 2), naming the path."""
    missing = tmp_path / "missing.ticket"
    with pytest.raises(BadInput, match="missing.ticket") as caught:
        connecting.read_ticket(None, str(missing))
    assert caught.value.exit_code == 2


def test_read_ticket_nothing_newer_without_a_terminal_reconnects_as_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      prompts: list[str]) -> None:
    """No terminal, nothing piped, no newer ticket: the host is reconnected as it is (None), never a hang
    on a prompt; a host rdev does not know yet is bad input."""
    monkeypatch.setattr(sys, "stdin", FakeStdin("", tty=False))
    path = tmp_path / "t"
    path.write_text(OLD.encode())
    said: list[str] = []
    assert connecting.read_ticket(None, None, remembered(path), said.append) is None
    assert prompts == [] and "reconnecting colab as it is" in said[-1]
    with pytest.raises(BadInput, match="No ticket was given"):
        connecting.read_ticket(None, None, None, said.append)


def test_read_ticket_empty_paste_reconnects_as_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", FakeStdin("", tty=True))
    monkeypatch.setattr("builtins.input", lambda prompt="": "")
    path = tmp_path / "t"
    path.write_text(OLD.encode())
    assert connecting.read_ticket(None, None, remembered(path), lambda line: None) is None


def test_after_a_tunnel_restart_a_plain_connect_needs_no_paste(home: Path, server, cloudflared_standin: Path) -> None:
    """The runtime's supervisor (in the background once `serve` returned) restarts a dead quick tunnel and
    writes a newer ticket to the ticket file; a plain `rdev connect colab` with no terminal and nothing
    piped picks it up, and the master to the old address is gone."""
    import signal

    from colab_side import processes

    ticket_file = home.parent / "drive" / "ticket"
    ticket_file.parent.mkdir()
    first = server("--tunnel", "cloudflared", "--cloudflared", str(cloudflared_standin),
                   "--ticket-file", str(ticket_file))
    laptop = ("--no-open", "--cloudflared", str(cloudflared_standin))
    assert rdev_child("connect", "colab", "--ticket-file", str(ticket_file), *laptop,
                      stdin=subprocess.DEVNULL).returncode == 0
    time.sleep(1.1)  # tickets name whole seconds: the next one must be visibly later
    state = home.parent / "server"
    os.kill(processes.read_pid(state / "tunnel.pid"), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while ticket_file.read_text().strip() == first and time.monotonic() < deadline:
        time.sleep(0.1)
    second = ticket_file.read_text().strip()
    assert second != first, "the supervisor published no new ticket"

    result = rdev_child("connect", "colab", "--no-open", stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert "newer ticket" in result.stdout and PROMPT not in result.stdout
    assert listed("colab")["host"] == tickets.parse(second).host
    assert ssh_through(home, "colab", "echo again").stdout.strip() == "again"


def test_a_pasted_cell_output_takes_the_newest_and_leaves_the_shell_nothing(home: Path, server) -> None:
    """The whole cell output pasted at the prompt: an older ticket first, the newer one after it. rdev
    reads the whole paste, so it connects with the newer one, and no pasted line is left in the
    terminal for the shell to run afterwards."""
    newer = server()
    older = dataclasses.replace(tickets.parse(newer), port=1, started="2020-01-01T00:00:00Z").encode()
    paste = (f"sshd for root on 127.0.0.1:1, reached direct. On your laptop run: rdev connect NAME --ticket ...\n"
             f"{older}\nThe tunnel's address changed: use the new ticket below.\n{newer}\necho left-for-the-shell\n")
    master, slave = pty.openpty()
    try:
        os.write(master, paste.encode())
        result = rdev_child("connect", "colab", "--no-open", stdin=slave)
        assert result.returncode == 0, result.stderr
        assert ssh_port(home, "colab") == tickets.parse(newer).port
        leftover = select.select([slave], [], [], 0.2)[0]
        assert not leftover, os.read(slave, 4096)
    finally:
        os.close(slave)
        os.close(master)

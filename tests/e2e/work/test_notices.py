"""The notices before a runtime's end, end to end: a served runtime whose end is near (RDEV_TEST_LIFETIME_SECONDS and
RDEV_NOTICE_SECONDS, for tests only) writes its notice to the terminal of an open `ssh -tt` session (the real ssh on a
pty of the test's, through the real sshd), to a live run's log, and into its ticket's `expires`."""

from __future__ import annotations

import os
import pty
import select
import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest

from bootstrap import ticket as tickets
from colab_side import serve
from colab_side.long_runs import notices, runs
from tests.e2e.runtime.test_runtime_lifecycle import keypair
from tests.e2e.runtime.test_supervisor import wait_for


def ssh_on_a_pty(private: Path, port: int, command: str) -> tuple[int, int]:
    """`ssh -tt` on a pseudo-terminal of the test's, as a user's terminal runs it: (its pid, the pty's master)."""
    pid, master = pty.fork()
    if pid == 0:
        os.execvp("ssh", ["ssh", "-tt", "-F", "none", "-i", str(private), "-p", str(port), "-o", "BatchMode=yes",
                          "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "127.0.0.1", command])
    return pid, master


def read_until(master: int, wanted: str, timeout: float) -> str:
    got = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and wanted.encode() not in got:
        if select.select([master], [], [], 0.2)[0]:
            try:
                got += os.read(master, 4096)
            except OSError:
                break
    return got.decode(errors="replace")


def test_the_notice_reaches_an_open_ssh_terminal_and_a_live_runs_log(home: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(notices.LIFETIME_VARIABLE, "30")
    monkeypatch.setenv(notices.LEADS_VARIABLE, "20")  # one notice, 20 s before the end: 10 s after the start
    monkeypatch.setenv("TMUX_TMPDIR", str(tmp_path))  # a run in tmux uses a tmux server of the test's own
    private, key = keypair(home)
    said: list[str] = []
    server = serve(authorized_keys=[key], state_dir=home.parent / "server", keep_alive=False, out=said.append)
    pid, master = 0, -1
    try:
        ticket = tickets.parse(server.ticket)
        ends = tickets.moment(ticket.expires)
        assert ends and timedelta(seconds=29) <= ends - server.started <= timedelta(seconds=31)
        pid, master = ssh_on_a_pty(private, ticket.port, "echo ready; sleep 60")
        assert "ready" in read_until(master, "ready", 15)
        work = home / "work"
        work.mkdir()
        # Started as from one of the server's sessions, which carry its marker.
        run = runs.start("train", ["sh", "-c", "echo epoch 1; sleep 60"], str(work),
                         {"RDEV_STATE": str(server.state.root)})["run"]
        assert run["state"] == "running"
        shown = read_until(master, "rdev: this runtime ends in", 30)
        assert "rdev: this runtime ends in 1 min (its test lifetime): copy what you keep" in shown, (shown, said)
        log = runs.run_file("train", ".log")
        assert wait_for(lambda: "rdev: this runtime ends in" in log.read_text(errors="replace"), timeout=10)
        assert [line for line in said if line.startswith("rdev: this runtime ends")]  # in the server's own log too
    finally:
        if pid:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            os.close(master)
        if runs.run_file("train", ".json").exists():
            runs.kill("train")
        subprocess.run(["tmux", "kill-server"], check=False, capture_output=True, env={**os.environ})
        server.stop()


# -- a lab container (clusteria): nothing of rdev's runs there, so `rdev connect` starts the notifier ------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="a test user needs root")


@needs_root
def test_a_lab_containers_lifetime_counts_from_the_reservation_and_its_terminals_hear_before_its_end(
        home: Path, rdev) -> None:
    from tests.conftest import ssh_through
    from tests.stand_ins.login_host import PASSWORD, login_host

    # The notice 7 h 59 min 48 s before the 8-hour end: 12 s after the connect, for the test's terminal to be open.
    with login_host(home, shell="/bin/bash", setenv={notices.LEADS_VARIABLE: "28788"}) as host:
        assert rdev("add", "lab", "--host", "127.0.0.1", "--port", str(host.port), "--user", host.user,
                    "--preset", "clusteria").returncode == 0
        first = rdev("connect", "lab", "--password-stdin", "--no-open", input=PASSWORD + "\n")
        assert first.returncode == 0, first.stderr
        assert "lab: about 7 h 59 min left (until " in first.stdout, first.stdout
        assert "run your code from your home" in first.stdout  # the reworded reminder
        listed = rdev("list").stdout
        assert "(about 7 h 59 min left)" in listed, listed
        began = rdev("list", "--json").stdout
        pid = int((host.home / ".rdev" / f"notifier-{socket.gethostname()}.pid").read_text().split()[0])
        assert Path(f"/proc/{pid}").stat().st_uid == pwd_uid(host.user)

        shell, master = pty.fork()
        if shell == 0:
            os.execvp("ssh", ["ssh", "-F", str(home / ".ssh" / "config"), "-tt", "lab", "echo ready; sleep 60"])
        try:
            assert "ready" in read_until(master, "ready", 15)
            shown = read_until(master, "rdev: this container", 30)
            assert ("rdev: this container may end in about 8 h 0 min (clusteria's 8-hour lifetime, counted from this "
                    "reservation's first connect): copy what you keep into /storage") in shown, shown
        finally:
            os.kill(shell, 9)
            os.waitpid(shell, 0)
            os.close(master)

        # The same reservation keeps its start; a new one (a new host key) starts the count again.
        again = rdev("connect", "lab", "--no-open")
        assert again.returncode == 0 and rdev("list", "--json").stdout == began, again.stderr
        ssh_through(home, "-O", "exit", "lab")
        host.reserve_again()
        renewed = rdev("connect", "lab", "--no-open", "--accept-new-host-key", "--password-stdin",
                       input=PASSWORD + "\n")
        assert renewed.returncode == 0, renewed.stderr
        assert rdev("list", "--json").stdout != began


def pwd_uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid

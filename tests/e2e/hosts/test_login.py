"""Password hosts end to end: a real local user behind a real sshd that takes passwords, as a lab
cluster's container or a school's server does. rdev uses the password once to install its key."""

from __future__ import annotations

import base64
import hashlib
import os
import pty
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from tests.conftest import REPO, editor_calls, editor_standin, snapshot, ssh_through
from tests.stand_ins.impostor import Impostor
from tests.stand_ins.login_host import PASSWORD, PasswordHost, free_port

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creating a test user needs root")

def add(rdev, host: PasswordHost, name: str = "lab", *extra: str):
    result = rdev("add", name, "--host", "127.0.0.1", "--port", str(host.port), "--user", host.user, *extra)
    assert result.returncode == 0, result.stderr
    return result


def test_password_once_then_the_key(home: Path, rdev, host: PasswordHost, recorded: Path) -> None:
    add(rdev, host, "lab", "--preset", "school")
    first = rdev("connect", "lab", "--password-stdin", "--no-open", input=PASSWORD + "\n")
    assert first.returncode == 0, first.stderr
    assert "rdev's key is installed" in first.stdout and "tmux" in first.stdout  # the preset's reminder
    for _ in range(2):
        again = rdev("connect", "lab", "--no-open")  # no password anywhere: the key must do
        assert again.returncode == 0, again.stderr
    public = rdev("key").stdout.strip()
    assert host.authorized_keys().count(public.split()[1]) == 1
    mode = (host.home / ".ssh" / "authorized_keys").stat().st_mode & 0o777
    assert mode == 0o600 and (host.home / ".ssh").stat().st_mode & 0o777 == 0o700
    result = ssh_through(home, "-o", "PasswordAuthentication=no", "lab", "whoami")
    assert result.stdout.strip() == host.user

    # The password went nowhere but paramiko: no file, no child's argv or environment, no output.
    assert not [p for p, data in snapshot(home).items() if PASSWORD.encode() in data]
    assert list(recorded.iterdir()), "the recording ssh was not used"
    assert not [p for p in recorded.iterdir() if PASSWORD in p.read_text()]
    assert PASSWORD not in first.stdout + first.stderr


def test_rdev_ssh_runs_a_command_and_passes_its_status(rdev, host: PasswordHost) -> None:
    add(rdev, host)
    assert rdev("connect", "lab", "--password-stdin", "--no-open", input=PASSWORD + "\n").returncode == 0
    assert rdev("ssh", "lab", "--", "echo", "hello from lab").stdout.strip() == "hello from lab"
    assert rdev("ssh", "lab", "--", "exit 3").returncode == 3
    unknown = rdev("ssh", "nowhere")
    assert unknown.returncode == 2 and "no host named 'nowhere'" in unknown.stderr


def test_wrong_password_is_one_sentence_and_nothing_is_kept(rdev, host: PasswordHost, secret_service) -> None:
    add(rdev, host)
    env = {**os.environ, **secret_service}
    result = rdev("connect", "lab", "--password-stdin", "--no-open", input="not-it\n", env=env)
    assert result.returncode == 1 and "was refused" in result.stderr and result.stderr.count("\n") == 1
    assert keyring_get("lab", env) == "None"


def keyring_get(name: str, env: dict) -> str:
    code = f"import keyring; print(keyring.get_password('rdev', {name!r}))"
    return subprocess.run([sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True).stdout.strip()


def test_keyring_round_trip_with_a_real_secret_service(home: Path, rdev, host: PasswordHost, secret_service) -> None:
    env = {**os.environ, **secret_service}
    add(rdev, host, "lab", "--preset", "clusteria")
    assert rdev("connect", "lab", "--password-stdin", "--no-open", input=PASSWORD + "\n", env=env).returncode == 0
    assert keyring_get("lab", env) == PASSWORD

    # A new reservation: new host key, key gone. The ephemeral preset re-pins, but without a terminal the kept
    # password goes to the new key only with --accept-new-host-key.
    host.reserve_again()
    unconfirmed = rdev("connect", "lab", "--no-open", env=env)
    assert unconfirmed.returncode == 1 and "rdev sends no password to a key you have not confirmed" in unconfirmed.stderr
    assert unconfirmed.stderr.count("\n") == 1, unconfirmed.stderr
    result = rdev("connect", "lab", "--no-open", "--accept-new-host-key", env=env)
    assert result.returncode == 0, result.stderr
    assert "new host key" in result.stdout and "rdev's key is installed" in result.stdout

    assert rdev("password", "lab", "--delete", env=env).returncode == 0
    assert keyring_get("lab", env) == "None"
    assert rdev("password", "lab", "--stdin", input=PASSWORD + "\n", env=env).returncode == 0
    assert keyring_get("lab", env) == PASSWORD
    assert rdev("password", "lab", "--stdin", input="wrong\n", env=env).returncode == 1
    assert keyring_get("lab", env) == PASSWORD, "a password that failed must not replace the kept one"
    removed = rdev("remove", "lab", env=env)
    assert removed.returncode == 0 and "kept password" in removed.stdout
    assert keyring_get("lab", env) == "None"


def test_changed_host_key_stops_a_non_ephemeral_host(home: Path, rdev, host: PasswordHost) -> None:
    add(rdev, host, "gpu1", "--preset", "school")
    assert rdev("connect", "gpu1", "--password-stdin", "--no-open", input=PASSWORD + "\n").returncode == 0
    pinned = (home / ".ssh" / "rdev" / "known_hosts").read_bytes()
    host.reserve_again()
    refused = rdev("connect", "gpu1", "--password-stdin", "--no-open", input=PASSWORD + "\n")
    assert refused.returncode == 1 and "--accept-new-host-key" in refused.stderr and refused.stderr.count("\n") == 1
    assert (home / ".ssh" / "rdev" / "known_hosts").read_bytes() == pinned
    accepted = rdev("connect", "gpu1", "--password-stdin", "--no-open", "--accept-new-host-key", input=PASSWORD + "\n")
    assert accepted.returncode == 0, accepted.stderr
    assert ssh_through(home, "gpu1", "true").returncode == 0


def test_no_keyring_backend_is_said_and_nothing_is_written(home: Path, rdev, host: PasswordHost) -> None:
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    add(rdev, host)
    result = rdev("connect", "lab", "--password-stdin", "--no-open", input=PASSWORD + "\n", env=env)
    assert result.returncode == 0 and "not stored" in result.stdout and "Secret Service" in result.stdout
    refused = rdev("password", "lab", "--stdin", input=PASSWORD + "\n", env=env)
    assert refused.returncode == 1 and "keyrings.cryptfile" in refused.stderr
    assert not [p for p, data in snapshot(home).items() if PASSWORD.encode() in data]


def test_no_password_at_hand_is_bad_input(rdev, host: PasswordHost) -> None:
    add(rdev, host)
    result = rdev("connect", "lab", "--no-open", input="")
    assert result.returncode == 2 and "--password-stdin" in result.stderr and result.stderr.count("\n") == 1


def test_unreachable_host_names_the_presets_hint(rdev) -> None:
    assert rdev("add", "c2", "--host", "127.0.0.1", "--port", str(free_port()), "--preset", "clusteria").returncode == 0
    result = rdev("connect", "c2", "--no-open")
    assert result.returncode == 1 and "tailnet" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize("args, word", [
    (["--host", "bad host"], "host"),
    (["--host", "gpu1.example.edu", "--preset", "nope"], "preset"),
    (["--host", "gpu1.example.edu", "--jump", "a b"], "jump"),
    (["--host", "gpu1.example.edu", "--user", "-oProxyCommand=x"], "user"),
    (["--host", "gpu1.example.edu", "--port", "0"], "port"),
])
def test_add_refuses_bad_input_and_writes_nothing(home: Path, rdev, args: list[str], word: str) -> None:
    before = snapshot(home)
    result = rdev("add", "gpu1", *args)
    assert result.returncode == 2 and word in result.stderr.lower() and "Traceback" not in result.stderr
    assert snapshot(home) == before


def test_jump_host_becomes_proxyjump(home: Path, rdev) -> None:
    assert rdev("add", "gate", "--host", "gate.example.edu", "--user", "me").returncode == 0
    assert rdev("add", "gpu3", "--host", "gpu3.internal", "--jump", "gate").returncode == 0
    shown = ssh_through(home, "-G", "gpu3").stdout.splitlines()
    assert "proxyjump gate" in shown and "hostname gpu3.internal" in shown
    listed = rdev("list", "--json").stdout
    assert '"jump": "gate"' in listed and '"login": true' in listed


@pytest.mark.parametrize(("path", "opened"), [(None, ""), ("~/proj", "/proj")], ids=["default", "under-home"])
def test_the_editor_opens_the_real_home_folder(home: Path, rdev, host: PasswordHost, monkeypatch: pytest.MonkeyPatch,
                                               path: str | None, opened: str) -> None:
    """A password host's folder is `~` (or under it): VS Code would open `~` as the folder `/~`, so rdev
    opens the home folder the server reports."""
    editor, record = editor_standin(home, monkeypatch)
    add(rdev, host)
    result = rdev("connect", "lab", "--password-stdin", *(["--path", path] if path else []), input=PASSWORD + "\n",
                  env={**os.environ, "RDEV_EDITOR": str(editor)})
    assert result.returncode == 0, result.stderr
    assert editor_calls(record)[-1]["argv"] == ["--remote", "ssh-remote+lab", f"{host.home}{opened}"]


def test_re_adding_a_host_elsewhere_closes_its_old_master(home: Path, rdev, host: PasswordHost) -> None:
    """`rdev add` that moves a host (here to a port where nothing listens) ends the master to the old
    place: the next connect must not 'work' through a connection to the wrong server."""
    add(rdev, host)
    assert rdev("connect", "lab", "--password-stdin", "--no-open", input=PASSWORD + "\n").returncode == 0
    assert ssh_through(home, "-O", "check", "lab").returncode == 0
    result = rdev("add", "lab", "--host", "127.0.0.1", "--port", str(free_port()), "--user", host.user)
    assert result.returncode == 0, result.stderr
    assert ssh_through(home, "-O", "check", "lab").returncode != 0
    moved = rdev("connect", "lab", "--no-open")
    assert moved.returncode == 1 and "Cannot reach lab" in moved.stderr


# -------------------------------------------------------------------- someone else at a lab container's address


def at_terminal(argv: list[str], env: dict[str, str], answer: str) -> tuple[subprocess.Popen, str]:
    """`argv` on a pseudo-terminal of its own; `answer` typed at its first [yes/no] question. The process and what
    it showed up to that question."""
    main, side = pty.openpty()
    process = subprocess.Popen(argv, stdin=side, stdout=side, stderr=side, env=env, cwd=REPO, start_new_session=True)
    os.close(side)
    shown = b""
    deadline = time.monotonic() + 60
    while b"[yes/no]" not in shown and time.monotonic() < deadline:
        if select.select([main], [], [], 0.5)[0]:
            try:
                shown += os.read(main, 4096)
            except OSError:  # the process ended and closed the terminal
                break
    os.write(main, answer.encode() + b"\n")
    threading.Thread(target=_drain, args=(main,), daemon=True).start()
    return process, shown.decode(errors="replace")


def _drain(fd: int) -> None:
    with suppress(OSError):
        while os.read(fd, 4096):
            pass


@pytest.fixture
def impostor_instead(home: Path, rdev, host: PasswordHost, secret_service) -> Iterator[tuple[Impostor, dict]]:
    """`lab` (a clusteria container, its password kept), then another server at its address with a key of its own."""
    env = {**os.environ, **secret_service}
    add(rdev, host, "lab", "--preset", "clusteria")
    assert rdev("connect", "lab", "--password-stdin", "--no-open", input=PASSWORD + "\n", env=env).returncode == 0
    ssh_through(home, "-O", "exit", "lab")
    host.stop()
    impostor = Impostor(host.port)
    try:
        yield impostor, env
    finally:
        impostor.close()


def test_an_impostor_at_the_address_gets_no_kept_password_without_a_terminal(rdev, impostor_instead) -> None:
    impostor, env = impostor_instead
    result = rdev("connect", "lab", "--no-open", env=env)
    assert result.returncode == 1 and "new host key" in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert impostor.passwords == []


@pytest.mark.parametrize("answer", ["no", "yes"])
def test_at_a_terminal_the_new_fingerprint_is_shown_and_the_password_sent_only_after_yes(impostor_instead,
                                                                                          answer: str) -> None:
    impostor, env = impostor_instead
    process, shown = at_terminal([sys.executable, "-m", "client_side", "connect", "lab", "--no-open"], env, answer)
    try:
        fingerprint = base64.b64encode(hashlib.sha256(impostor.key.asbytes()).digest()).decode().rstrip("=")
        assert f"SHA256:{fingerprint}" in shown, shown
        deadline = time.monotonic() + 30
        while answer == "yes" and not impostor.passwords and time.monotonic() < deadline:
            time.sleep(0.1)
        if answer == "no":
            assert process.wait(60) == 1
        assert impostor.passwords == ([PASSWORD] if answer == "yes" else [])
    finally:
        process.kill()
        process.wait()

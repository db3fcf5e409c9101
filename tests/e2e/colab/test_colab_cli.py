"""End to end through Google's real colab CLI: `rdev connect NAME --colab-session S` against a stand-in
for Colab's runtime proxy and a real sshd, with the config rdev wrote and the real ssh client.

The CLI's `new`, `status` and `stop` talk to colab.research.google.com, beyond this machine's
network: where a test needs them, tests/stand_ins/colab.py plays them and runs the real CLI for `ssh`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from client_side.ssh import known_hosts
from tests.conftest import editor_calls, editor_fetching, snapshot, ssh_through, standin
from tests.stand_ins.colab_runtime import (
    SESSION,
    ColabProxy,
    Runtime,
    colab_binary,
    quiet_settings,
    remove_session,
    write_session,
)
from tests.stand_ins.downloads import Downloads

# Colab's user is root; the stand-in runtime's sshd serves the user the tests run as.
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="Colab runtimes log in as root")



@pytest.fixture
def kernel(runtime: Runtime, tmp_path: Path) -> Iterator[subprocess.Popen]:
    """A stand-in notebook kernel, started as Colab starts its own, with the GPU environment a kernel has."""
    (tmp_path / "colab_kernel_launcher.py").write_text("import time\ntime.sleep(300)\n")
    env = {"PATH": f"/usr/local/nvidia/bin:{os.environ['PATH']}", "LD_LIBRARY_PATH": "/usr/lib64-nvidia",
           "CUDA_VERSION": "12.2.1", "NVIDIA_VISIBLE_DEVICES": "all", "PYTHONPATH": "/env/python",
           "HF_TOKEN": "hf_secret_value", "HOME": str(runtime.home)}
    # `-m` finds the launcher in the working folder, as Colab's is found on its kernel's path.
    process = subprocess.Popen([sys.executable, "-m", "colab_kernel_launcher", "-f", "kernel-1.json"], cwd=tmp_path,
                               env=env)
    yield process
    process.kill()
    process.wait()


def proxy_log(home: Path) -> str:
    return (home / ".ssh" / "rdev" / "logs" / "colab.log").read_text()


def connect(rdev, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return rdev("connect", "colab", *args, input=input)


def test_from_nothing_to_the_editor_on_content(home: Path, rdev, proxy: ColabProxy, runtime: Runtime,
                                               downloads: Downloads, monkeypatch: pytest.MonkeyPatch) -> None:
    record = editor_fetching(home, monkeypatch, "7" * 40, downloads.url)
    result = connect(rdev, "--colab-session", SESSION)
    assert result.returncode == 0, result.stderr
    assert "ssh works through Colab's proxy (session s1)" in result.stdout
    # The editor's server is on the runtime before the editor connects, fetched over the same one WebSocket.
    lines = result.stdout.splitlines()
    fetched = lines.index(f"Editor server: code {'7' * 10} is ready in ~/.vscode-server.")
    assert fetched < next(i for i, line in enumerate(lines) if line.startswith("Opened: "))
    assert (runtime.home / ".vscode-server" / "cli" / "servers" / f"Stable-{'7' * 40}" / "server" / "node").exists()
    assert proxy.accepted == 1
    assert f"Pinned colab's host key {known_hosts.fingerprint(runtime.host_key())}" in result.stdout
    assert editor_calls(record)[-1]["argv"] == ["--remote", "ssh-remote+colab", "/content"]
    assert known_hosts.pinned("colab") == [runtime.host_key()]
    options = subprocess.run(["ssh", "-G", "-F", str(home / ".ssh" / "config"), "colab"], capture_output=True,
                             text=True, check=True).stdout.splitlines()
    assert f"proxycommand {sys.executable} -I -m client_side.colab_proxy colab gpu-t4-s-first -- {colab_binary()} " \
           f"ssh --proxy-mode -s s1 -i {home}/.ssh/rdev/id_ed25519" in options
    assert "stricthostkeychecking true" in options and "user root" in options
    settings = json.loads((home.parent / "cfg" / "Code" / "User" / "settings.json").read_text())
    assert settings["remote.SSH.connectTimeout"] >= 60


def test_five_concurrent_commands_share_the_one_session_the_proxy_allows(home: Path, rdev, proxy: ColabProxy) -> None:
    assert connect(rdev, "--colab-session", SESSION, "--no-open").returncode == 0
    with ThreadPoolExecutor(5) as pool:
        results = list(pool.map(lambda i: ssh_through(home, "colab", f"echo {i}"), range(5)))
    assert [(r.returncode, r.stdout) for r in results] == [(0, f"{i}\n") for i in range(5)], [r.stderr for r in results]
    assert proxy.accepted == 1 and 429 not in proxy.statuses


def test_a_new_runtime_for_the_session_is_pinned_again_with_a_notice(home: Path, rdev, proxy: ColabProxy,
                                                                     runtime: Runtime) -> None:
    assert connect(rdev, "--colab-session", SESSION, "--no-open").returncode == 0
    runtime.stop()
    second = Runtime(home.parent / "runtime2", "gpu-t4-s-second")
    second.start()
    try:
        proxy.runtime = second
        write_session(home, SESSION, proxy, second.endpoint)
        # A background connection (the editor's) does not reach the new runtime under the old pin; ssh
        # drops a ProxyCommand's messages when ControlPersist is set, so they are in its log.
        stale = ssh_through(home, "colab", "true")
        assert stale.returncode != 0
        assert "rdev: Colab session s1 now runs another runtime" in proxy_log(home)
        result = connect(rdev, "--no-open")  # a plain connect reuses the host
        assert result.returncode == 0, result.stderr
        assert "Colab session s1 now runs a new runtime; rdev pins its host key." in result.stdout
        assert known_hosts.pinned("colab") == [second.host_key()]
        assert ssh_through(home, "colab", "echo again").stdout == "again\n"
    finally:
        second.stop()


def test_a_changed_key_on_the_same_runtime_is_refused(home: Path, rdev, proxy: ColabProxy, runtime: Runtime) -> None:
    assert connect(rdev, "--colab-session", SESSION, "--no-open").returncode == 0
    first = runtime.host_key()
    subprocess.run(["ssh", "-F", str(home / ".ssh" / "config"), "-O", "exit", "colab"], check=False, capture_output=True)
    runtime.replace_host_key()
    result = connect(rdev, "--no-open")
    assert result.returncode == 1
    assert "host key changed although Colab session s1 still names the same runtime" in result.stderr
    assert "Traceback" not in result.stderr
    assert known_hosts.pinned("colab") == [first]
    again = connect(rdev, "--no-open", "--accept-new-host-key")
    assert again.returncode == 0, again.stderr
    assert known_hosts.pinned("colab") == [runtime.host_key()]


def test_shells_see_the_notebook_kernels_environment(home: Path, rdev, proxy: ColabProxy, runtime: Runtime,
                                                     kernel: subprocess.Popen) -> None:
    result = connect(rdev, "--colab-session", SESSION, "--no-open")
    assert result.returncode == 0, result.stderr
    assert "get the notebook kernel's environment" in result.stdout and "LD_LIBRARY_PATH" in result.stdout
    plain = ssh_through(home, "colab", 'echo "$LD_LIBRARY_PATH|$CUDA_VERSION|$NVIDIA_VISIBLE_DEVICES|$PYTHONPATH"')
    assert plain.stdout == "/usr/lib64-nvidia|12.2.1|all|/env/python\n", plain.stderr
    nested = ssh_through(home, "colab", "env -u LD_LIBRARY_PATH bash -c 'echo \"$LD_LIBRARY_PATH\"'")
    assert nested.stdout == "/usr/lib64-nvidia\n", nested.stderr  # a non-login bash -c reads it again
    login = ssh_through(home, "colab", "env -u CUDA_VERSION bash -l -c 'echo \"$CUDA_VERSION\"; echo \"$PATH\"'")
    cuda, path = login.stdout.splitlines()
    assert cuda == "12.2.1" and path.startswith("/usr/local/nvidia/bin:")
    written = b"".join(p.read_bytes() for p in runtime.home.rglob("*") if p.is_file())
    assert b"hf_secret_value" not in written and b"HF_TOKEN" not in written


def test_the_sessions_own_environment_lacks_the_kernels(home: Path, runtime: Runtime, proxy: ColabProxy) -> None:
    """What the environment test relies on: without rdev, the runtime's SSH sessions have none of it."""
    key = home.parent / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    runtime.authorize(Path(f"{key}.pub").read_text().strip())
    result = subprocess.run(["ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                             "-o", "BatchMode=yes", "-i", str(key), "-p", str(runtime.port), "root@127.0.0.1",
                             'echo "[$LD_LIBRARY_PATH$CUDA_VERSION]"'], check=False, capture_output=True, text=True, timeout=60)
    assert result.stdout == "[]\n", result.stderr


@pytest.mark.parametrize(("status", "words"), [
    ("token", "Colab refused session s1's access token"),
    ("sshd", "Colab's proxy cannot reach the sshd of session s1's runtime"),
])
def test_proxy_failures_are_one_sentence(home: Path, rdev, proxy: ColabProxy, runtime: Runtime, status: str,
                                         words: str) -> None:
    if status == "token":
        proxy.token = "rotated"
    else:
        runtime.stop()
    result = connect(rdev, "--colab-session", SESSION, "--no-open")
    assert result.returncode == 1
    assert result.stderr.startswith(f"rdev: {words}") and result.stderr.count("\n") == 1, result.stderr


def test_a_second_session_on_the_runtime_is_named(home: Path, rdev, proxy: ColabProxy, runtime: Runtime) -> None:
    key = home.parent / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    # Someone's own `colab ssh` (another terminal, another laptop) holds the runtime's one session.
    holder = subprocess.Popen(["ssh", "-F", "/dev/null", "-o", (f"ProxyCommand={colab_binary()} ssh --proxy-mode -s s1 "
                               f"-i {key}"), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                               "-o", "UserKnownHostsFile=/dev/null", "-i", str(key), "root@x", "sleep 20"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while proxy.accepted < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        result = connect(rdev, "--colab-session", SESSION, "--no-open")
        assert result.returncode == 1
        assert result.stderr.startswith("rdev: Another SSH connection holds the runtime of Colab session s1"), result.stderr
    finally:
        holder.kill()
        holder.wait()


def test_a_missing_session_is_created_in_the_foreground_after_saying_so(home: Path, rdev, proxy: ColabProxy,
                                                                        runtime: Runtime,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    fake = standin(home, monkeypatch, "colab")
    monkeypatch.setenv("RDEV_STANDIN_REAL_COLAB", str(colab_binary()))
    monkeypatch.setenv("RDEV_COLAB", str(fake))
    remove_session(home, SESSION)
    records = Path(os.environ["RDEV_STANDIN_DIR"])
    (records / "colab-next-runtime.json").write_text(json.dumps({"url": proxy.url, "token": proxy.token,
                                                                 "endpoint": runtime.endpoint}))
    result = connect(rdev, "--colab-session", SESSION, "--gpu", "t4", "--no-open")
    assert result.returncode == 0, result.stderr
    assert "Creating Colab session s1, a T4 GPU runtime" in result.stdout
    assert "[colab] Session READY." in result.stdout  # the CLI spoke to the user, in the foreground
    calls = [json.loads(line) for line in (records / "colab-calls.jsonl").read_text().splitlines()]
    assert calls[0] == ["new", "-s", "s1", "--gpu", "T4"]
    assert all(call[0] == "ssh" for call in calls[1:])  # every later call is the bridge, none creates

    # The runtime goes away: a background connection does not create one; `rdev stop` ends it on purpose.
    stopped = rdev("stop", "colab")
    assert stopped.returncode == 0, stopped.stderr
    assert "Stopped Colab session s1" in stopped.stdout
    assert json.loads((records / "colab-calls.jsonl").read_text().splitlines()[-1]) == ["stop", "-s", "s1"]
    background = ssh_through(home, "colab", "true")
    assert background.returncode != 0 and "rdev: Colab session s1 no longer exists" in proxy_log(home)
    assert (home / ".ssh" / "rdev" / "logs" / "colab.log").stat().st_mode & 0o777 == 0o600
    assert not any(json.loads(line)[0] == "new" for line in (records / "colab-calls.jsonl").read_text().splitlines()[1:])


def test_a_failed_creation_writes_nothing(home: Path, rdev, proxy: ColabProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = standin(home, monkeypatch, "colab")
    monkeypatch.setenv("RDEV_COLAB", str(fake))
    remove_session(home, SESSION)
    before = snapshot(home / ".ssh") if (home / ".ssh").exists() else {}
    result = connect(rdev, "--colab-session", SESSION, "--no-open")
    assert result.returncode == 1
    assert "could not create Colab session s1" in result.stderr and "Traceback" not in result.stderr
    assert (snapshot(home / ".ssh") if (home / ".ssh").exists() else {}).keys() <= before.keys() | {
        ".ssh/rdev/id_ed25519", ".ssh/rdev/id_ed25519.pub"}
    assert not (home / ".ssh" / "rdev" / "config").exists()


@pytest.mark.parametrize("session", ["a b", "-oProxyCommand=x", "s1#x", "s%h", "s'1", "", "x" * 65])
def test_session_names_that_could_change_the_config_are_refused(home: Path, rdev, proxy: ColabProxy,
                                                                session: str) -> None:
    result = connect(rdev, f"--colab-session={session}", "--no-open")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("rdev: The Colab session name") and result.stderr.count("\n") == 1
    assert not (home / ".ssh" / "rdev" / "config").exists()


@pytest.mark.parametrize("colab", ["/opt/a;b/colab", "/nonexistent/colab", "relative/colab"])
def test_colab_paths_that_are_not_a_plain_executable_are_refused(home: Path, rdev, proxy: ColabProxy, tmp_path: Path,
                                                                 colab: str) -> None:
    if colab.startswith("/opt/a;b"):
        target = tmp_path / "a;b" / "colab"
        target.parent.mkdir()
        target.symlink_to(colab_binary())
        colab = str(target)
    result = connect(rdev, "--colab-session", SESSION, "--colab", colab, "--no-open")
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (home / ".ssh" / "rdev" / "config").exists()


def test_a_missing_colab_is_a_sentence(home: Path, rdev, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RDEV_COLAB", raising=False)
    result = rdev("connect", "colab", "--colab-session", SESSION, "--no-open",
                  env={**os.environ, "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert result.stderr == ("rdev: Google's colab CLI (colab) is not installed: install it with 'pipx install "
                             "google-colab-cli' (it runs on Linux and macOS and needs Python 3.12 or later), or pass its path with --colab, and "
                             "run again.\n")


def test_remove_leaves_the_runtime_unless_asked(home: Path, rdev, proxy: ColabProxy, runtime: Runtime,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    fake = standin(home, monkeypatch, "colab")
    monkeypatch.setenv("RDEV_STANDIN_REAL_COLAB", str(colab_binary()))
    monkeypatch.setenv("RDEV_COLAB", str(fake))
    records = Path(os.environ["RDEV_STANDIN_DIR"]) / "colab-calls.jsonl"
    for stop_too in (False, True):
        assert connect(rdev, "--colab-session", SESSION, "--no-open").returncode == 0
        result = rdev("remove", "colab", *(["--stop"] if stop_too else []))
        assert result.returncode == 0, result.stderr
        stops = [call for call in map(json.loads, records.read_text().splitlines()) if call[0] == "stop"]
        assert stops == ([["stop", "-s", "s1"]] if stop_too else [])
        assert ("s1" in json.loads((home / ".config" / "colab-cli" / "sessions.json").read_text())) is not stop_too
        write_session(home, SESSION, proxy, runtime.endpoint)


def test_a_home_with_a_space_pins_and_connects(home: Path, rdev, proxy: ColabProxy, runtime: Runtime,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    spaced = home.parent / "my home"
    spaced.mkdir(mode=0o700)
    monkeypatch.setenv("HOME", str(spaced))
    quiet_settings(spaced)
    write_session(spaced, SESSION, proxy, runtime.endpoint)
    result = connect(rdev, "--colab-session", SESSION, "--no-open")
    assert result.returncode == 0, result.stderr
    assert known_hosts.pinned("colab") == [runtime.host_key()]
    assert not (home.parent / "my").exists()  # nothing written where an unquoted path would end
    assert ssh_through(spaced, "colab", "echo spaced").stdout == "spaced\n"
    subprocess.run(["ssh", "-F", str(spaced / ".ssh" / "config"), "-O", "exit", "colab"], check=False, capture_output=True)

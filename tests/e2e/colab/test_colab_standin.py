"""The Colab stand-in against Google's real `colab` CLI, with no rdev code: the real ssh runs
`colab ssh --proxy-mode` as its ProxyCommand and reaches the stand-in runtime's real sshd. This
proves the stand-in answers as the CLI expects, so tests of rdev's Colab route can trust it."""

from __future__ import annotations

import os
import pwd
import shlex
import subprocess
import time
from pathlib import Path

from tests.stand_ins.colab_runtime import SESSION, ColabProxy, Runtime, cli_env, colab_binary

ALIAS = "colab-standin"


def keypair(home: Path, kind: str = "ed25519") -> Path:
    key = home / ".ssh" / f"id_{kind}"
    key.parent.mkdir(mode=0o700, exist_ok=True)
    extra = ["-b", "2048"] if kind == "rsa" else []
    subprocess.run(["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-C", "standin", "-f", str(key)], check=True)
    return key


def ssh_argv(home: Path, runtime: Runtime, key: Path, command: str) -> list[str]:
    """The real ssh through the real CLI, pinning the runtime's host key under an alias."""
    known = home.parent / "known_hosts"
    known.write_text(f"{ALIAS} {runtime.host_key()}\n")
    proxy_command = shlex.join([str(colab_binary()), "ssh", "--proxy-mode", "-s", SESSION, "-i", str(key)])
    return ["ssh", "-F", "/dev/null", "-o", f"ProxyCommand={proxy_command}", "-o", f"UserKnownHostsFile={known}",
            "-o", f"HostKeyAlias={ALIAS}", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes", "-i", str(key), "-l", pwd.getpwuid(os.getuid()).pw_name,
            "colab-runtime", command]


def ssh(home: Path, runtime: Runtime, key: Path, command: str = "echo ok") -> subprocess.CompletedProcess:
    return subprocess.run(ssh_argv(home, runtime, key, command), check=False, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env=cli_env(home))


def test_real_cli_reaches_the_runtime(home: Path, runtime: Runtime, proxy: ColabProxy) -> None:
    key = keypair(home)
    result = ssh(home, runtime, key)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"
    assert proxy.accepted == 1 and proxy.statuses == [101]
    # The key the CLI sent in its header is the one the runtime now lets in.
    assert runtime.authorized() == [Path(f"{key}.pub").read_text().strip()]


def test_sequential_connections_each_get_in(home: Path, runtime: Runtime, proxy: ColabProxy) -> None:
    key = keypair(home)
    for _ in range(3):
        result = ssh(home, runtime, key)
        assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr
    assert proxy.accepted == 3 and proxy.statuses == [101] * 3


def test_wrong_token_is_401(home: Path, runtime: Runtime, proxy: ColabProxy) -> None:
    proxy.token = "rotated-on-the-server"
    result = ssh(home, runtime, keypair(home))
    assert result.returncode != 0
    assert "Authentication failed (HTTP 401)" in result.stderr
    assert proxy.statuses == [401] and proxy.accepted == 0


def test_rsa_key_is_400(home: Path, runtime: Runtime, proxy: ColabProxy) -> None:
    result = ssh(home, runtime, keypair(home, "rsa"))
    assert result.returncode != 0
    assert "unsupported key type" in result.stderr
    assert "RSA keys (ssh-rsa) are NOT accepted" in result.stderr
    assert proxy.statuses == [400] and runtime.authorized() == []


def test_second_session_is_429(home: Path, runtime: Runtime, proxy: ColabProxy) -> None:
    key = keypair(home)
    first = subprocess.Popen(ssh_argv(home, runtime, key, "sleep 5"), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(home))
    try:
        deadline = time.monotonic() + 20
        while proxy.accepted == 0:
            assert first.poll() is None, first.communicate()[1]
            assert time.monotonic() < deadline, "the first session never got in"
            time.sleep(0.05)
        second = ssh(home, runtime, key)
        assert second.returncode != 0
        assert "Already-active SSH session (HTTP 429)" in second.stderr
        assert proxy.statuses == [101, 429]
    finally:
        first.terminate()
        first.communicate(timeout=30)
    # Ending the first session frees the slot.
    third = ssh(home, runtime, key)
    assert third.stdout == "ok\n", third.stderr
    assert proxy.statuses == [101, 429, 101]


def test_stopped_sshd_is_502(home: Path, runtime: Runtime, proxy: ColabProxy) -> None:
    key = keypair(home)
    runtime.stop()
    assert not runtime.alive()
    result = ssh(home, runtime, key)
    assert result.returncode != 0
    assert "Bad gateway (HTTP 502)" in result.stderr
    assert proxy.statuses == [502] and proxy.accepted == 0


def test_replaced_host_key_fails_a_pinned_connection(home: Path, runtime: Runtime, proxy: ColabProxy) -> None:
    key = keypair(home)
    known = ssh_argv(home, runtime, key, "true")
    old = runtime.host_key()
    runtime.replace_host_key()
    assert runtime.alive() and runtime.host_key() != old
    # known_hosts still holds the old key: ssh_argv wrote it before the replacement.
    result = subprocess.run(known, check=False, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                            env=cli_env(home))
    assert result.returncode == 255
    assert "Host key verification failed" in result.stderr
    assert ssh(home, runtime, key).stdout == "ok\n"

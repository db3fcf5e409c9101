"""The private OpenSSH server: its own config, host key, pid file and log in a state folder.

It never touches the system's /etc/ssh/sshd_config or a running system sshd. As root it can
log in any user; as an ordinary user it can only log in that same user, on a high port.
"""

from __future__ import annotations

import errno
import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bootstrap.files import atomic_write, ensure_private_dir
from colab_side import processes
from colab_side.environment import MARKER_VARIABLE, setenv_lines, without_secrets
from colab_side.errors import ServeError
from colab_side.state import StateFolder, sshd_running

_SBIN = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd")
_APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
READY_TIMEOUT = 15.0


def find_sshd() -> str | None:
    found = shutil.which("sshd")
    return found or next((p for p in _SBIN if os.access(p, os.X_OK)), None)


def ensure_sshd() -> str:
    """Path of sshd; as root on Debian/Ubuntu install openssh-server when it is missing."""
    found = find_sshd()
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise ServeError(
            "OpenSSH's server (sshd) is not installed and cannot be installed from here: "
            "install it (e.g. 'sudo apt-get install openssh-server') and run again."
        )
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "openssh-server"]
    # The package lists are usually fresh enough; `apt-get update` costs seconds, so only on failure.
    if _run_apt(install) != 0 and (_run_apt(["apt-get", "update", "-q"]) != 0 or _run_apt(install) != 0):
        raise ServeError("Installing openssh-server with apt-get failed: run 'apt-get install openssh-server' to see why.")
    found = find_sshd()
    if not found:
        raise ServeError("openssh-server was installed but no sshd binary was found on this machine.")
    return found


def _run_apt(argv: list[str]) -> int:
    env = {**without_secrets(dict(os.environ)), **_APT_ENV}
    return subprocess.run(argv, check=False, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode


def free_port(address: str) -> int:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def port_taken(address: str, port: int) -> bool:
    """True if something already listens on `port` at `address` (or on every address)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As sshd binds: a port left in TIME_WAIT by an earlier server is free to take.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            return sock.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def _quoted(path: Path) -> str:
    text = str(path)
    if '"' in text or any(ord(c) < 32 for c in text):
        raise ServeError(f"The state folder {text!r} contains a quote or control character: choose another --state-dir.")
    return f'"{text}"'


@dataclass
class Sshd:
    """One private sshd serving one user from `state`."""

    state: StateFolder
    binary: str
    listen: str
    port: int
    user: str
    authorized_keys: list[str]
    environment: dict[str, str] = field(default_factory=dict)
    password_login: bool = False

    def prepare(self) -> None:
        """Write the host key (kept across restarts, so a pinned key stays valid), keys and config."""
        ensure_private_dir(self.state.root)
        if not self.state.host_key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rdev-host", "-f", str(self.state.host_key)],
                           check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        # sshd reads authorized keys with the target user's privileges, so that user must own them.
        account = pwd.getpwnam(self.user)
        ensure_private_dir(self.state.keys)
        atomic_write(self.state.authorized_keys, "".join(k.strip() + "\n" for k in self.authorized_keys).encode(),
                     follow=False)
        if os.geteuid() == 0 and account.pw_uid != 0:
            for path in (self.state.keys, self.state.authorized_keys):
                os.chown(path, account.pw_uid, account.pw_gid)
            # The user must pass through the state folder to reach its keys, but not list or read it.
            os.chmod(self.state.root, 0o711)
            blocked = next((p for p in self.state.root.parents if not os.stat(p).st_mode & 0o001), None)
            if blocked is not None and self.authorized_keys:
                raise ServeError(f"{self.user} cannot reach its keys through {blocked}: pass a --state-dir whose "
                                 "parent folders others may pass through, such as /srv/rdev.", 2)
        atomic_write(self.state.sshd_config, self.render_config().encode(), follow=False)

    def render_config(self) -> str:
        root_login = "yes" if self.password_login else "prohibit-password"
        keys_path = _quoted(self.state.authorized_keys).replace("%", "%%")
        lines = [
            "# Written by rdev: a private sshd for one user; the system's sshd is not touched.",
            f"Port {self.port}",
            f"ListenAddress {self.listen}",
            f"HostKey {_quoted(self.state.host_key)}",
            f"PidFile {_quoted(self.state.sshd_pid)}",
            f"AuthorizedKeysFile {keys_path}",
            f"AllowUsers {self.user}",
            "PubkeyAuthentication yes",
            f"PasswordAuthentication {'yes' if self.password_login else 'no'}",
            "KbdInteractiveAuthentication no",
            f"PermitRootLogin {root_login}",
            # PAM cannot run as an ordinary user, and pam_loginuid fails in many containers.
            "UsePAM no",
            # Our key file sits in a 0700 folder we created; StrictModes would also reject every
            # parent folder that is group-writable, such as /tmp for a test's state folder.
            "StrictModes no",
            "PrintMotd no",
            "X11Forwarding no",
            "AllowTcpForwarding yes",
            "ClientAliveInterval 30",
            "ClientAliveCountMax 4",
            "Subsystem sftp internal-sftp",
            # Every session carries the state folder's marker, so `stop` finds it even after the
            # listener that forked it was replaced.
            *setenv_lines({**self.environment, MARKER_VARIABLE: str(self.state.root)}),
        ]
        return "\n".join(lines) + "\n"

    def start(self, halt: threading.Event | None = None) -> None:
        """Start sshd in the foreground mode of its own session, so it outlives this process; give
        up (and end it) once `halt` is set."""
        if os.geteuid() == 0:
            # Privilege separation needs this folder, which only the system service creates.
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.state.sshd_log.unlink(missing_ok=True)
        # The marker in sshd's environment reaches its per-connection processes, which re-exec sshd.
        env = {**without_secrets(dict(os.environ)), MARKER_VARIABLE: str(self.state.root)}
        process = subprocess.Popen(
            [self.binary, "-D", "-f", str(self.state.sshd_config), "-E", str(self.state.sshd_log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, env=env,
        )
        try:
            self._wait_ready(process, halt)
        except BaseException:
            process.kill()
            process.wait()
            raise

    def _wait_ready(self, process: subprocess.Popen, halt: threading.Event | None) -> None:
        """Wait until OUR sshd answers: another server on the port would answer too, so the
        answer counts only once our process wrote its pid file, which sshd does after binding."""
        target = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.listen, self.listen)
        deadline = time.monotonic() + READY_TIMEOUT
        pause = 0.001  # sshd is up in milliseconds; a longer start (a slow disk, a busy host) is polled less often
        while time.monotonic() < deadline:
            if halt is not None and halt.is_set():
                raise ServeError("sshd's start was interrupted.")
            if process.poll() is not None:
                raise ServeError(f"sshd stopped at start: {self.last_log_line()}")
            if processes.read_pid(self.state.sshd_pid) == process.pid and _answers(target, self.port):
                return
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        raise ServeError(f"sshd did not answer on {target}:{self.port} within {READY_TIMEOUT:.0f} s: {self.last_log_line()}")

    def last_log_line(self) -> str:
        try:
            lines = self.state.sshd_log.read_text(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        return lines[-1] if lines else "it wrote no log."

    def alive(self) -> bool:
        return sshd_running(self.state) is not None

    def sessions(self) -> int:
        """Open SSH connections: the listener forks one child per connection."""
        pid = sshd_running(self.state)
        return len(processes.children(pid)) if pid else 0

    def public_host_keys(self) -> list[str]:
        fields = Path(f"{self.state.host_key}.pub").read_text().split()
        return [f"{fields[0]} {fields[1]}"]


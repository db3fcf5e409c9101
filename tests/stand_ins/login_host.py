"""A login host for the tests: a real local user with a password behind a real private sshd that takes
passwords and ~/.ssh/authorized_keys, as a lab container, a school server or a cluster's login node does."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.stand_ins.zoo import Namespace

PASSWORD = "pw-Sekr1t-4711"
# How rdev's bridge starts on a jump host (client_side.ssh.bridge.remote_command).
BRIDGE_MARK = "import base64,sys,zlib;exec(zlib.decompress(base64.b64decode"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PasswordHost:
    """sshd with a plain server's settings: passwords and ~/.ssh/authorized_keys."""

    user: str
    home: Path
    root: Path
    port: int
    setenv: dict[str, str] = field(default_factory=dict)  # what every session gets (a cluster's SLURM_CONF)
    extra: str = ""  # more sshd_config lines
    passwords: bool = True  # False: a host that takes keys only
    netns: Namespace | None = None  # a far host of the zoo: sshd runs in this network namespace
    address: str = "127.0.0.1"  # where sshd listens (in `netns`, if any)
    process: subprocess.Popen | None = None

    def start(self, new_host_key: bool = False) -> None:
        key = self.root / "host_key"
        if new_host_key:
            key.unlink(missing_ok=True)
        if not key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        setenv = "".join(f'SetEnv "{k}={v}"\n' for k, v in self.setenv.items())
        (self.root / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress {self.address}\nHostKey {key}\nPidFile {self.root}/sshd.pid\n"
            f"PasswordAuthentication {'yes' if self.passwords else 'no'}\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
            f"AuthorizedKeysFile .ssh/authorized_keys\nUsePAM no\nAllowUsers {self.user}\n{setenv}{self.extra}")
        (self.root / "sshd.pid").unlink(missing_ok=True)
        argv = ["/usr/sbin/sshd", "-D", "-f", str(self.root / "sshd_config"), "-E", str(self.root / "sshd.log")]
        self.process = subprocess.Popen(self.netns.argv(*argv) if self.netns else argv)
        for _ in range(200):
            # sshd writes its pid file once it listens; `ip netns exec` execs it, so the pid is the same.
            with suppress(OSError, ValueError):
                if int((self.root / "sshd.pid").read_text()) == self.process.pid:
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError((self.root / "sshd.log").read_text())

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(10)

    def reserve_again(self) -> None:
        """A new reservation: a new container (none of the old one's sessions live on), a new host key, and the
        home wiped of rdev's key."""
        self.stop()
        subprocess.run(["pkill", "-KILL", "-u", self.user], check=False, capture_output=True)
        (self.home / ".ssh" / "authorized_keys").unlink(missing_ok=True)
        self.start(new_host_key=True)

    def authorized_keys(self) -> str:
        return (self.home / ".ssh" / "authorized_keys").read_text()

    def authorize(self, public: str) -> None:
        """What a provider's console does: a public key into the user's authorized_keys, owned by the user."""
        folder = self.home / ".ssh"
        folder.mkdir(mode=0o700, exist_ok=True)
        with open(folder / "authorized_keys", "a") as keys:
            keys.write(public.strip() + "\n")
        (folder / "authorized_keys").chmod(0o600)
        shutil.chown(folder, self.user, self.user)
        shutil.chown(folder / "authorized_keys", self.user, self.user)

    def bridges(self) -> int:
        """rdev's bridge processes running as the user. The login shell's `sh -c ...` above one names it too; the
        bridge itself is the python3 that shell execs."""
        found = subprocess.run(["pgrep", "-c", "-u", self.user, "-f", "^python3 -c " + re.escape(BRIDGE_MARK)],
                               capture_output=True, text=True, check=False)
        assert found.returncode in (0, 1), found.stderr  # 1: none
        return int(found.stdout.strip() or 0)


@contextmanager
def login_host(home: Path, *, shell: str = "/bin/sh", setenv: dict[str, str] | None = None, extra: str = "",
               netns: Namespace | None = None, address: str = "127.0.0.1", folder: str = "pwsshd",
               passwords: bool = True) -> Iterator[PasswordHost]:
    """A new user with PASSWORD and a started PasswordHost for it; both gone afterwards. In a namespace of the
    zoo, sshd listens on port 22 of `address` there."""
    user = f"rdl{uuid.uuid4().hex[:8]}"
    user_home = Path("/tmp") / user  # the test HOME's folder is private to root; a user must reach its own home
    subprocess.run(["useradd", "--create-home", "--home-dir", str(user_home), "--shell", shell, user], check=True)
    subprocess.run(["chpasswd"], input=f"{user}:{PASSWORD}\n", text=True, check=True)
    root = home.parent / folder
    root.mkdir()
    server = PasswordHost(user, user_home, root, 22 if netns else free_port(), setenv=setenv or {}, extra=extra,
                          netns=netns, address=address, passwords=passwords)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        # The user's sessions (a master connection's among them) outlive the listener; userdel refuses a
        # user with processes, so end them first.
        subprocess.run(["pkill", "-KILL", "-u", user], check=False, capture_output=True)
        for _ in range(100):
            if subprocess.run(["userdel", "--remove", user], check=False, capture_output=True).returncode == 0:
                break
            time.sleep(0.05)

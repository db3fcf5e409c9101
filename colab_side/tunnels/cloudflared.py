"""cloudflared: a quick tunnel (random *.trycloudflare.com name) or a named tunnel with a token.

pycloudflared's `try_cloudflare` only serves http://, so rdev runs the binary itself with
`ssh://`. Its log is read continuously by a thread: cloudflared blocks once a pipe fills up.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import threading
import time
from pathlib import Path

from bootstrap import binaries
from colab_side import processes
from colab_side.environment import without_secrets
from colab_side.errors import ServeError
from colab_side.tunnels import Endpoint, Tunnel

START_TIMEOUT = 60.0
_QUICK_HOST = re.compile(r"https://([a-z0-9-]+\.trycloudflare\.com)")
_CONNECTED = "Registered tunnel connection"


class CloudflaredTunnel(Tunnel):
    name = "cloudflared"

    def __init__(self, state: Path, binary: str | None = None, hostname: str | None = None,
                 token: str | None = None) -> None:
        self.state = state
        self.explicit_binary = binary
        self.hostname = hostname
        self.token = token
        self.binary = ""
        self.found_host = hostname
        self.process: subprocess.Popen | None = None
        self.lines: collections.deque[str] = collections.deque(maxlen=20)

    @property
    def pid_file(self) -> Path:
        return self.state / "tunnel.pid"

    def prepare(self) -> None:
        """Find (or download) the binary; `serve` runs this while sshd is being set up."""
        try:
            self.binary = binaries.cloudflared(self.explicit_binary)
        except binaries.BinaryUnavailable as err:
            raise ServeError(str(err)) from None

    def start(self, local_port: int) -> Endpoint:
        argv = [self.binary, "tunnel", "--no-autoupdate", "--pidfile", str(self.pid_file)]
        env = without_secrets(dict(os.environ))
        if self.token:
            # The token goes through the environment, which `ps` does not show; cloudflared reads TUNNEL_TOKEN.
            env["TUNNEL_TOKEN"] = self.token
            argv += ["run", "--url", f"ssh://127.0.0.1:{local_port}"]
        else:
            argv += ["--url", f"ssh://127.0.0.1:{local_port}"]
        self.lines.clear()
        found = threading.Event()
        # The log goes to a file, not a pipe: cloudflared outlives this process (after --no-keep-alive
        # or an interrupt), and writing to a pipe nobody reads would block or kill it.
        log_file = self.state / "tunnel.log"
        with open(log_file, "w") as log:
            self.process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            start_new_session=True)
        self.pid_file.write_text(f"{self.process.pid}\n")
        threading.Thread(target=self._read, args=(self.process, log_file, found), daemon=True).start()
        if not found.wait(START_TIMEOUT) or self.process.poll() is not None:
            self.stop()
            last = " | ".join(list(self.lines)[-3:]) or "it printed nothing"
            raise ServeError(f"cloudflared gave no tunnel within {START_TIMEOUT:.0f} s; its last lines: {last}")
        return Endpoint("cloudflared", self.found_host, 22)

    def _read(self, process: subprocess.Popen, log_file: Path, found: threading.Event) -> None:
        """Follow the log until the tunnel is connected (or the process ends)."""
        with open(log_file, errors="replace") as log:
            while not found.is_set():
                line = log.readline()
                if not line:
                    if process.poll() is not None:
                        break
                    time.sleep(0.05)
                    continue
                self.lines.append(line.rstrip())
                match = _QUICK_HOST.search(line)
                if match and not self.hostname:
                    self.found_host = match.group(1)
                if _CONNECTED in line and self.found_host:
                    found.set()
        found.set()  # the process ended: wake the waiter, which then sees it has exited

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        stop_tunnel(self.state)
        if self.process is not None:
            self.process.wait(timeout=10)


def stop_tunnel(state: Path) -> bool:
    return processes.stop_tree(state / "tunnel.pid", str(state / "tunnel.pid"))


"""`rdev connect` over a slow link (150 ms round trip), against one bare `ssh HOST true` over the same link, and the
SSH handshakes (TCP connections) each makes; and the editor's server sent to a host without internet over a
10 MB/s link, against `scp` of the same archives.

This machine's kernel has no netem, so the delay comes from a relay in this process: every chunk read from one
side is written to the other 75 ms later, in order, each way. Three hosts go through it: a ticket host (`python -m
colab_side serve`, its ticket pointed at the relay), a password host (a test user's sshd with rdev's key already
installed: a reconnect), and a password host behind a jump host that refuses TCP forwarding, reached through
rdev's bridge (a reconnect too). The baseline is one bare login with the user's own key through the same relay;
behind the jump host, one bare login whose ProxyCommand runs `nc` on the jump host (ssh's own way without
forwarding). rdev runs as a user has it: installed from a wheel, its `rdev` command. Runs are interleaved and the medians
compared. Needs root (test users). Target: <= 1.1x, one handshake each; the push <= 1.2x scp.

    .venv/bin/python bench/slow_link.py [--runs N]
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._setup import (
    REPO,
    arguments,
    close_masters,
    installed,
    needs_root,
    rdev,
    sandbox,
    serve,
    timed as run,
    unserve,
)
from bootstrap import ticket as tickets
from tests.stand_ins.login_host import PASSWORD, PasswordHost, login_host

DELAY = 0.075  # each way
TARGET = 1.1
PUSH_TARGET = 1.2
RATE = 10e6  # bytes a second
COMMIT = "4" * 40


@dataclass
class Relay:
    """127.0.0.1:port here -> 127.0.0.1:target, every chunk held DELAY each way (and paced to `rate` bytes a second,
    if given); counts its connections."""

    target: int
    rate: float | None = None
    port: int = 0
    connections: int = 0

    def start(self) -> Relay:
        ready = threading.Event()
        threading.Thread(target=lambda: asyncio.run(self._serve(ready)), daemon=True).start()
        ready.wait(10)
        return self

    async def _serve(self, ready: threading.Event) -> None:
        server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await server.serve_forever()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await asyncio.sleep(DELAY)  # the SYN's way there (and its answer's way back, below)
        far_reader, far_writer = await asyncio.open_connection("127.0.0.1", self.target)
        await asyncio.sleep(DELAY)
        with contextlib.suppress(ConnectionError):  # either side may go first
            await asyncio.gather(self._pipe(reader, far_writer), self._pipe(far_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if not data:
                    writer.close()
                    return
                writer.write(data)
                await writer.drain()
                if self.rate:
                    await asyncio.sleep(len(data) / self.rate)

        delivering = asyncio.create_task(deliver())
        while True:
            data = await reader.read(65536)
            queue.put_nowait((time.monotonic() + DELAY, data))
            if not data:
                break
        await delivering


def measure(name: str, relay: Relay, runs: int, connect: list[str], bare: list[str], env: dict[str, str],
            names: tuple[str, ...]) -> float:
    ours, baseline, handshakes = [], [], []
    for _ in range(runs):
        close_masters(env, *names)
        before = relay.connections
        ours.append(rdev(env, *connect))
        handshakes.append(relay.connections - before)
        close_masters(env, *names)
        baseline.append(run(bare, env))
    ratio = statistics.median(ours) / statistics.median(baseline)
    print(f"{name:34} rdev connect {statistics.median(ours) * 1000:6.0f} ms  bare ssh {statistics.median(baseline) * 1000:6.0f} ms"
          f"  ratio {ratio:.2f}x  handshakes {max(handshakes)}")
    return ratio


def main() -> int:
    runs = arguments(__doc__, 5).runs
    if not needs_root("a test user"):
        return 1
    root, home, env = sandbox()
    installed(root)
    own = home / ".ssh" / "own"
    own.parent.mkdir(mode=0o700)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(own)], check=True)
    worst = 0.0
    try:
        with login_host(home) as host:
            host.authorize(own.with_suffix(".pub").read_text())
            relay = Relay(host.port).start()
            # The password host, its key installed once (not measured), then its reconnect through the slow link.
            rdev(env, "add", "lab", "--host", "127.0.0.1", "--port", str(relay.port), "--user", host.user)
            rdev(env, "connect", "lab", "--password-stdin", "--no-open", stdin=PASSWORD + "\n")
            worst = max(worst, measure("password host (reconnect)", relay, runs, ["connect", "lab", "--no-open"],
                                       bare(root, own, relay.port, host.user), env, ("lab",)))
            worst_push = push(root, env, host, runs)
        worst = max(worst, behind_a_jump_host(root, env, own, runs))
        ticket = serve(env, root / "server")
        relay = Relay(ticket.port).start()
        through = tickets.Ticket(**{**asdict(ticket), "port": relay.port}).encode()
        worst = max(worst, measure("ticket host", relay, runs, ["connect", "box", "--ticket", through, "--no-open"],
                                   bare(root, home / ".ssh" / "rdev" / "id_ed25519", relay.port, ticket.user), env,
                                   ("box",)))
    finally:
        unserve(env, root / "server")
        shutil.rmtree(root, ignore_errors=True)
    print(f"worst ratio {worst:.2f}x (target <= {TARGET}x); push {worst_push:.2f}x (target <= {PUSH_TARGET}x)")
    return 0 if worst <= TARGET and worst_push <= PUSH_TARGET else 1


def push(root: Path, env: dict[str, str], host: PasswordHost, runs: int) -> float:
    """The editor's server (a 50 MB server archive and the CLI's) sent inside the runtime zip and unpacked there,
    against `scp` of the same two files, through a 10 MB/s link with the same delay; both over a warm master."""
    from bootstrap import editor_servers
    from tests.stand_ins.downloads import cli_archive, server_archive

    relay = Relay(host.port, rate=RATE).start()
    rdev(env, "add", "slow", "--host", "127.0.0.1", "--port", str(relay.port), "--user", host.user)
    rdev(env, "connect", "slow", "--no-open")
    spec = f"code:stable:{COMMIT}"
    urls = [d.url for d in editor_servers.downloads(editor_servers.parse(spec), "x64")]
    files = {editor_servers.archive_name(urls[0]): root / "server.tar.gz", editor_servers.archive_name(urls[1]): root / "cli.tar.gz"}
    (root / "server.tar.gz").write_bytes(server_archive(COMMIT, padding=50_000_000))
    (root / "cli.tar.gz").write_bytes(cli_archive())
    code = ("import os, sys; sys.path.insert(0, {repo!r}); os.environ['HOME'] = {home!r}\n"
            "from client_side.ssh import shipped\n"
            "r = shipped.run('slow', 'prefetch', '--carried', {spec!r}, carrying={files!r}, timeout=600)\n"
            "sys.exit(r.returncode)")
    ours, baseline = [], []
    for _ in range(runs):
        subprocess.run(["ssh", "-F", f"{env['HOME']}/.ssh/config", "slow", "rm -rf ~/.vscode-server"], env=env, check=True)
        ours.append(run([sys.executable, "-c", code.format(repo=str(REPO), home=env["HOME"], spec=spec,
                                                           files={k: str(v) for k, v in files.items()})], env))
        baseline.append(run(["scp", "-O", "-q", "-F", f"{env['HOME']}/.ssh/config", *map(str, files.values()), "slow:"], env))
    ratio = statistics.median(ours) / statistics.median(baseline)
    print(f"{'push to a host without internet':34} rdev {statistics.median(ours) * 1000:6.0f} ms  scp {statistics.median(baseline) * 1000:6.0f} ms"
          f"  ratio {ratio:.2f}x")
    return ratio


def behind_a_jump_host(root: Path, env: dict[str, str], own: Path, runs: int) -> float:
    """`inner` behind `gw`, whose sshd refuses TCP forwarding; only the laptop's link to `gw` is slow. rdev's key is
    installed on both (not measured), and `inner` is then reached through rdev's bridge."""
    home = Path(env["HOME"])
    with login_host(home, folder="gw", extra="AllowTcpForwarding no\n") as gateway, \
            login_host(home, folder="inner") as inner:
        for host in (gateway, inner):
            host.authorize(own.with_suffix(".pub").read_text())
        relay = Relay(gateway.port).start()
        rdev(env, "add", "gw", "--host", "127.0.0.1", "--port", str(relay.port), "--user", gateway.user)
        rdev(env, "connect", "gw", "--password-stdin", "--no-open", stdin=PASSWORD + "\n")
        rdev(env, "add", "inner", "--host", "127.0.0.1", "--port", str(inner.port), "--user", inner.user, "--jump", "gw")
        rdev(env, "connect", "inner", "--password-stdin", "--no-open", stdin=PASSWORD + "\n")
        through_nc = " ".join(bare(root, own, relay.port, gateway.user)[:-1] + ["nc", "127.0.0.1", "%p"])
        baseline = bare(root, own, inner.port, inner.user)
        baseline[3:3] = ["-o", f"ProxyCommand={through_nc}"]
        return measure("password host through the bridge", relay, runs, ["connect", "inner", "--no-open"], baseline,
                       env, ("inner", "gw"))


def bare(root: Path, key: Path, port: int, user: str) -> list[str]:
    """One plain login with `key` to 127.0.0.1:`port` (the relay's, or a ProxyCommand's), running `true`."""
    return ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
            f"UserKnownHostsFile={root}/bare_known_hosts", "-i", str(key), "-p", str(port), f"{user}@127.0.0.1", "true"]



if __name__ == "__main__":
    sys.exit(main())

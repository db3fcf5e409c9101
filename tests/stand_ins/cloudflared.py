"""A stand-in for the cloudflared binary, for this machine's side of the network only.

`tunnel --url ssh://127.0.0.1:PORT` prints the real quick-tunnel banner on stderr and records the
made-up hostname in $RDEV_STANDIN_DIR; `access ssh --hostname H` looks that name up and forwards
its stdin/stdout to the recorded port on loopback, as the real one does through Cloudflare's edge.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

WORDS = ["amber", "brook", "cedar", "delta", "ember", "fjord", "grove", "harbor", "iris", "juniper", "kite", "lumen"]


def log(level: str, message: str) -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"{stamp} {level} {message}", file=sys.stderr, flush=True)


def records() -> Path:
    return Path(os.environ["RDEV_STANDIN_DIR"])


def tunnel(args: argparse.Namespace) -> int:
    target = args.url.removeprefix("ssh://")
    if args.pidfile:
        Path(args.pidfile).write_text(f"{os.getpid()}\n")
    if os.environ.get("TUNNEL_TOKEN"):
        host = os.environ.get("RDEV_STANDIN_HOSTNAME", "named.example.com")
    else:
        host = "-".join(random.sample(WORDS, 4)) + ".trycloudflare.com"
        log("INF", "Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick way to "
                   "experiment and try it out.")
        log("INF", "Requesting new quick Tunnel on trycloudflare.com...")
        log("INF", "+" + "-" * 92 + "+")
        log("INF", "|  Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):  |")
        log("INF", f"|  https://{host}".ljust(93) + "|")
        log("INF", "+" + "-" * 92 + "+")
    (records() / host).write_text(target)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        log("INF", "Registered tunnel connection connIndex=0 connection=0a1b2c3d event=0 ip=198.41.192.7 location=ams01 protocol=quic")
        while True:
            time.sleep(3600)
    finally:
        (records() / host).unlink(missing_ok=True)


def access(args: argparse.Namespace) -> int:
    record = records() / args.hostname
    if not record.exists():
        log("ERR", f"failed to connect to origin error=\"websocket: bad handshake\" originURL=https://{args.hostname}")
        return 1
    host, port = record.read_text().rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))

    def upstream() -> None:
        while data := os.read(0, 65536):
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)

    threading.Thread(target=upstream, daemon=True).start()
    while data := sock.recv(65536):
        os.write(1, data)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="cloudflared")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("tunnel")
    run.add_argument("--no-autoupdate", action="store_true")
    run.add_argument("--pidfile")
    run.add_argument("--url")
    run.add_argument("mode", nargs="?")
    ssh = commands.add_parser("access").add_subparsers(dest="what", required=True).add_parser("ssh")
    ssh.add_argument("--hostname", required=True)
    args = parser.parse_args()
    return tunnel(args) if args.command == "tunnel" else access(args)


if __name__ == "__main__":
    sys.exit(main())

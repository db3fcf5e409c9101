"""A stand-in for the ngrok agent, for this machine's side of the network only.

`start --none --log stdout ...` prints the real agent's logfmt lines (what pyngrok's parser reads)
and serves the local agent API on loopback; `POST /api/tunnels` with a tcp tunnel opens a port on
127.0.0.1 that forwards to the tunnel's addr, as the real service does from *.tcp.ngrok.io.
The token comes from NGROK_AUTHTOKEN like the real agent's: missing, "malformed-*" or
"nocard-*" tokens produce ngrok's real failures (ERR_NGROK_4018, 105, 8013).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TUNNELS: dict[str, dict] = {}


def log(level: str, message: str, **fields: str) -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")
    extra = "".join(f" {k}={json.dumps(v) if ' ' in v or not v else v}" for k, v in fields.items())
    print(f"t={stamp} lvl={level} msg={json.dumps(message)}{extra}", flush=True)


def fail(error: str) -> int:
    log("eror", "failed to reconnect session", obj="tunnels.session", err=error)
    log("eror", "session closing", obj="tunnels.session", err=error)
    log("crit", "command failed", err=error)
    return 1


def forward(listener: socket.socket, target: tuple[str, int]) -> None:
    while True:
        client, _ = listener.accept()
        upstream = socket.create_connection(target)
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=pipe, args=(src, dst), daemon=True).start()


def pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


class Api(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/api/tunnels":
            self.reply(200, {"tunnels": list(TUNNELS.values()), "uri": "/api/tunnels"})
        else:
            self.reply(404, {"error_code": 100, "status_code": 404, "msg": "not found", "details": {}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if os.environ["NGROK_AUTHTOKEN"].startswith("nocard"):
            err = ("failed to start tunnel: You must add a credit or debit card before you can use TCP endpoints on "
                   "a free account. We require a valid card as a way to combat abuse and keep the internet a safe "
                   "place. This card will NOT  be charged.\nAdd a card to your account here: "
                   "https://dashboard.ngrok.com/settings#id-verification\r\n\r\nERR_NGROK_8013\r\n")
            log("eror", "start tunnel listen failed", obj="tunnels.session", err=err)
            self.reply(502, {"error_code": 103, "status_code": 502, "msg": "failed to start tunnel",
                             "details": {"err": err}})
            return
        host, port = body["addr"].rsplit(":", 1)
        listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=forward, args=(listener, (host, int(port))), daemon=True).start()
        url = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
        tunnel = {"name": body["name"], "ID": os.urandom(16).hex(), "uri": f"/api/tunnels/{body['name']}",
                  "public_url": url, "proto": "tcp", "config": {"addr": body["addr"], "inspect": False},
                  "metrics": {}}
        TUNNELS[body["name"]] = tunnel
        log("info", "started tunnel", obj="tunnels", name=body["name"], addr=f"//{body['addr']}", url=url)
        self.reply(201, tunnel)


def start(args: argparse.Namespace) -> int:
    log("info", "open config file", path=args.config[-1] if args.config else "", err="<nil>")
    token = os.environ.get("NGROK_AUTHTOKEN", "")
    api = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    log("info", "starting web service", obj="web", addr=f"127.0.0.1:{api.server_address[1]}", allow_hosts="[]")
    if not token:
        return fail("authentication failed: Usage of ngrok requires a verified account and authtoken.\n\nSign up for "
                    "an account: https://dashboard.ngrok.com/signup\nInstall your authtoken: "
                    "https://dashboard.ngrok.com/get-started/your-authtoken\r\n\r\nERR_NGROK_4018\r\n")
    if token.startswith("malformed"):
        return fail(f"authentication failed: The authtoken you specified does not look like a proper ngrok "
                    f"authtoken.\nYour authtoken: {token}\nInstructions to install your authtoken are on your "
                    f"ngrok dashboard:\nhttps://dashboard.ngrok.com/get-started/your-authtoken\r\n\r\nERR_NGROK_105\r\n")
    log("info", "client session established", obj="tunnels.session")
    log("info", "tunnel session started", obj="tunnels.session")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    api.serve_forever()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="ngrok")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("start")
    run.add_argument("--none", action="store_true")
    run.add_argument("--log")
    run.add_argument("--log-format")
    run.add_argument("--config", action="append")
    run.add_argument("--authtoken")
    return start(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())

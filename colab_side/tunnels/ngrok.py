"""ngrok: a TCP tunnel; the laptop connects straight to the host and port ngrok hands out.

rdev starts the agent itself (`ngrok start --none`, as pyngrok does) and uses pyngrok for the
rest: its log-line parser and its client for the agent's local API, where the tunnel is opened.
pyngrok's own process start cannot be used: it puts the auth token on the command line, where
`ps` shows it, and ties the agent to this process by a pipe. The token goes in the agent's
environment (NGROK_AUTHTOKEN) and nowhere else.
"""

from __future__ import annotations

import os
import re
import threading
from urllib.parse import urlsplit

from bootstrap import binaries
from colab_side.environment import without_secrets
from colab_side.errors import ServeError
from colab_side.state import StateFolder
from colab_side.tunnels.base import Endpoint
from colab_side.tunnels.process import ProcessTunnel

TOKEN_VARIABLE = "NGROK_AUTHTOKEN"
API_TIMEOUT = 30.0
_SIGN_UP = "https://dashboard.ngrok.com/get-started/your-authtoken"
NO_TOKEN = (f"ngrok needs your auth token ({_SIGN_UP}): set {TOKEN_VARIABLE}, or on Colab add a secret named "
            f"{TOKEN_VARIABLE} and give this notebook access; or use --tunnel cloudflared, which needs none.")
# ngrok's documented error codes for what users run into, each turned into its fix.
_FAILURES = (
    ("ERR_NGROK_4018", NO_TOKEN),
    ("ERR_NGROK_105", f"ngrok says the auth token is not a token: copy it again from {_SIGN_UP}."),
    ("ERR_NGROK_106", f"ngrok says the auth token is an old (v1) one: copy the current one from {_SIGN_UP}."),
    ("ERR_NGROK_107", f"ngrok rejected the auth token (it may have been reset): copy the current one from {_SIGN_UP}."),
    ("ERR_NGROK_108", ("Your ngrok account already runs an agent elsewhere, and the free plan allows one: "
                      "stop the other (https://dashboard.ngrok.com/agents) or use --tunnel cloudflared.")),
    ("ERR_NGROK_8013", ("ngrok opens TCP tunnels on a free account only once a card is on it (it is not charged): "
                       "add one at https://dashboard.ngrok.com/settings#id-verification, or use --tunnel cloudflared.")),
)


def auth_token(given: str | None = None) -> str:
    """The token from the argument, NGROK_AUTHTOKEN, or Colab's secrets, in that order."""
    token = (given or os.environ.get(TOKEN_VARIABLE) or _colab_secret() or "").strip()
    if not token:
        raise ServeError(NO_TOKEN, 2)
    if any(ord(c) < 33 for c in token):
        raise ServeError("The ngrok auth token must be one word on one line: copy it again.", 2)
    return token


def _colab_secret() -> str | None:
    try:
        from google.colab import userdata  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        return userdata.get(TOKEN_VARIABLE)
    except Exception:  # noqa: BLE001 - no such secret, or no access granted: either way, none from here
        return None


class NgrokTunnel(ProcessTunnel):
    name = "ngrok"
    find_binary = staticmethod(binaries.ngrok)

    def __init__(self, state: StateFolder, binary: str | None = None, token: str | None = None) -> None:
        super().__init__(state, binary)
        self.token = auth_token(token)
        self.api_url: str | None = None
        self.session = False
        self.error: str | None = None

    def start(self, local_port: int, halt: threading.Event | None = None) -> Endpoint:
        config = self.state.ngrok_config
        # Our own config file, so a token in the user's ngrok config never overrides the one given here.
        config.write_text('version: "3"\n')
        env = without_secrets(dict(os.environ))
        env[TOKEN_VARIABLE] = self.token
        self.api_url, self.session, self.error = None, False, None
        try:
            self._launch([self.binary, "start", "--none", "--log", "stdout", "--log-format", "logfmt",
                          "--config", str(config)], env, halt)
            return self._open(local_port)
        except ServeError as err:
            self.stop()
            self._scrub_log()
            raise ServeError(self._scrubbed(str(err)), err.exit_code) from None

    def _ready(self, line: str) -> bool:
        from pyngrok.log import NgrokLog

        log = NgrokLog(line)
        if log.lvl in ("ERROR", "CRITICAL") and log.err:
            self.error = log.err
        elif log.msg and "starting web service" in log.msg and log.addr:
            self.api_url = f"http://{log.addr}"
        elif log.msg and "client session established" in log.msg:
            self.session = True
        return self.api_url is not None and self.session

    def _failure(self) -> str:
        return _explain(self.error) if self.error else super()._failure()

    def _open(self, local_port: int) -> Endpoint:
        """Ask the agent's API for the TCP tunnel and turn its public URL into the endpoint."""
        from pyngrok.exception import PyngrokError, PyngrokNgrokHTTPError
        from pyngrok.ngrok import api_request

        try:
            answer = api_request(f"{self.api_url}/api/tunnels", method="POST", timeout=API_TIMEOUT,
                                 data={"name": "rdev-ssh", "proto": "tcp", "addr": f"127.0.0.1:{local_port}"})
        except PyngrokNgrokHTTPError as err:
            raise ServeError(_explain(err.body)) from None
        except PyngrokError as err:
            raise ServeError(f"ngrok's local API did not answer ({err}).") from None
        url = urlsplit(str(answer.get("public_url", "")))
        if url.scheme != "tcp" or not url.hostname or not url.port:
            raise ServeError(f"ngrok answered with {answer.get('public_url')!r}, not a tcp:// address.")
        return Endpoint("ngrok", url.hostname, url.port)

    def _scrubbed(self, text: str) -> str:
        return text.replace(self.token, "[your token]")

    def _scrub_log(self) -> None:
        """ngrok may repeat a rejected token in its log; keep it out of the state folder."""
        try:
            text = self.state.tunnel_log.read_text(errors="replace")
        except OSError:
            return
        if self.token in text:
            self.state.tunnel_log.write_text(self._scrubbed(text))


def _explain(error: str) -> str:
    codes = set(re.findall(r"ERR_NGROK_\d+", error))
    for code, sentence in _FAILURES:
        if code in codes:
            return sentence
    first = " ".join(error.split())[:300]
    return f"ngrok failed: {first}"

"""A Colab runtime reached through Google's own SSH route: `colab ssh --proxy-mode` as the ProxyCommand.

`prepare` finds the CLI, makes sure the session exists and its token is fresh (in the foreground,
see `colab_cli`), and tells whether the host key must be pinned: on first contact, and when the
session now names another runtime (a changed key on the same runtime is refused by ssh).
`admit` opens the master connection before anything else does, since the proxy allows one SSH
session per runtime and every later connection (the probe, the editor's) shares it. The key is
pinned from that very connection, through the authenticated proxy, and the same connection gives
the runtime's shells the notebook kernel's environment.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from bootstrap import validate
from client_side.colab import cli as colab_cli, sessions as colab_sessions
from client_side.errors import RdevError, printable, split
from client_side.inputs import checked
from client_side.kinds.pipeline import Prepared
from client_side.local import paths, store
from client_side.local.locking import setting_up
from client_side.local.registry import HostEntry
from client_side.ssh import config as sshconfig, known_hosts, probe, shipped

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The first connection waits for the CLI to start and the proxy to answer.
_FIRST_CONNECTION_TIMEOUT = 120


def prepare(name: str, *, session: str | None, gpu: str | None, colab: str | None, remembered: HostEntry | None,
            accept_new_host_key: bool, say: Callable[[str], None]) -> Prepared:
    """The host for Colab session `session` (else the one remembered), its runtime started if need be."""
    chosen = checked(validate.colab_session, session or (remembered.colab_session if remembered else None) or "")
    chosen_gpu = checked(validate.colab_gpu, gpu) if gpu is not None else (remembered.gpu if remembered else None)
    entry = HostEntry(name=name, host="colab-runtime", port=22, user="root", tunnel="colab-cli", workdir="/content",
                      runtime="colab", editor=remembered.editor if remembered else None, colab_session=chosen,
                      colab_endpoint="unknown", colab=colab_cli.find(colab, remembered.colab if remembered else None),
                      gpu=chosen_gpu)
    sshconfig.block(entry)  # a path the ProxyCommand cannot hold is refused before a runtime is created
    found = colab_cli.ready_session(entry.colab or "", chosen, chosen_gpu, name, say)
    try:
        entry = replace(entry, colab_endpoint=validate.colab_endpoint(found.endpoint))
    except validate.InvalidValue:
        raise RdevError(f"Google's colab CLI names the runtime of session {chosen} {found.endpoint!r}, which rdev "
                        "cannot put into an SSH config", f"check it with 'colab sessions'; 'rdev stop {name}' and "
                        "connecting again gives a new runtime.") from None
    same_runtime = remembered is not None and remembered.colab_endpoint == found.endpoint
    repin = accept_new_host_key or not (same_runtime and known_hosts.pinned(name))
    if repin and remembered is not None and remembered.colab_endpoint and not same_runtime:
        say(f"Colab session {chosen} now runs a new runtime; rdev pins its host key.")
    opener = _Opener(name=name, repin=repin, failures=colab_cli.failures(chosen), say=say)
    return Prepared(entry=entry, host_keys=() if repin else None, admit=opener.admit,
                    done=f"ssh works through Colab's proxy (session {chosen})", failures=opener.failures,
                    prefetch=True)


@dataclass(frozen=True)
class _Opener:
    name: str
    repin: bool
    failures: probe.Failures
    say: Callable[[str], None]

    def admit(self) -> None:
        """Open the master connection (pinning the key it shows when asked to), and on it write the
        notebook kernel's environment where the runtime's shells read it."""
        options = ["-o", "ConnectTimeout=60"]
        scratch = paths.rdev_ssh_dir() / f".{self.name}.first-contact"
        paths.proxy_log(self.name).unlink(missing_ok=True)  # what it holds must be this connection's
        if self.repin:
            scratch.unlink(missing_ok=True)
            # accept-new only into a file of its own: rdev then pins what this connection verified.
            options += ["-o", f"UserKnownHostsFile={sshconfig.config_path(scratch)}", "-o", "StrictHostKeyChecking=accept-new",
                        "-o", "HashKnownHosts=no"]
        try:
            result = shipped.run(self.name, "notebook.kernel_env", options=tuple(options),
                                 timeout=_FIRST_CONNECTION_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise RdevError(f"Cannot reach {self.name}: the first connection did not finish within "
                            f"{_FIRST_CONNECTION_TIMEOUT} s", f"check the runtime with 'colab status' and run "
                            f"'rdev connect {self.name}' again.") from None
        try:
            if result.returncode == 255:
                raise self._failure(result.stderr.decode(errors="replace"))
            if self.repin:
                self._pin(scratch)
        finally:
            scratch.unlink(missing_ok=True)
        self._report(result)

    def _failure(self, stderr: str) -> RdevError:
        """What failed: the guard's own sentence if it refused, else what the CLI or ssh said."""
        try:
            said = paths.proxy_log(self.name).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            said = ""
        refusal = next((line[len("rdev: "):] for line in said.splitlines() if line.startswith("rdev: ")), None)
        if refusal:
            return RdevError(*split(refusal))
        return probe.failure(self.name, f"{stderr}\n{said}", self.failures)

    def _pin(self, scratch: Path) -> None:
        try:
            lines = scratch.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            lines = []
        keys = tuple(dict.fromkeys(" ".join(line.split()[1:3]) for line in lines if len(line.split()) >= 3))
        if not keys:
            raise RdevError(f"ssh reached {self.name} but recorded no host key to pin",
                            f"run 'rdev connect {self.name}' again; 'ssh -v {self.name}' shows more.")
        store.pin(self.name, keys)
        self.say(f"Pinned {self.name}'s host key {known_hosts.fingerprint(keys[0])} (shown through Colab's "
                 "authenticated proxy).")

    def _report(self, result: subprocess.CompletedProcess) -> None:
        lines = result.stdout.decode(errors="replace").strip().splitlines()
        try:
            report = json.loads(lines[-1]) if result.returncode == 0 and lines else None
        except ValueError:
            report = None
        if not isinstance(report, dict):
            why = [printable(line) for line in result.stderr.decode(errors="replace").strip().splitlines()[-1:]]
            why = why or ["no output"]
            self.say(f"{self.name}: the notebook kernel's environment was not set up ({why[0]}); the terminal has "
                     "the SSH session's own.")
        elif report.get("kernel") is None:
            self.say(f"{self.name}: no notebook kernel runs on the runtime yet, so the terminal has the SSH session's "
                     f"environment; 'rdev connect {self.name}' again once a notebook is attached picks up its GPU "
                     "variables.")
        else:
            # Names from the runtime are shown only as names: nothing there may reach the terminal as control codes.
            names = [n for n in report.get("variables", []) if isinstance(n, str) and _NAME.fullmatch(n)]
            self.say(f"{self.name}: shells on the runtime get the notebook kernel's environment "
                     f"({', '.join(names) or 'nothing was missing'}).")



def stop(entry: HostEntry, say: Callable[[str], None]) -> None:
    """End the Colab runtime of `entry` with the CLI's stop; the host stays known."""
    session = entry.colab_session or ""
    colab = colab_cli.find(None, entry.colab)
    if colab_sessions.read(session) is None:
        say(f"Colab session {session} had already ended; nothing runs for {entry.name}.")
        return
    with setting_up(entry.name):
        # Its ProxyCommand holds the runtime's one WebSocket; the runtime is going anyway.
        probe.close_master(entry.name)
        colab_cli.stop(colab, session)
    say(f"Stopped Colab session {session}. 'rdev connect {entry.name}' starts a new runtime.")

"""The hosts rdev knows: `HostEntry` values kept in a TOML file in the user config folder.

Read with tomllib (tomli before 3.11), rendered with tomli-w; `store` writes it, together with the
SSH config and the pinned keys.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from bootstrap import validate
from client_side.errors import BadInput, RdevError
from client_side.local import paths

if TYPE_CHECKING:
    from bootstrap.ticket import Ticket

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


@dataclass(frozen=True)
class HostEntry:
    """One host as rdev writes it into the SSH config and opens it in the editor."""

    name: str
    host: str
    port: int
    user: str
    tunnel: str = "direct"
    workdir: str = "~"
    runtime: str = "generic"
    expires: str | None = None
    cloudflared: str | None = None  # the laptop's cloudflared, for a host behind a cloudflared tunnel
    started: str | None = None  # when the server of the ticket in use started, to tell a newer ticket
    ticket_file: str | None = None  # where new tickets for this host appear (e.g. a synced Drive folder)
    login: bool = False  # added with `rdev add`: a password host, reached without a ticket
    jump: str | None = None  # ProxyJump: a registered name or [user@]host[:port]
    bridge: bool = False  # the jump host refuses TCP forwarding: reached through rdev's bridge on it instead
    identity: str | None = None  # the user's own key that installs rdev's key on a host that takes keys only
    python: str | None = None  # the host's Python for rdev's runtime side, where its python3 is too old
    preset: str | None = None
    editor: str | None = None  # the editor the user chose for this host with --editor (a name or a path)
    # Reached through Google's `colab ssh --proxy-mode`: the CLI's session name, the runtime (assignment
    # endpoint) whose host key is pinned, the CLI binary, and the GPU asked for when rdev creates one.
    colab_session: str | None = None
    colab_endpoint: str | None = None
    colab: str | None = None
    gpu: str | None = None
    # A Slurm cluster's compute node, reached through its login node (`jump`): the sbatch options of
    # rdev's job, and the job whose sshd is written here.
    slurm: str | None = None
    slurm_job: str | None = None
    slurm_node: str | None = None
    # Minutes without a session, run or GPU process after which rdev's job ends itself (None: 60; 0: never).
    idle_stop: int | None = None


def from_ticket(name: str, ticket: Ticket, *, cloudflared: str | None, ticket_file: str | None,
                editor: str | None) -> HostEntry:
    return HostEntry(name=name, host=ticket.host, port=ticket.port, user=ticket.user, tunnel=ticket.tunnel,
                     workdir=ticket.workdir, runtime=ticket.runtime, expires=ticket.expires, cloudflared=cloudflared,
                     started=ticket.started, ticket_file=ticket_file, editor=editor)


def load() -> dict[str, HostEntry]:
    path = paths.registry()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise RdevError(f"The host list {path} cannot be read ({err})", "fix or remove that file.") from None
    hosts = data.get("hosts", {})
    if not isinstance(hosts, dict) or not all(isinstance(t, dict) for t in hosts.values()):
        raise RdevError(f"The host list {path} is not laid out as rdev writes it", "fix or remove that file.")
    return {name: _entry(name, table, path) for name, table in hosts.items()}


def _entry(name: str, table: dict, path: Path) -> HostEntry:
    """A HostEntry from its TOML table, checked like any user input: the file may have been edited."""
    known = {f.name for f in fields(HostEntry)}
    try:
        entry = HostEntry(**{k: v for k, v in table.items() if k in known}, name=name)
        if (validate.name(entry.name) != name or validate.host(entry.host) != entry.host
                or not isinstance(entry.port, int)):
            raise validate.InvalidValue("not as rdev writes it")
        validate.port(entry.port)
        validate.user(entry.user)
        validate.remote_path(entry.workdir)
        if entry.jump is not None:
            validate.jump(entry.jump)
        if not all(isinstance(v, (str, type(None))) for v in (entry.started, entry.ticket_file, entry.cloudflared,
                                                              entry.jump, entry.preset, entry.editor, entry.colab,
                                                              entry.gpu, entry.slurm, entry.slurm_job,
                                                              entry.slurm_node, entry.identity, entry.python)) or not isinstance(entry.login, bool) or not isinstance(entry.bridge, bool):
            raise validate.InvalidValue("not as rdev writes it")
        if entry.idle_stop is not None and (type(entry.idle_stop) is not int or entry.idle_stop < 0):
            raise validate.InvalidValue("not as rdev writes it")
        if entry.colab_session is not None:
            validate.colab_session(entry.colab_session)
            validate.colab_endpoint(entry.colab_endpoint)
        if entry.gpu is not None and validate.colab_gpu(entry.gpu) != entry.gpu:
            raise validate.InvalidValue("not as rdev writes it")
    except (TypeError, AttributeError, validate.InvalidValue):
        raise RdevError(f"The entry for {name!r} in {path} is damaged", "fix that table in the file or delete it.") from None
    return entry


def unknown_host(name: str) -> BadInput:
    return BadInput(f"There is no host named {name!r}", "'rdev list' shows the hosts rdev knows.")


def get(name: str) -> HostEntry:
    entry = load().get(name)
    if entry is None:
        raise unknown_host(name)
    return entry


def rendered(entries: dict[str, HostEntry]) -> bytes:
    """The whole registry file for `entries`; `store` writes it."""
    import tomli_w

    tables = {name: {k: v for k, v in asdict(e).items() if v is not None and k != "name"} for name, e in sorted(entries.items())}
    return tomli_w.dumps({"hosts": tables}).encode()

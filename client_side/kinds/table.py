"""The kinds of host `rdev connect` tells apart, as one table.

The first row that fits the request prepares the host; after that every kind goes through the same
pipeline (write, probe, open). A new kind of host is one module beside this one and one row here. Each kind's
module is imported by its row when chosen: a connect carries only its own kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from client_side.errors import BadInput

if TYPE_CHECKING:
    from client_side.kinds.pipeline import Prepared
    from client_side.local.registry import HostEntry

Say = Callable[[str], None]


@dataclass(frozen=True)
class Request:
    """What `rdev connect NAME` was asked, beside what rdev remembers of NAME."""

    name: str
    remembered: HostEntry | None
    ticket: str | None = None
    ticket_file: str | None = None
    cloudflared: str | None = None
    password_stdin: bool = False
    accept_new_host_key: bool = False
    colab_session: str | None = None
    gpu: str | None = None
    colab: str | None = None
    wait: float | None = None  # for a Slurm job's queue; None: its default

    @property
    def has_ticket(self) -> bool:
        return self.ticket is not None or self.ticket_file is not None

    @property
    def kept(self) -> HostEntry | None:
        """What rdev remembers of NAME, unless a ticket now says how to reach it."""
        return None if self.has_ticket else self.remembered


@dataclass(frozen=True)
class Kind:
    name: str
    fits: Callable[[Request], bool]
    prepare: Callable[[Request, Say], Prepared]
    takes_colab_options: bool = False  # --gpu and --colab


def _colab_fits(request: Request) -> bool:
    if request.colab_session is None:
        return bool(request.kept and request.kept.colab_session)
    if request.has_ticket:
        raise BadInput("--colab-session and a ticket are two ways to reach a runtime", "give one of them.")
    if request.remembered and request.remembered.login:
        raise BadInput(f"{request.name} is a password host (added with 'rdev add'), not a Colab runtime",
                       f"give the Colab runtime another name, or 'rdev remove {request.name}' first.")
    return True


def _colab(request: Request, say: Say) -> Prepared:
    from client_side.kinds import colab_host

    return colab_host.prepare(request.name, session=request.colab_session, gpu=request.gpu, colab=request.colab,
                              remembered=request.remembered, accept_new_host_key=request.accept_new_host_key, say=say)


def _slurm(request: Request, say: Say) -> Prepared:
    from client_side.kinds import slurm_host

    assert request.kept is not None  # the row fits only a remembered host
    wait = slurm_host.WAIT if request.wait is None else request.wait
    return slurm_host.prepare(request.kept, password_stdin=request.password_stdin,
                              accept_new_host_key=request.accept_new_host_key, wait=wait, say=say)


def _password(request: Request, say: Say) -> Prepared:
    from client_side.kinds import password_host

    assert request.kept is not None
    return password_host.prepare(request.kept, password_stdin=request.password_stdin,
                                 accept_new_host_key=request.accept_new_host_key, say=say)


def _ticket(request: Request, say: Say) -> Prepared:
    from client_side.kinds import ticket_host

    return ticket_host.prepare(request.name, ticket_text=request.ticket, ticket_file=request.ticket_file,
                               remembered=request.remembered, cloudflared=request.cloudflared, say=say)


KINDS: tuple[Kind, ...] = (
    Kind("a Colab runtime through Google's colab CLI", _colab_fits, _colab, takes_colab_options=True),
    Kind("a Slurm job's node", lambda request: bool(request.kept and request.kept.slurm is not None), _slurm),
    Kind("a password host", lambda request: bool(request.kept and request.kept.login), _password),
    Kind("a ticket host", lambda request: True, _ticket),  # any other name: the ticket says how to reach it
)


def choose(request: Request) -> Kind:
    """The kind that prepares this request; options that only another kind takes are refused."""
    kind = next(kind for kind in KINDS if kind.fits(request))
    if not kind.takes_colab_options and (request.gpu is not None or request.colab is not None):
        raise BadInput(f"--gpu and --colab are for a Colab runtime reached through Google's colab CLI, which "
                       f"{request.name} is not", f"add --colab-session SESSION to reach one (e.g. rdev connect "
                       f"{request.name} --colab-session gpu --gpu T4).")
    return kind

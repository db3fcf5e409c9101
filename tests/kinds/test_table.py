"""The table `rdev connect` dispatches through: which kind prepares which request, and what it refuses."""

from __future__ import annotations

import pytest

from client_side.errors import BadInput
from client_side.kinds.table import KINDS, Request, choose
from client_side.local.registry import HostEntry


def entry(**fields: object) -> HostEntry:
    base: dict = {"name": "h", "host": "h.example.org", "port": 22, "user": "u", "tunnel": "direct", "workdir": "~"}
    return HostEntry(**{**base, **fields})


PASSWORD = entry(login=True)
SLURM = entry(login=True, slurm="--gres=gpu:1", jump="h-login")
COLAB = entry(host="colab-runtime", user="root", tunnel="colab-cli", colab_session="gpu")
TICKET = entry(tunnel="cloudflared")


@pytest.mark.parametrize(("request_", "kind"), [
    (Request("h", None), "a ticket host"),
    (Request("h", TICKET), "a ticket host"),
    (Request("h", PASSWORD), "a password host"),
    (Request("h", PASSWORD, ticket="rdev1.x"), "a ticket host"),  # a ticket says how to reach it now
    (Request("h", SLURM), "a Slurm job's node"),
    (Request("h", SLURM, ticket_file="t.txt"), "a ticket host"),
    (Request("h", entry(login=True, slurm="")), "a Slurm job's node"),  # empty sbatch options are still Slurm
    (Request("h", None, colab_session="gpu"), "a Colab runtime through Google's colab CLI"),
    (Request("h", TICKET, colab_session="gpu"), "a Colab runtime through Google's colab CLI"),
    (Request("h", COLAB), "a Colab runtime through Google's colab CLI"),
    (Request("h", COLAB, ticket="rdev1.x"), "a ticket host"),
])
def test_the_first_row_that_fits_prepares(request_: Request, kind: str) -> None:
    assert choose(request_).name == kind


def test_the_last_row_takes_any_name() -> None:
    assert KINDS[-1].fits(Request("anything", None))


def test_a_colab_session_and_a_ticket_are_refused() -> None:
    with pytest.raises(BadInput, match="two ways to reach a runtime"):
        choose(Request("h", None, colab_session="gpu", ticket="rdev1.x"))


def test_a_colab_session_for_a_password_host_is_refused() -> None:
    with pytest.raises(BadInput, match="h is a password host"):
        choose(Request("h", PASSWORD, colab_session="gpu"))


@pytest.mark.parametrize("options", [{"gpu": "T4"}, {"colab": "/usr/bin/colab"}])
@pytest.mark.parametrize("remembered", [None, PASSWORD, SLURM])
def test_colab_options_are_refused_for_other_kinds(options: dict, remembered: HostEntry | None) -> None:
    with pytest.raises(BadInput, match="--gpu and --colab are for a Colab runtime"):
        choose(Request("h", remembered, **options))


def test_colab_options_go_with_a_colab_runtime() -> None:
    assert choose(Request("h", COLAB, gpu="T4", colab="/usr/bin/colab")).takes_colab_options

"""The one notebook cell: rdev's runtime side (carried in the cell, or pip-installed from a source),
then `colab_side.serve(...)` with the user's key and tunnel in it.

The text lives in notebook_cell.tmpl beside this module, so the runtime side and the laptop side
read the same cell. Every value goes in as a Python literal (repr), never as raw text, so a quote in
a key's comment cannot change the code. The ngrok token is read where the cell runs, never written in.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shlex
from dataclasses import dataclass
from importlib import resources
from string import Template

from bootstrap import editor_servers, pubkeys, ticket, validate
from bootstrap.validate import InvalidValue

TEMPLATE = "notebook_cell.tmpl"
TUNNELS = ticket.TUNNELS
RUNTIMES = ("colab", "kaggle")
# What the runtime side needs beyond the standard library, per tunnel: the binary's downloader.
TUNNEL_PACKAGES = {"cloudflared": "pycloudflared", "ngrok": "pyngrok"}
_SECTION = re.compile(r"^#: (.+)\n", re.MULTILINE)


@dataclass(frozen=True)
class Drive:
    """The ticket file on the user's Google Drive: `MyDrive/rdev/NAME.ticket` where Colab mounts Drive,
    and `laptop_file`, the same file in the laptop's synced Drive folder."""

    name: str  # the host's name on the laptop
    laptop_file: str
    mount: str = "/content/drive"

    def connect_line(self) -> str:
        return f"On your laptop, once Drive has synced: rdev connect {self.name} --ticket-file {shlex.quote(self.laptop_file)}"


def check(tunnel: str, runtime: str, drive: bool) -> None:
    """Refuse a tunnel, runtime or Drive wish the cell cannot serve, with one sentence."""
    if tunnel not in TUNNELS:
        raise InvalidValue(f"The tunnel {tunnel!r} is not one the cell can start: use {', '.join(TUNNELS)}.")
    if runtime not in RUNTIMES:
        raise InvalidValue(f"The runtime {runtime!r} has no cell: use {' or '.join(RUNTIMES)}.")
    if drive and runtime != "colab":
        raise InvalidValue(f"Drive can be mounted in a Colab cell only, not on {runtime}: leave out --drive.")


def render(public_key: str, tunnel: str, runtime: str, requirement: str | None = None, *,
           runtime_zip: bytes | None = None, drive: Drive | None = None, editor_server: str | None = None) -> str:
    """The cell's text for `tunnel` on `runtime`, letting in `public_key`. It installs pip's
    `requirement`, or else carries `runtime_zip` (colab_side and bootstrap, standard library only)
    and pip-installs only the one package its tunnel needs. With `drive`, it mounts Drive and writes
    the ticket file there (Colab only). With `editor_server` (EDITOR:QUALITY:COMMIT), the runtime
    fetches the laptop's editor server while sshd starts."""
    check(tunnel, runtime, drive=drive is not None)
    if editor_server is not None:
        editor_servers.parse(editor_server)
    try:
        pubkeys.parse(public_key, pubkeys.USER_KEY_TYPES)
    except pubkeys.NotAKey as err:
        # Never echoed: it may be a private key pasted by mistake.
        raise InvalidValue(f"The key for the cell {err}: use the one line 'rdev key' prints.") from None
    sections = _sections()
    ngrok = tunnel == "ngrok"
    return Template(sections["cell"]).substitute(
        tunnel_name=tunnel,
        runtime_name=runtime,
        install_lines=_install_lines(sections, tunnel, requirement, runtime_zip, editor_server),
        tunnel=repr(tunnel),
        key=repr(public_key.strip()),
        token_lines=sections[f"ngrok {runtime}"] if ngrok else "",
        token_argument=", token=token" if ngrok else "",
        drive_lines=Template(sections["drive"]).substitute(
            mount=repr(drive.mount), ticket_name=repr(f"{validate.name(drive.name)}.ticket"),
            laptop_line=repr(drive.connect_line())) if drive else "",
        ticket_argument=", ticket_file=ticket_file" if drive else "",
        editor_argument=f", editor_server={editor_server!r}" if editor_server else "",
    )


def install_step(tunnel: str, runtime_zip: bytes) -> str:
    """The cell's lines that make rdev's runtime side importable and install its tunnel's package: what a
    new runtime runs before it serves (bench/cell.py times them), runnable on their own."""
    return "import subprocess, sys\n" + _install_lines(_sections(), tunnel, None, runtime_zip, None)


def _install_lines(sections: dict[str, str], tunnel: str, requirement: str | None, runtime_zip: bytes | None,
                   editor_server: str | None) -> str:
    """The lines that make colab_side importable; the editor's server starts downloading as soon as it is,
    before the tunnel's package installs."""
    if (requirement is None) == (runtime_zip is None):
        raise ValueError("give the cell a requirement or the runtime's zip, one of them")
    ahead = Template(sections["fetch ahead"]).substitute(editor_server=repr(editor_server)) if editor_server else ""
    if runtime_zip is None:
        return Template(sections["install requirement"]).substitute(requirement=repr(requirement)) + ahead
    # Named by its content: a cell of another rdev version never imports this one's leftover copy.
    name = f"rdev-runtime-{hashlib.sha256(runtime_zip).hexdigest()[:16]}.zip"
    lines = Template(sections["install embedded"]).substitute(
        zip_name=repr(name), payload=repr(base64.b64encode(runtime_zip).decode("ascii"))) + ahead
    if tunnel in TUNNEL_PACKAGES:
        lines += Template(sections["install tunnel package"]).substitute(package=repr(TUNNEL_PACKAGES[tunnel]))
    return lines


def _sections() -> dict[str, str]:
    """The template's sections by name; each keeps its final newline."""
    text = resources.files("bootstrap").joinpath(TEMPLATE).read_text(encoding="utf-8")
    parts = _SECTION.split(text)[1:]
    return dict(zip(parts[::2], parts[1::2]))

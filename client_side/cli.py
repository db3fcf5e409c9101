"""The `rdev` command: a table of thin typer commands, each calling one function in its own module.

Heavy modules (paramiko, keyring, the tunnel libraries) are imported inside those functions so
that `rdev --help` starts fast.
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from client_side.errors import RdevError

app = typer.Typer(
    help="Open VS Code on a remote GPU machine (Colab, Kaggle, lab clusters, school servers) over SSH.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _say(line: str) -> None:
    typer.echo(line)


@app.command()
def key() -> None:
    """Print rdev's public key (the key pair is created if missing)."""
    from client_side import keys

    _say(keys.public_key())


@app.command()
def connect(
    name: str = typer.Argument(..., metavar="NAME", help="the name to use for this host, e.g. colab"),
    ticket: Optional[str] = typer.Option(None, "--ticket", help="the ticket line, or - to read it from stdin"),
    ticket_file: Optional[str] = typer.Option(None, "--ticket-file", help="read the ticket from this file (e.g. in a "
                                              "synced Drive folder) and remember it for the next connect"),
    no_open: bool = typer.Option(False, "--no-open", help="set up and check SSH, but do not open the editor"),
    path: Optional[str] = typer.Option(None, "--path", help="remote folder to open (default: the ticket's)"),
    editor: Optional[str] = typer.Option(None, "--editor", help="editor executable (default: RDEV_EDITOR, else code)"),
    cloudflared: Optional[str] = typer.Option(None, "--cloudflared", help="cloudflared binary for cloudflared tickets "
                                              "(default: RDEV_CLOUDFLARED, PATH, else downloaded)"),
) -> None:
    """Write the SSH config for NAME from a ticket, pin its host key, check ssh, open the editor."""
    from client_side import connect as connecting

    connecting.connect(name, ticket, not no_open, path, editor, cloudflared, _say, ticket_file)


@app.command("list")
def list_hosts(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """List the hosts rdev knows."""
    from client_side import hosts

    _say(hosts.listing(as_json))


@app.command()
def remove(name: str = typer.Argument(..., metavar="NAME", help="the host to forget")) -> None:
    """Remove NAME's SSH config block, pinned host key and registry entry."""
    from client_side import hosts

    _say(hosts.remove(name))


@app.command()
def demo() -> None:
    """Run the whole path on this machine in a throwaway HOME: server, ticket, connect, ssh."""
    from client_side import demo as demonstration

    demonstration.run(_say)


def main(argv: Optional[list[str]] = None) -> None:
    try:
        app(args=argv, prog_name="rdev")
    except RdevError as err:
        typer.echo(f"rdev: {err}", err=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        typer.echo("rdev: interrupted.", err=True)
        sys.exit(130)
    except OSError as err:
        # A folder that is a file, a full disk, no permission: the OS's own words name the path.
        typer.echo(f"rdev: {err.strerror or err}{f' ({err.filename})' if err.filename else ''}: fix that and run again.", err=True)
        sys.exit(1)

"""The `rdev` command: a table of thin typer commands, each calling one function in its own module.

Heavy modules (paramiko, keyring, the tunnel libraries) are imported inside those functions so
that `rdev --help` starts fast.
"""

from __future__ import annotations

import os
import signal
import sys

import typer

from client_side.errors import USAGE, BadInput, RdevError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _show_version(asked: bool) -> None:
    if asked:
        from bootstrap import __version__

        typer.echo(f"rdev {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                          help="print rdev's version and exit")) -> None:
    """Open VS Code on a remote GPU machine (Colab, Kaggle, lab clusters, school servers) over SSH."""


def _say(line: str) -> None:
    typer.echo(line)


def _host_names(incomplete: str) -> list[str]:
    """Shell completion for NAME: the hosts rdev knows (none when its list cannot be read)."""
    from client_side.local import registry

    try:
        return [name for name in registry.load() if name.startswith(incomplete)]
    except RdevError:
        return []


colab = typer.Typer(help="The notebook side: what to paste into Colab or Kaggle.", no_args_is_help=True)
app.add_typer(colab, name="colab")


@app.command()
def key() -> None:
    """Print rdev's public key (the key pair is created if missing)."""
    from client_side.ssh import keys

    _say(keys.public_key())


@app.command()
def connect(
    name: str = typer.Argument(..., metavar="NAME", help="the name to use for this host, e.g. colab",
                               autocompletion=_host_names),
    ticket: str | None = typer.Option(None, "--ticket", help="the ticket line, or - to read it from stdin"),
    ticket_file: str | None = typer.Option(None, "--ticket-file", help="read the ticket from this file (e.g. in a "
                                              "synced Drive folder) and remember it for the next connect"),
    no_open: bool = typer.Option(False, "--no-open", help="set up and check SSH, but do not open the editor"),
    path: str | None = typer.Option(None, "--path", help="remote folder to open (default: the ticket's)"),
    editor: str | None = typer.Option(None, "--editor", help="code, code-insiders, cursor, codium, windsurf or a path; "
                                         "remembered for this host (default: RDEV_EDITOR, else the first installed)"),
    cloudflared: str | None = typer.Option(None, "--cloudflared", help="cloudflared binary for cloudflared tickets "
                                              "(default: RDEV_CLOUDFLARED, the one this host used before, PATH, "
                                              "else downloaded)"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="read a password host's password from stdin"),
    accept_new_host_key: bool = typer.Option(False, "--accept-new-host-key",
                                             help="re-pin a host whose host key changed (a password host, or a "
                                             "Colab runtime)"),
    colab_session: str | None = typer.Option(None, "--colab-session", metavar="SESSION",
                                                help="reach Colab through Google's own SSH route: the colab CLI's "
                                                "session, created (after saying so) when it does not exist"),
    gpu: str | None = typer.Option(None, "--gpu", metavar="GPU", help="with --colab-session: the GPU of a runtime rdev creates "
                                      "(T4, L4, G4, H100, A100)"),
    colab: str | None = typer.Option(None, "--colab", metavar="PATH", help="Google's colab CLI (default: "
                                        "RDEV_COLAB, the one this host used before, PATH)"),
    wait: float | None = typer.Option(None, "--wait", metavar="SECONDS", help="for a Slurm cluster: how long to "
                                         "wait for rdev's job to leave the queue before cancelling it (default 600)"),
    idle_stop: int | None = typer.Option(None, "--idle-stop", metavar="MINUTES", help="for a Slurm cluster: end "
                                            "rdev's job after this many minutes without a session, run or GPU "
                                            "process; 0: never (kept for the host; default 60)"),
) -> None:
    """Connect NAME: from a ticket, through Google's colab CLI (--colab-session), or (for a host added with 'rdev add')
    with its password once, then rdev's key. Writes the SSH config, pins the host key, checks ssh, opens the editor."""
    from client_side.commands import connect as connecting

    if idle_stop is not None:
        from client_side.kinds import slurm_host

        slurm_host.keep_idle_stop(name, idle_stop)
    connecting.connect(name, ticket=ticket, ticket_file=ticket_file, open_editor=not no_open, path=path,
                       editor_name=editor, cloudflared=cloudflared, password_stdin=password_stdin,
                       accept_new_host_key=accept_new_host_key, colab_session=colab_session, gpu=gpu, colab=colab,
                       wait=wait, say=_say)


@app.command()
def add(
    name: str = typer.Argument(..., metavar="NAME", help="the name to use for this host, e.g. gpu1"),
    host: str = typer.Option(..., "--host", help="its address, e.g. gpu1.cs.example.edu"),
    user: str | None = typer.Option(None, "--user", help="login name (default: yours on this laptop)"),
    port: int = typer.Option(22, "--port"),
    jump: str | None = typer.Option(None, "--jump", help="reach it through this registered name or [user@]host[:port]"),
    preset: str | None = typer.Option(None, "--preset", help="a kind of host: clusteria, school, slurm, or your own"),
    path: str | None = typer.Option(None, "--path", help="remote folder the editor opens (default: the preset's, else ~)"),
    slurm: str | None = typer.Option(None, "--slurm", metavar="OPTIONS", help="a Slurm cluster: HOST is its login "
                                        "node, and the editor runs on a compute node in a job submitted with these "
                                        "sbatch options, e.g. \"--partition=gpu --gres=gpu:1 --time=04:00:00\""),
    identity: str | None = typer.Option(None, "--identity", metavar="KEY", help="for a host that takes keys only: "
                                        "your private key that gets in, used once to install rdev's (default: your "
                                        "agent's, then ~/.ssh/id_*)"),
    python: str | None = typer.Option(None, "--python", metavar="PATH", help="the Python 3.8 or newer on the host that "
                                      "runs rdev's side there (default: its python3, else the newest python3.X on PATH)"),
    idle_stop: int | None = typer.Option(None, "--idle-stop", metavar="MINUTES", help="with --slurm: end rdev's job "
                                            "after this many minutes without a session, run or GPU process; 0: never "
                                            "(default 60)"),
) -> None:
    """Register a password host (lab cluster, school server); 'rdev connect NAME' then logs in once."""
    if slurm is not None:
        from client_side.kinds import slurm_host

        _say(slurm_host.add(name=name, host=host, user=user, port=port, jump=jump, preset_name=preset, path=path,
                            options=slurm, identity=identity, python=python, idle_stop=idle_stop))
        return
    if idle_stop is not None:
        raise BadInput("--idle-stop is for a Slurm cluster's job", "add the cluster with --slurm \"OPTIONS\", or leave "
                       "--idle-stop out.")
    from client_side.kinds import password_host

    _say(password_host.add(name=name, host=host, user=user, port=port, jump=jump, preset_name=preset, path=path,
                           identity=identity, python=python))


@app.command()
def password(
    name: str = typer.Argument(..., metavar="NAME", autocompletion=_host_names),
    stdin: bool = typer.Option(False, "--stdin", help="read the password from stdin instead of a prompt"),
    delete: bool = typer.Option(False, "--delete", help="forget the kept password"),
) -> None:
    """Keep NAME's password in the system keyring (after checking it works), or forget it."""
    from client_side.kinds import password_host

    password_host.set_password(name, from_stdin=stdin, delete=delete, say=_say)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def ssh(
    name: str = typer.Argument(..., metavar="NAME", autocompletion=_host_names),
    command: list[str] | None = typer.Argument(None, metavar="[-- CMD...]", help="a command to run instead of a shell"),
) -> None:
    """A terminal on NAME (or one command) through the SSH config rdev wrote."""
    from client_side.commands import ssh as terminal

    sys.exit(terminal.run(name, command or []))


@app.command()
def gpus(
    names: list[str] | None = typer.Argument(None, metavar="[NAME...]", help="hosts to ask (default: all)",
                                                autocompletion=_host_names),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    timeout: float = typer.Option(8.0, "--timeout", metavar="SECONDS",
                                  help="wait at most this long in all; hosts that have not answered are named"),
) -> None:
    """Which GPUs on each host look free, and the CUDA_VISIBLE_DEVICES to use; all hosts at once."""
    from client_side.commands import gpus as gpu_listing

    if not 0 < timeout <= 600:  # also refuses nan and inf
        raise BadInput(f"The timeout {timeout} is not a number of seconds from 0 to 600", "give one such as --timeout 8.")
    _say(gpu_listing.report(names or [], as_json, timeout=timeout))


@app.command()
def jupyter(
    name: str = typer.Argument(..., metavar="NAME", autocompletion=_host_names),
    stop_server: bool = typer.Option(False, "--stop", help="end the server on NAME and the forward to it"),
    python: str | None = typer.Option(None, "--python", metavar="PATH", help="the Python on NAME that has "
                                         "jupyter_server and ipykernel (default: python3 there; rdev installs them "
                                         "for your user when missing)"),
    port: int | None = typer.Option(None, "--port", metavar="LOCAL", help="the port on this laptop (default: the "
                                       "one used before, else a free one)"),
) -> None:
    """A Jupyter server on NAME for Colab's "Connect to a local runtime" (and VS Code's "Existing Jupyter Server"),
    forwarded here; it outlives the connection, and a second run reuses it."""
    from client_side.commands import jupyter as notebook_server

    if stop_server:
        if port is not None:
            raise BadInput("--port has no meaning with --stop", f"run 'rdev jupyter {name} --stop' alone.")
        notebook_server.stop(name, python=python, say=_say)
    else:
        notebook_server.start(name, python=python, port=port, say=_say)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    name: str = typer.Argument(..., metavar="NAME", autocompletion=_host_names),
    command: list[str] | None = typer.Argument(None, metavar="-- CMD...", help="the command and its arguments, "
                                                  "run as an argv, not through a shell (a pipeline: -- sh -c '...')"),
    run_name: str | None = typer.Option(None, "--name", metavar="RUN", help="the run's name (default: the "
                                           "command's first word and the time)"),
    gpus: int | None = typer.Option(None, "--gpus", metavar="N", help="run on N GPUs that look free (as 'rdev gpus' "
                                    "reads them) through CUDA_VISIBLE_DEVICES; on Slurm, ask the job for N GPUs"),
    slurm: str | None = typer.Option(None, "--slurm", metavar="OPTIONS", help="more sbatch options for the run's "
                                     "job on a Slurm cluster, after the cluster's own (e.g. \"--time=08:00:00\")"),
    pull: str | None = typer.Option(None, "--pull", metavar="PATH", help="copy PATH (in the host's folder unless "
                                    "absolute) back into the current folder when the run ends (or at the next "
                                    "'rdev runs')"),
) -> None:
    """Start CMD on NAME, in its folder, detached: it outlives the connection, the editor and the laptop (on a Slurm
    cluster, as a batch job of its own, which outlives the interactive job)."""
    from client_side.commands import runs as run_commands

    run_commands.start(name, command or [], run=run_name, say=_say, gpus=gpus, slurm=slurm, pull=pull)


@app.command()
def runs(
    name: str | None = typer.Argument(None, metavar="[NAME]", help="the host (default: all)",
                                      autocompletion=_host_names),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """The runs on NAME: running, exited with its status, or killed; when, for how long, the log's last line. Brings
    back what ended runs were started with --pull for."""
    from client_side.commands import runs as run_commands

    _say(run_commands.listing(name, as_json, say=lambda line: typer.echo(line, err=True)))


@app.command("pull-after", hidden=True)
def pull_after(name: str, run: str) -> None:
    """What `rdev run --pull` leaves behind: copies the run's path back once it ends."""
    from client_side.commands import runs as run_commands

    sys.exit(run_commands.pull_after(name, run))


@app.command()
def logs(
    name: str = typer.Argument(..., metavar="NAME", autocompletion=_host_names),
    run: str = typer.Argument(..., metavar="RUN"),
    follow: bool = typer.Option(False, "--follow", "-f", help="go on printing until the run ends (or Ctrl-C)"),
) -> None:
    """Print RUN's output on NAME (its log), or follow it."""
    from client_side.commands import runs as run_commands

    typer.echo(f"rdev: {run_commands.logs(name, run, follow=follow, out=_say)}", err=True)


@app.command()
def kill(
    name: str = typer.Argument(..., metavar="NAME", autocompletion=_host_names),
    run: str = typer.Argument(..., metavar="RUN"),
) -> None:
    """End RUN on NAME and everything it started (SIGTERM, then SIGKILL), and its tmux session."""
    from client_side.commands import runs as run_commands

    _say(run_commands.kill(name, run))


@app.command()
def attach(
    name: str = typer.Argument(..., metavar="NAME", autocompletion=_host_names),
    run: str = typer.Argument(..., metavar="RUN"),
) -> None:
    """RUN's live terminal on NAME (its tmux session); Ctrl-b d leaves it running."""
    from client_side.commands import runs as run_commands

    sys.exit(run_commands.attach(name, run))


@app.command()
def pull(
    name: str = typer.Argument(..., metavar="NAME", autocompletion=_host_names),
    remote: str = typer.Argument(..., metavar="REMOTE", help="a file or folder on NAME (relative to your home there "
                                 "unless it starts with /)"),
    local: str | None = typer.Argument(None, metavar="[LOCAL]", help="the folder here it goes into (default: the "
                                          "current folder), created if missing"),
) -> None:
    """Copy REMOTE from NAME into a folder here: rsync where both ends have it (only what changed, resuming a cut
    copy), else sftp."""
    from client_side.commands import transfer

    transfer.pull(name, remote, local, say=_say)


@app.command()
def push(
    name: str = typer.Argument(..., metavar="NAME", autocompletion=_host_names),
    local: str = typer.Argument(..., metavar="LOCAL", help="a file or folder here"),
    remote: str | None = typer.Argument(None, metavar="[REMOTE]", help="the folder on NAME it goes into (default: "
                                           "the host's folder), created if missing"),
) -> None:
    """Copy LOCAL into a folder on NAME: rsync where both ends have it (only what changed, resuming a cut copy),
    else sftp."""
    from client_side.commands import transfer

    transfer.push(name, local, remote, say=_say)


@app.command("list")
def list_hosts(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """List the hosts rdev knows."""
    from client_side.commands import list_hosts as hosts

    _say(hosts.listing(as_json))


@app.command()
def remove(
    name: str = typer.Argument(..., metavar="NAME", help="the host to forget", autocompletion=_host_names),
    stop_runtime: bool = typer.Option(False, "--stop", help="first end its Colab runtime (see 'rdev stop')"),
) -> None:
    """Remove NAME's SSH config block, pinned host key, editor settings and registry entry."""
    from client_side.commands import remove as removal

    _say(removal.remove(name, stop_runtime=stop_runtime, say=_say))


@app.command()
def stop(
    name: str = typer.Argument(..., metavar="NAME", autocompletion=_host_names),
    pull: str | None = typer.Option(None, "--pull", metavar="REMOTE", help="first copy REMOTE from NAME into the "
                                       "current folder (as 'rdev pull'); nothing is stopped if that copy fails"),
) -> None:
    """End NAME's Colab runtime (Google's colab CLI) or Slurm job (scancel): both cost while they run."""
    from client_side.commands import stop as stopping

    stopping.stop(name, _say, pull=pull)


@app.command()
def doctor(
    check: bool = typer.Option(False, "--check", help="also try ssh to every registered host"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """What on this laptop is missing or wrong for rdev, one line each with its fix; exit 1 if anything is."""
    from client_side.commands import doctor as checkup

    text, problems = checkup.report(check, as_json)
    _say(text)
    if problems:
        sys.exit(1)


@colab.command()
def cell(
    tunnel: str = typer.Option("cloudflared", "--tunnel", help="cloudflared (no account) or ngrok (a token, "
                               "read from the notebook's secrets)"),
    runtime: str = typer.Option("colab", "--runtime", help="colab or kaggle"),
    source: str | None = typer.Option(None, "--source", help="what the cell installs: a git URL, an https URL, or "
                                         "a path on the runtime (default: the cell carries this rdev's runtime side)"),
    drive: bool = typer.Option(False, "--drive", help="mount Drive in the cell and write the ticket file there, "
                               "for 'rdev connect colab --ticket-file' on this laptop's synced Drive (Colab only)"),
) -> None:
    """Print the one cell to paste into the notebook, with your key in it (and copy it where a clipboard is)."""
    from client_side.colab import cell as colab_cell

    text = colab_cell.cell(tunnel, runtime, source, drive=drive)
    typer.echo(text, nl=False)
    # Notes go to stderr, so that `rdev colab cell > cell.py` holds the cell alone.
    typer.echo(colab_cell.policy_note(runtime), err=True)
    if tunnel == "ngrok":
        typer.echo("The cell reads your ngrok auth token from a notebook secret named NGROK_AUTHTOKEN (Colab: the key "
                   "icon; Kaggle: Add-ons > Secrets), else asks for it.", err=True)
    if colab_cell.copy(text):
        typer.echo("Also copied to the clipboard: paste it into a notebook cell and run it.", err=True)


@app.command()
def demo() -> None:
    """Run the whole path on this machine in a throwaway HOME: server, ticket, connect, ssh."""
    from client_side.commands import demo as demonstration

    demonstration.run(_say)


def _command_line_error(err: typer.TyperException) -> int:
    """Say what click found wrong with the command line in one line, not click's usage block (or, for a group given
    no command, its help); the exit status. typer vendors click privately: TyperException is the errors' public base."""
    context = getattr(err, "ctx", None)
    problem = err.format_message().strip()
    if context is not None and problem == context.get_help().strip():
        typer.echo(problem, err=True)
        return USAGE
    where = context.command_path if context is not None else "rdev"
    typer.echo(f"rdev: {problem}{'' if problem.endswith(('.', '?')) else '.'} See '{where} --help'.", err=True)
    return err.exit_code


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def command_line() -> None:
    """The `rdev` command: main(), then out at once. What rdev changes is closed by the code that changed it (files
    written whole, locks released, children waited for), so the interpreter's own teardown, ~25 ms of a reconnect's
    start, has nothing left to do for it."""
    try:
        main()
        code: object = 0
    except SystemExit as done:
        code = done.code
    if isinstance(code, str):  # sys.exit("message"), as Python prints it
        print(code, file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:  # a reader that went away (`rdev list | head`): nothing more to say to it
            pass
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)


def main(argv: list[str] | None = None) -> None:
    # A closed terminal or a plain `kill` ends rdev as Ctrl-C does: what it started is undone on the way
    # out (a Slurm job it submitted is cancelled), and its files are written whole or not at all.
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _interrupt)
    try:
        sys.exit(app(args=argv, prog_name="rdev", standalone_mode=False))
    except SystemExit as err:
        if err.code == 130:  # typer's own answer to Ctrl-C inside a command: exit 130 without a word
            typer.echo("rdev: interrupted.", err=True)
        raise
    except typer.TyperException as err:
        sys.exit(_command_line_error(err))
    except typer.Abort:
        typer.echo("rdev: interrupted.", err=True)
        sys.exit(130)
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

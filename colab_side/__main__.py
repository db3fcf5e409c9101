"""`python -m colab_side serve|stop`: the runtime side's command line (argparse: no typer needed here)."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys

from bootstrap.validate import InvalidValue
from colab_side import processes
from colab_side.errors import ServeError
from colab_side.long_runs import idle
from colab_side.server import running, serve, stop
from colab_side.tunnels import PROVIDERS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m colab_side", description="Serve this machine over SSH for rdev.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="start the private sshd and tunnel, print the ticket")
    run.add_argument("--tunnel", choices=PROVIDERS, default="direct")
    run.add_argument("--authorized-key", action="append", default=[], metavar="KEY",
                     help="a public key allowed to log in (the output of 'rdev key'); repeatable")
    run.add_argument("--user", help="the account to serve (default: the current one; others need root)")
    run.add_argument("--listen", default="127.0.0.1", metavar="ADDR", help="address sshd listens on (default 127.0.0.1)")
    run.add_argument("--port", type=int, help="sshd's port (default: a free one)")
    run.add_argument("--workdir", metavar="DIR", help="the folder the editor opens")
    run.add_argument("--ticket-file", metavar="PATH", help="also write the ticket to this file")
    run.add_argument("--state-dir", metavar="DIR", help="where sshd's config, keys, pid and log live")
    run.add_argument("--cloudflared", metavar="PATH", help="the cloudflared binary (default: RDEV_CLOUDFLARED, PATH, "
                     "else pycloudflared's download)")
    run.add_argument("--ngrok", metavar="PATH", help="the ngrok binary (default: RDEV_NGROK, PATH, else pyngrok's "
                     "download); the auth token is read from NGROK_AUTHTOKEN")
    run.add_argument("--hostname", help="a named cloudflared tunnel's public hostname; its token is read from TUNNEL_TOKEN")
    run.add_argument("--no-keep-alive", dest="keep_alive", action="store_false",
                     help="return once the ticket is printed; the server keeps running, supervised by a background process")
    run.add_argument("--editor-server", metavar="EDITOR:QUALITY:COMMIT",
                     help="fetch this editor's remote server while sshd starts (what 'rdev colab cell' fills in)")
    run.add_argument("--in-job", action="store_true",
                     help="serve as a batch job does: in the foreground, and a signal (Slurm's scancel or time limit) "
                     "stops the server and its sessions instead of handing it to a background process")
    run.add_argument("--idle-stop", metavar="MINUTES", help="stop serving (and so end a batch job) after this many "
                     "minutes without an SSH session, a process started from one, or a GPU process; 0: never "
                     "(default: never)")
    halt = commands.add_parser("stop", help="stop the server and every session under it")
    halt.add_argument("--state-dir", metavar="DIR")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "stop":
            print("Stopped." if stop(args.state_dir) else "No server was running.")
            return 0
        return _serve(args)
    except InvalidValue as err:
        print(f"rdev: {err}", file=sys.stderr)
        return 2
    except ServeError as err:
        print(f"rdev: {err}", file=sys.stderr)
        return err.exit_code
    except OSError as err:
        # An address this machine does not have, a state folder that is a file, no permission.
        where = f" ({err.filename})" if err.filename else ""
        print(f"rdev: {err.strerror or err}{where}: check --listen, --state-dir and --ticket-file.", file=sys.stderr)
        return 1


# Ctrl-C, a closed terminal or SSH window (SIGHUP) and a plain `kill` all end the waiting, never the server.
_ENDING_SIGNALS = (signal.SIGINT, signal.SIGHUP, signal.SIGTERM)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _hold(signum: int, frame: object) -> None:
    """Ignore a signal while supervision is handed over; a Python handler, not SIG_IGN, so the
    programs the supervisor starts later get the default again."""


def _serve(args: argparse.Namespace) -> int:
    """Serve, wait in the foreground if asked, and when waiting ends but the server goes on, hand its
    supervision to a background process: this process, and its supervisor thread, are about to end."""
    lead = "The server"
    for signum in _ENDING_SIGNALS[1:]:
        signal.signal(signum, _interrupt)
    try:
        server = serve(tunnel=args.tunnel, authorized_keys=args.authorized_key, user=args.user, listen=args.listen,
                       port=args.port, workdir=args.workdir, ticket_file=args.ticket_file, state_dir=args.state_dir,
                       cloudflared=args.cloudflared, ngrok=args.ngrok, hostname=args.hostname,
                       token=os.environ.get("TUNNEL_TOKEN") if args.tunnel == "cloudflared" else None,
                       keep_alive=False, editor_server=args.editor_server, out=_say,
                       idle_stop=None if args.idle_stop is None else idle.parsed(args.idle_stop))
        if args.keep_alive or args.in_job:
            server.wait()
    except KeyboardInterrupt:
        if args.in_job:
            return _end_job(args.state_dir)
        found = running(args.state_dir)
        if found is None:
            print("rdev: interrupted; nothing was left running.", file=sys.stderr)
            return 130
        server, lead = found, "Stopped waiting; the server"
    if args.in_job:
        return _end_job(args.state_dir)
    # A second Ctrl-C during the hand-off must not leave the server without a supervisor.
    for signum in _ENDING_SIGNALS:
        signal.signal(signum, _hold)
    if server.state.stopped() or not server.current():
        return 0  # stopped, or taken over by a later serve: nothing of ours is left to supervise
    pid = server.detach()
    stop_command = "python -m colab_side stop" + (f" --state-dir {shlex.quote(str(server.state.root))}" if args.state_dir else "")
    _say(f"{lead} goes on, supervised by a background process (pid {pid}, log {server.state.supervisor_log}). "
         f"Stop it with: {stop_command}")
    return 0


def _end_job(state_dir: str | None) -> int:
    """Stop the server and every process of this job: without cgroups the scheduler misses what a
    session detached (nohup, setsid; an editor's server does), and would count the GPU as free."""
    stop(state_dir)
    job = os.environ.get("SLURM_JOB_ID")
    if job:
        processes.terminate([pid for pid in processes.marked(f"SLURM_JOB_ID={job}") if pid != os.getpid()])
    return 0


def _say(line: str) -> None:
    try:
        print(line, flush=True)
    except OSError:
        pass  # the terminal is gone (SIGHUP); the ticket is in the state folder all the same


if __name__ == "__main__":
    sys.exit(main())

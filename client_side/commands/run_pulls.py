"""`rdev run NAME --pull PATH -- CMD`: PATH comes back to the folder `rdev run` was given in once the run ends.

A pull waits in a record on this laptop (`paths.pending_pull`: the host, the run, the remote path, the local
folder) from before the run starts until its copy is done. Two things take it up, whichever comes first:
- a watcher that `rdev run` leaves behind, detached (`rdev pull-after NAME RUN`, a hidden command: runs.pull_after):
  it follows the run as `rdev logs -f` does and pulls when it ends. A laptop that sleeps or loses the link ends the
  watcher (its ssh fails); the record stays;
- `rdev runs`, which pulls for every run of the hosts it lists that has ended.
Each copy holds the record's lock without waiting, so the two never copy at once; a copy that fails leaves the
record for the next `rdev runs`. The copy is `rdev pull`'s (rsync resumes and skips what is already there).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from bootstrap.files import atomic_write, ensure_private_dir
from client_side.errors import BadInput, RdevError
from client_side.local import locking, paths, registry

Say = Callable[[str], None]
START_WAIT = 600.0  # longer than any start takes (runs.CALL_TIMEOUT and its connection)
ENDED = ("exited", "killed", "lost")  # as colab_side.long_runs.runs.state says a run ended


@dataclass(frozen=True)
class PendingPull:
    """A run's results to bring back: `remote` on host `name` into the local folder `local`, when `run` ends; copied
    through `via` (the host itself, or a Slurm cluster's login node, which shares the job's home)."""

    name: str
    run: str
    via: str
    remote: str
    local: str


def plan(name: str, run: str, remote: str, via: str) -> PendingPull:
    """The pull for `--pull REMOTE`, checked as `rdev pull` checks it (exit 2), into the current folder. A relative
    REMOTE is in the host's folder, where the run starts and writes, not in the home as for `rdev pull`."""
    from client_side.commands import transfer  # the run's start does not need it unless a pull is asked for

    workdir = registry.get(name).workdir or "~"
    transfer.remote_path(remote)  # refused as it is typed, before it is joined to anything
    if remote.rstrip("/").rsplit("/", 1)[-1] in ("", ".", "..", "~"):
        raise BadInput(f"--pull {remote!r} names a whole folder to merge into this one when the run ends",
                       "name what the run writes, e.g. --pull checkpoints.")
    if not remote.startswith(("/", "~")):
        remote = f"{workdir.rstrip('/')}/{remote}"
    transfer.remote_path(remote)
    return PendingPull(name, run, via, remote, str(transfer.local_path(".")))


def keep(pull: PendingPull) -> bytes | None:
    """Record the pull (before the run starts, so that a run never ends with its pull unrecorded); the record it
    replaces, which `put_back` restores when the host refuses the start (a run of that name still running)."""
    path = paths.pending_pull(pull.name, pull.run)
    for folder in (path.parents[2], path.parents[1], path.parent):  # rdev's state folder, pulls/, the host's
        ensure_private_dir(folder)
    try:
        earlier: bytes | None = path.read_bytes()
    except FileNotFoundError:
        earlier = None
    atomic_write(path, json.dumps(asdict(pull)).encode(), follow=False)
    return earlier


def put_back(pull: PendingPull, earlier: bytes | None) -> None:
    if earlier is None:
        drop(pull)
    else:
        atomic_write(paths.pending_pull(pull.name, pull.run), earlier, follow=False)


def drop(pull: PendingPull) -> None:
    paths.pending_pull(pull.name, pull.run).unlink(missing_ok=True)


def forget_host(name: str) -> None:
    """For `rdev remove`: a later host under the same name is another machine, whose runs are not these."""
    for pull in pending(name):
        drop(pull)


def pending(name: str) -> list[PendingPull]:
    """The pulls waiting for runs on `name`; a record rdev cannot read is left where it is, and not taken."""
    folder = paths.pending_pull(name, "x").parent
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            found.append(PendingPull(**json.loads(path.read_text())))
        except (OSError, ValueError, TypeError):
            continue
    return found


def watch_in_background(pull: PendingPull) -> None:
    """Leave a watcher that pulls when the run ends: detached, so it outlives this rdev and its terminal."""
    flags = 0  # a new session (POSIX) or process group with no console (Windows): no Ctrl-C or hangup ends it
    if sys.platform == "win32":
        flags = subprocess.CREATE_NO_WINDOW | subprocess.CREATE_NEW_PROCESS_GROUP
    # -I and rdev's own folder as the working one: nothing in the user's folder is imported in place of rdev's.
    subprocess.Popen([sys.executable, "-I", "-m", "client_side", "pull-after", pull.name, pull.run],
                     cwd=paths.pending_pull(pull.name, pull.run).parent, stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, creationflags=flags,
                     start_new_session=sys.platform != "win32")


def settle(pull: PendingPull, say: Say) -> bool:
    """Copy the pull's path back now and forget the pull; False if another rdev is copying it, or the copy
    failed (said through `say`; the pull stays for the next `rdev runs`)."""
    from client_side.commands import transfer

    with locking.pulling(pull.name, pull.run) as mine:
        if not mine or pull not in pending(pull.name):  # copied meanwhile, or replaced by a new run's
            return False
        try:
            transfer.pull(pull.via, pull.remote, pull.local, say=say)
        except (RdevError, OSError) as err:  # OSError: a local folder that cannot be written now
            why = str(err) if isinstance(err, RdevError) else f"{err.strerror or err} ({err.filename or pull.local})."
            say(f"The pull of {pull.remote} for run {pull.run} on {pull.name} failed: {why} 'rdev runs {pull.name}' "
                "tries again.")
            return False
        drop(pull)
        return True


def settle_ended(name: str, runs: list[dict], say: Say) -> None:
    """For `rdev runs`: pull for each run of `name` listed as ended; forget, with a line, the pulls of runs the host
    no longer has (a new runtime under the same name: what it holds at that path is not the run's)."""
    states = {str(r.get("run")): str(r.get("state")) for r in runs}
    for pull in pending(name):
        if pull.run not in states and _older_than_a_start(pull):
            with locking.pulling(pull.name, pull.run) as mine:
                if mine:
                    drop(pull)
                    say(f"Run {pull.run} is no longer on {name}, so its pull of {pull.remote} was dropped.")
        elif states.get(pull.run) in ENDED:
            settle(pull, say)


def _older_than_a_start(pull: PendingPull) -> bool:
    """A pull is recorded before its run: one younger than a start may belong to a run the host has yet to record."""
    try:
        return time.time() - paths.pending_pull(pull.name, pull.run).stat().st_mtime > START_WAIT
    except FileNotFoundError:
        return False

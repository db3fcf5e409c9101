"""`rdev pull NAME REMOTE [LOCAL]` and `rdev push NAME LOCAL [REMOTE]`: files between this laptop and a host,
through the SSH config rdev wrote, so that its keys, its way in (tunnel, jump host, bridge) and its master
connection all apply.

rsync copies where both ends have it: it skips what is already there (same size and time), resumes a file a cut
link left half sent (`--partial-dir`: the piece waits out of sight and is the basis of the next run), and keeps
the tree, its modes and times. Its arguments travel inside rsync's own protocol (`-s`), never through the host's
login shell, whatever that shell is. rsync goes first, unasked, on both ends: only when the laptop's refused its
options is its version asked, and only when it never started on the host is `command -v rsync` asked there, to
tell a host without rsync from one out of reach. Elsewhere sftp copies (the real binary, run with the same config, so it
shares the master: paramiko could follow none of ProxyCommand, ProxyJump or the bridge, would make a handshake
of its own, and would copy at Python's pace); it sends every file again each time.

What goes where, in both tools alike: the file or folder named is copied *into* the folder named on the other
side (created if missing), like `cp -r SOURCE FOLDER`. Paths are taken literally, wildcards and all; a remote
path that is not absolute is relative to the home folder there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from client_side import inputs
from client_side.errors import BadInput, RdevError, printable
from client_side.local import paths, registry
from client_side.ssh import probe

Say = Callable[[str], None]

PULL, PUSH = "pull", "push"
# Where rsync keeps a file a cut link left half sent, beside where it belongs; rsync excludes these folders from
# the copy itself, and the next run takes the piece as the start of the file instead of starting from zero.
PARTIAL_DIR = ".rdev-partial"
# --info=progress2 came in 3.1.0 (2013) and -s in 3.0; older ones (macOS's 2.6.9, openrsync) leave it to sftp.
RSYNC_MIN = (3, 1, 0)
# rsync's exit statuses for a link that went away mid-copy: socket I/O, protocol stream, time-outs, ssh's own.
CUT = frozenset({10, 12, 30, 35, 255})
REFUSED = 1  # rsync's "syntax or usage error": an rsync older than RSYNC_MIN given options it does not know
SSH_FAILED = 255
NOT_FOUND = 127  # rsync's status when the remote shell found no rsync (sh, bash, zsh, fish; tcsh says 1)
# rsync's words when the far end never answered: no rsync there, or no way in.
_NEVER_STARTED = re.compile(r"connection unexpectedly closed \(0 bytes received so far\)")
# What the sending rsync expands in the names it is asked for (never in where the receiving one writes).
_WILDCARDS = "*?["
# Control characters, invisible format characters, lone surrogates, line and paragraph separators: as
# bootstrap.validate refuses them in a remote folder.
_UNSAFE = ("Cc", "Cf", "Cs", "Zl", "Zp")
_PROGRESS = re.compile(r"\d%\s")
# The echoes of a pipe the other side closed (as well as rsync's "rsync error: " summary of what it printed).
_ECHOES = ("rsync: connection unexpectedly closed",)


@dataclass(frozen=True)
class Transfer:
    """One copy, checked: the host, which way, the remote path as the tools take it, and the local one."""

    name: str
    direction: str  # PULL | PUSH
    shown: str  # the remote path as the user gave it (or the host's folder), for sentences
    remote: str  # absolute, or "./"-relative to the remote home; no trailing "/"
    local: Path  # absolute: for a pull the folder it goes into, for a push what is sent

    @property
    def source(self) -> str:
        return f"{self.name}:{self.shown}" if self.direction == PULL else str(self.local)

    @property
    def target(self) -> str:
        return str(self.local) if self.direction == PULL else f"{self.name}:{self.shown}"


@dataclass(frozen=True)
class Copied:
    """What a copy did: the tool, and for rsync its counts (None where sftp does not say)."""

    tool: str  # rsync | sftp
    files: int | None = None  # regular files in the source
    sent: int | None = None  # of those, how many were copied (the rest were already there)
    size: int | None = None  # the bytes of the files copied


def pull(name: str, remote: str, local: str | None = None, *, say: Say) -> Copied:
    """Copy `remote` (a file or folder on `name`) into the local folder `local` (default: the current one)."""
    transfer = plan_pull(name, remote, local)
    transfer.local.mkdir(parents=True, exist_ok=True)  # both tools then put the copy inside it
    return _done(transfer, copy(transfer, say), say)


def push(name: str, local: str, remote: str | None = None, *, say: Say) -> Copied:
    """Copy `local` (a file or folder here) into the folder `remote` on `name` (default: the host's folder)."""
    transfer = plan_push(name, local, remote)
    return _done(transfer, copy(transfer, say), say)


def pull_before_stop(name: str, remote: str, local: str | None = None, *, say: Say) -> Copied:
    """For `rdev stop NAME --pull REMOTE`: copy results back before the runtime or job ends. Call it before
    anything is stopped: a copy that fails raises a sentence saying NAME was left running, so a stop never
    loses what the copy did not bring back."""
    try:
        return pull(name, remote, local, say=say)
    except BadInput:
        raise
    except RdevError as err:
        fix = err.fix[:1].lower() + err.fix[1:]
        raise RdevError(f"{err.problem.rstrip('.')}, so {name} was left running", fix) from None


def plan_pull(name: str, remote: str, local: str | None) -> Transfer:
    entry = registry.get(inputs.name(name))  # an unknown name is refused before anything runs
    folder = local_path(local if local is not None else ".")
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"{local} is a file", "give the folder the copy goes into (LOCAL), or leave it out for the "
                       "current folder.")
    return Transfer(entry.name, PULL, remote, remote_path(remote), folder)


def plan_push(name: str, local: str, remote: str | None) -> Transfer:
    entry = registry.get(inputs.name(name))
    source = local_path(local)
    if not source.exists():
        raise BadInput(f"There is no file or folder {local} here", "give one that exists on this laptop.")
    shown = remote if remote is not None else entry.workdir
    return Transfer(entry.name, PUSH, shown, remote_path(shown), source)


def remote_path(value: str) -> str:
    """`value` as both tools take it: absolute, or relative to the remote home behind "./" (so that no tool reads
    it as an option or a `host::` address); no trailing "/". Refused (exit 2) where it could mean something else
    to a shell or a tool on the host: a control character, a leading "-", another user's "~name"."""
    fix = "give a path on the host, absolute or relative to your home there, e.g. results or /content/out."
    if not value:
        raise BadInput("The remote path is empty", fix)
    unsafe = next((c for c in value if unicodedata.category(c) in _UNSAFE), None)
    if unsafe is not None:
        raise BadInput(f"The remote path {value!r} contains the control or invisible character U+{ord(unsafe):04X}",
                       fix)
    if value.startswith("-"):
        raise BadInput(f"The remote path {value!r} starts with '-', which tools read as an option", fix)
    if value.startswith("~") and value != "~" and not value.startswith("~/"):
        raise BadInput(f"The remote path {value!r} names another user's home", "give it as an absolute path.")
    if "\\" in value and any(c in value for c in _WILDCARDS):
        # rsync's check of the names it receives reads such a path differently from what rdev asks for.
        raise BadInput(f"The remote path {value!r} holds both a backslash and a wildcard character, which rsync "
                       "cannot name literally", "copy the folder that holds it.")
    path = "." if value in ("~", "~/") else value.removeprefix("~/")
    if path.startswith("/"):
        return path.rstrip("/") or "/"
    path = path.rstrip("/") or "."
    return path if path == "." or path.startswith("./") else f"./{path}"


def local_path(value: str) -> Path:
    """`value` as an absolute path here: never read as an option or a `host:path` by rsync; refused with a control
    character, which would break an sftp batch line."""
    if not value or any(unicodedata.category(c) in _UNSAFE for c in value):
        raise BadInput(f"The local path {value!r} is empty or contains a control character", "give a plain path.")
    return Path(value).expanduser().absolute()


def copy(transfer: Transfer, say: Say) -> Copied:
    """Copy with rsync where both ends have it, else with sftp; one sentence (RdevError) if the copy fails.

    rsync is tried first: on a host that has it (nearly all), asking beforehand would cost a session of its own,
    a round trip and the login shell's start, on every copy. Only when rsync never got going there is `command -v
    rsync` asked, to tell a host without rsync (sftp then) from one that cannot be reached (ssh's sentence). The
    laptop's rsync likewise: its version is asked only when it refused rdev's options, not before every copy."""
    import shutil

    name = transfer.name
    probe.end_stuck_master(name)
    rsync = shutil.which("rsync")
    here = f"{'.'.join(map(str, RSYNC_MIN))} or newer on this laptop"
    if rsync is None:
        return _sftp(transfer, say, here)
    progress = sys.stderr.isatty()
    code, out, err = _run(rsync_argv(transfer, rsync, progress), progress=progress)
    if code == 0:
        return stats(out)
    if code == REFUSED and local_rsync() is None:
        return _sftp(transfer, say, here)
    if (code == NOT_FOUND or _NEVER_STARTED.search(err)) and not _has_rsync(name):
        return _sftp(transfer, say, f"on {name}")
    line = tool_error(err)
    if code in CUT and not _NEVER_STARTED.search(err):
        raise RdevError(f"Copying {transfer.source} to {transfer.target} was cut off ({line})",
                        "run the same command again: it goes on from where it stopped.")
    raise RdevError(f"Copying {transfer.source} to {transfer.target} failed ({line})", _fix(transfer))


def local_rsync() -> str | None:
    """rsync on this laptop if it is RSYNC_MIN or newer, else None."""
    import shutil

    found = shutil.which("rsync")
    if found is None:
        return None
    try:
        said = subprocess.run([found, "--version"], check=False, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=probe.PROBE_TIMEOUT).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = re.search(r"version (\d+)\.(\d+)\.(\d+)", said)
    return found if version and tuple(map(int, version.groups())) >= RSYNC_MIN else None


def _has_rsync(name: str) -> bool:
    """`command -v rsync` on `name` over its master, under sh: a login shell may be csh or fish, where `command`
    is no builtin (and tcsh's "not found" is no 127). ssh's own failure is raised as its sentence."""
    argv = probe.ssh_argv(name, "-o", "BatchMode=yes", "-o", "ConnectTimeout=20") + ["sh -c 'command -v rsync'"]
    try:
        checked = subprocess.run(argv, check=False, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True, timeout=probe.PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise RdevError(f"Cannot reach {name}: ssh did not finish within {probe.PROBE_TIMEOUT} s.",
                        "Check the network and the server.") from None
    if checked.returncode == SSH_FAILED:
        raise probe.failure(name, checked.stderr)
    return checked.returncode == 0


def rsh() -> str:
    """rsync's -e: the real ssh with rdev's config, never asking anything. rsync splits it at spaces and takes
    quotes (not backslashes), so a word with a space is quoted."""
    words = [probe.ssh_binary(), "-F", str(paths.user_ssh_config()), "-o", "BatchMode=yes"]
    return " ".join(_rsh_word(word) for word in words)


def _rsh_word(word: str) -> str:
    if not re.search(r"[\s'\"]", word):
        return word
    for quote in "'\"":
        if quote not in word:
            return f"{quote}{word}{quote}"
    raise RdevError(f"The path {word!r} holds both kinds of quote, which rsync cannot be given",
                    "use a home folder without quotes.")


def rsync_argv(transfer: Transfer, rsync: str, progress: bool) -> list[str]:
    """rsync with the tree's files, links, modes and times (not owners: a root runtime would keep the laptop's
    uid), resuming into PARTIAL_DIR, arguments inside rsync's protocol (-s), and its numbers at the end."""
    argv = [rsync, "-rlpt", "-s", f"--partial-dir={PARTIAL_DIR}", "--stats", "-e", rsh()]
    if progress:
        argv.append("--info=progress2")
    if transfer.direction == PULL:
        # The sending rsync expands wildcards in what it is asked for: a backslash makes each one literal.
        asked = "".join(f"\\{c}" if c in _WILDCARDS else c for c in transfer.remote)
        return [*argv, f"{transfer.name}:{asked}", f"{transfer.local}/"]
    return [*argv, str(transfer.local), f"{transfer.name}:{transfer.remote}/"]


def _fix(transfer: Transfer) -> str:
    if transfer.direction == PULL:
        return (f"check the path on {transfer.name} (relative to your home there unless it starts with /) and the "
                "room here, then run again.")
    return f"check the folder on {transfer.name} and the room there, then run again."


def sftp_batch(transfer: Transfer) -> str:
    """The sftp commands of one copy; every path quoted, which also makes sftp take wildcards literally."""
    if transfer.direction == PULL:
        return f"get -R -p {_sftp_word(transfer.remote)} {_sftp_word(f'{transfer.local}/')}\n"
    # A leading '-' lets the batch go on when the folder exists; put then copies into it, as rsync does.
    return (f"-mkdir {_sftp_word(transfer.remote)}\n"
            f"put -R -p {_sftp_word(str(transfer.local))} {_sftp_word(f'{transfer.remote}/')}\n")


def _sftp_word(path: str) -> str:
    """A path as one word of an sftp batch line: in double quotes, with its backslashes and quotes escaped."""
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _sftp(transfer: Transfer, say: Say, why: str) -> Copied:
    import shutil

    sftp = shutil.which("sftp")
    if sftp is None:
        raise RdevError(f"There is no rsync {why}, and OpenSSH's sftp is not installed here either",
                        "install rsync or sftp (e.g. 'apt install rsync openssh-client') and run again.")
    say(f"No rsync {why}: copying with sftp, which sends every file again (rsync on both ends would "
        "send only what changed, and resume).")
    argv = [sftp, "-F", str(paths.user_ssh_config()), "-o", "BatchMode=yes", "-S", probe.ssh_binary(), "-b", "-",
            transfer.name]
    code, _, err = _run(argv, batch=sftp_batch(transfer))
    if code == SSH_FAILED:
        raise probe.failure(transfer.name, err)
    if code != 0:
        raise RdevError(f"Copying {transfer.source} to {transfer.target} with sftp failed ({tool_error(err)})",
                        _fix(transfer))
    return Copied("sftp")


def _run(argv: list[str], *, batch: str | None = None, progress: bool = False) -> tuple[int, str, str]:
    """Run a copying tool: its exit status, stdout (less progress lines, shown on stderr if `progress`) and
    stderr. On Ctrl-C or a kill of rdev, the tool is given the time to put a partial file aside."""
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a long error list must not stall the tool
        process = subprocess.Popen(argv, stdin=subprocess.PIPE if batch is not None else subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=errors)
        try:
            if batch is not None and process.stdin is not None:
                process.stdin.write(batch.encode())
                process.stdin.close()
            assert process.stdout is not None
            out = _read_output(process.stdout, progress)
            code = process.wait()
        except BaseException:
            _let_finish(process)
            raise
        errors.seek(0)
        return code, out, errors.read().decode(errors="replace")


def _read_output(stream: IO[bytes], progress: bool) -> str:
    """The tool's stdout without its progress lines, which go to this terminal's stderr instead, in one line."""
    kept: list[str] = []
    pending = b""
    shown = False
    while chunk := os.read(stream.fileno(), 65536):
        *parts, pending = re.split(rb"[\r\n]", pending + chunk)
        for part in parts:
            line = part.decode(errors="replace")
            if not _PROGRESS.search(line):
                kept.append(line)
            elif progress:
                sys.stderr.write("\r" + printable(line.strip()).ljust(60))
                sys.stderr.flush()
                shown = True
    if shown:
        sys.stderr.write("\n")
    return "\n".join([*kept, pending.decode(errors="replace")])


def _let_finish(process: subprocess.Popen) -> None:
    """A terminal's Ctrl-C reached the tool too; a `kill` of rdev did not: pass it on. rsync then keeps the part it
    has in PARTIAL_DIR, which takes it a moment; killed at once, it could not."""
    for wait, step in ((1.0, None), (10.0, process.terminate), (None, process.kill)):
        if process.poll() is not None:
            return
        if step is not None:
            step()
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


def stats(output: str) -> Copied:
    """rsync's --stats numbers (grouped with ',' or '.' by locale) as a Copied."""
    def number(label: str) -> int | None:
        found = re.search(rf"^{label}: ([\d,.]+)", output, re.MULTILINE)
        return int(re.sub(r"[,.]", "", found[1])) if found else None

    files = re.search(r"^Number of files: [\d,.]+ \(reg: ([\d,.]+)", output, re.MULTILINE)
    return Copied("rsync", files=int(re.sub(r"[,.]", "", files[1])) if files else number("Number of files"),
                  sent=number("Number of regular files transferred"), size=number("Total transferred file size"))


def tool_error(stderr: str) -> str:
    """The line of a tool's error output that says what went wrong, printable: the last one, passing over
    rsync's summary of it and the echoes of a closed pipe."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    unsummed = [line for line in lines if not line.startswith("rsync error: ")]
    telling = [line for line in unsummed if not line.startswith(_ECHOES) and "Broken pipe" not in line]
    chosen = (telling or unsummed or lines or ["no error output"])[-1]
    return printable(chosen if len(chosen) <= 300 else chosen[:297] + "...")


def _done(transfer: Transfer, copied: Copied, say: Say) -> Copied:
    verb = "Pulled" if transfer.direction == PULL else "Pushed"
    where = f"{verb} {transfer.source} into {transfer.target}"
    if copied.tool != "rsync" or copied.files is None or copied.sent is None:
        say(f"{where}.")
    elif copied.sent == 0:
        say(f"{where}: nothing new, all {copied.files} files were already there.")
    else:
        rest = copied.files - copied.sent
        say(f"{where}: {copied.sent} of {copied.files} files copied ({_size(copied.size or 0)})"
            f"{f', {rest} already there' if rest else ''}.")
    return copied


def _size(count: int) -> str:
    power, unit = next((p, u) for p, u in ((3, "GB"), (2, "MB"), (1, "kB"), (0, "bytes")) if count >= 1000**p or not p)
    return f"{count} bytes" if not power else f"{count / 1000**power:.1f} {unit}"


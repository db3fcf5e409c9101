"""Finding and ending the processes a server started, from any later process (`stop`)."""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import time
from pathlib import Path

_ESTABLISHED = "01"


def read_pid(pid_file: Path) -> int | None:
    """The pid a pid file starts with (sshd's holds only that; `record` adds a start time after it)."""
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def is_ours(pid: int, marker: str) -> bool:
    """True if `pid` runs and its command line (arguments joined by spaces) holds `marker`, so a reused pid is never killed."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return marker in cmdline


def _stat(pid: int | str) -> list[str]:
    """The fields of /proc/PID/stat after the command name (field 2), which may hold spaces and parentheses: so
    they are split after its last ')'. Field N of proc(5) is item N - 3 here: [0] state, [1] parent, [2] process
    group, [3] session, [19] start time. [] if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def started(pid: int) -> str | None:
    """When `pid` started (None: it does not run, or is a zombie): with the pid, it names one process for good.
    From /proc, else from `ps` (macOS, the BSDs)."""
    if os.path.exists("/proc/self/stat"):
        fields = _stat(pid)
        return fields[19] if len(fields) > 19 and fields[0] != "Z" else None
    shown = subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], check=False, capture_output=True, text=True)
    return shown.stdout.strip() or None


def group_members(leader: int, since: str) -> set[int]:
    """The processes of `leader`'s process group and session started since `since` (its start time: a pid may be
    another's by now), and everything below them: what a command started, unless it made a session of its own."""
    stats = ((int(entry.name), _stat(entry.name)) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    group = {pid for pid, fields in stats if len(fields) > 19 and str(leader) in fields[2:4]
             and int(fields[19]) >= int(since)}
    return {pid for top in group for pid in (top, *descendants(top)) if alive(pid)}


def record(pid_file: Path, pid: int) -> None:
    """Write `pid` with its start time, for a process whose command line need not name anything of ours."""
    pid_file.write_text(f"{pid} {started(pid)}\n")


def read_recorded(pid_file: Path) -> int | None:
    """The pid `record` wrote, if that very process still runs (not a later one given the same pid)."""
    try:
        pid, since = pid_file.read_text().split()
    except (OSError, ValueError):
        return None
    return int(pid) if pid.isdigit() and started(int(pid)) == since and alive(int(pid)) else None


def under(pid: int, commands: tuple[str, ...]) -> bool:
    """True if a process above `pid` is named one of `commands` (its /proc comm): for a session's
    command, the sshd that serves its connection. A process that was detached from its session
    (a server someone started from inside one) has none above it."""
    for above in ancestors(pid):
        try:
            if above > 1 and Path(f"/proc/{above}/comm").read_text().strip() in commands:
                return True
        except OSError:
            return False
    return False


def marked(entry: str) -> list[int]:
    """Processes whose environment holds `entry` (NAME=VALUE), other than this one."""
    wanted = entry.encode() + b"\0"
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            # Entries are NUL-separated; a leading NUL makes the match start at an entry's beginning.
            if b"\0" + wanted in b"\0" + environ.read_bytes() and int(environ.parent.name) != os.getpid():
                found.append(int(environ.parent.name))
        except OSError:
            continue  # ended meanwhile, or another user's
    return found


def connected(address: str, port: int, commands: tuple[str, ...]) -> list[int]:
    """Processes named one of `commands` (their /proc comm) that hold an accepted TCP connection on `address`:`port`.

    sshd's per-connection processes overwrite their command line and environment (setproctitle), so
    once the listener that forked them is gone, the socket they hold is what still names them.
    """
    inodes = {inode for local, inode in _established() if local[1] == port and _same_address(local[0], address)}
    found = []
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            link = os.readlink(fd)
            if link.startswith("socket:[") and int(link[8:-1]) in inodes:
                pid = int(fd.parent.parent.name)
                if pid not in found and (fd.parent.parent / "comm").read_text().strip() in commands:
                    found.append(pid)
        except (OSError, ValueError):
            continue  # ended meanwhile, or another user's
    return found


def _established() -> list[tuple[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int], int]]:
    """((local address, local port), socket inode) of every established TCP connection."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[3] == _ESTABLISHED:
                host, port = fields[1].split(":")
                # The kernel prints the address as 32-bit words in host (little-endian) order.
                raw = b"".join(bytes.fromhex(host[i:i + 8])[::-1] for i in range(0, len(host), 8))
                found.append(((ipaddress.ip_address(raw), int(port, 16)), int(fields[9])))
    return found


def _same_address(local: ipaddress.IPv4Address | ipaddress.IPv6Address, listen: str) -> bool:
    """Whether a connection accepted on `local` came in through a listener bound to `listen`."""
    if listen in ("0.0.0.0", "::"):
        return True
    try:
        wanted = ipaddress.ip_address(listen)
    except ValueError:
        return True  # a name: the port and the command still narrow it down
    return wanted in (local, getattr(local, "ipv4_mapped", None))


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int(_stat(entry.name)[1])
        except IndexError:  # gone meanwhile
            continue
        children.setdefault(parent, []).append(int(entry.name))
    return children


def children(pid: int) -> list[int]:
    """The direct children of `pid`: for the sshd listener, one per open connection."""
    return _children_map().get(pid, [])


def descendants(pid: int) -> list[int]:
    """All processes below `pid`. sshd's per-connection children call setsid(), so a process
    group kill would miss them; the parent links in /proc still lead back to the listener."""
    tree = _children_map()
    found, todo = [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited; only its parent has yet to reap it.
    try:
        return _stat(pid)[0] != "Z"
    except IndexError:
        return False


def ancestors(pid: int) -> list[int]:
    """The processes above `pid`, its parent first."""
    found = []
    while pid > 1:
        try:
            pid = int(_stat(pid)[1])
        except IndexError:
            break
        found.append(pid)
    return found


def own_session(listener: int | None = None) -> set[int]:
    """This process and those above it, up to (not including) `listener`: what `stop`, typed in an
    SSH session of the server it stops, must not end halfway (that session ends when its user leaves)."""
    chain = [os.getpid(), *ancestors(os.getpid())]
    return set(chain[:chain.index(listener)] if listener in chain else chain)


def terminate(pids: list[int], timeout: float = 5.0, listener: int | None = None) -> None:
    """SIGTERM, then SIGKILL whatever is still there after `timeout` seconds; never this process's own
    session below `listener` (the sshd listener being ended, when the caller runs in one of its sessions)."""
    spared = own_session(listener)
    pids = [pid for pid in pids if pid not in spared]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(alive(pid) for pid in pids):
            time.sleep(0.05)
        if not any(alive(pid) for pid in pids):
            return

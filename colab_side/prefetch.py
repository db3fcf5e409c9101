"""Fetch the laptop's editor server onto this machine ahead of the first connection.

Remote-SSH downloads it for the editor's exact commit on first connect (tens of MB; it hangs on a
host without internet). Here it is fetched while sshd starts, into the very place the editor looks
(bootstrap/editor_servers.py), unpacked beside it and put there with one rename: the editor takes
a folder that exists as installed, so a half-unpacked one must never bear the name. A failure is
one line and changes nothing else: the editor then fetches it itself, as without rdev. A folder of the
editor's that is there without its server (open-remote-ssh's leftover of a failed install) is moved out of
the way, unless the editor may be installing into it right now (editor_servers.install_under_way): that
one is left alone.

    python -m colab_side.prefetch [--offer|--carried] [--insecure-mirror] code:stable:COMMIT|codium:...:URL [MIRROR]

On a host without internet the download fails. Run by the laptop with `--offer`, the fetch then says so with the
host's architecture (`rdev-wants: x64`, exit WANTS): the laptop makes the URLs itself (the host names none), downloads
them and runs this again with `--carried`, the archives inside the runtime zip it runs from (`rdev-archives/NAME`,
editor_servers.archive_name), to be unpacked the same way.

An archive is someone else's bytes (a mirror, or whatever answers on the way), so it is unpacked only if every entry
stays in its folder (_vetted) and it is of a server's size (editor_servers.MAX_DOWNLOAD, MAX_UNPACKED); a mirror
must be https, or plain http on loopback or with RDEV_EDITOR_DOWNLOADS_INSECURE=1 (`--insecure-mirror` when the laptop
says so). Any refusal is the same one line and exit 1 as a failed download.
"""

from __future__ import annotations

import os
import platform
import posixpath
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bootstrap import editor_servers
from bootstrap.validate import InvalidValue
from colab_side.environment import without_secrets

if TYPE_CHECKING:
    import tarfile

TIMEOUT = 20  # seconds without a byte before a download is given up

# The fetches this process started, by log and what they fetch: the cell starts one first thing, and
# serve, given the same, reports that one instead of downloading again.
_STARTED: dict[tuple[Path, str], subprocess.Popen] = {}


def in_background(text: str, log: Path) -> subprocess.Popen:
    """Fetch `text` in a process of its own, its line written to `log`: it must not hold anything up, and
    it must finish even when the process that started it ends. A fetch of the same `text` to the same
    `log` that runs or succeeded is reused; one that failed (a network blip) is tried again."""
    child = _STARTED.get((log, text))
    if child is None or child.poll() not in (None, 0):
        env = {**without_secrets(dict(os.environ)), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        with open(log, "wb") as out:
            child = subprocess.Popen([sys.executable, "-m", "colab_side.prefetch", text], stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=out, env=env, start_new_session=True)
        _STARTED[(log, text)] = child
    return child


def fetch(text: str, home: Path | None = None, base: str | None = None, carried: Path | None = None,
          offer: bool = False, insecure: bool = False) -> str:
    """Fetch what `text` (EDITOR:QUALITY:COMMIT[:URL]) names; one line saying what happened. With `carried` (the
    runtime zip this runs from), the archives come from inside it instead of the network; with `offer`, a download
    server out of reach adds a line naming the archives wanted; with `insecure` (or RDEV_EDITOR_DOWNLOADS_INSECURE=1
    here), a mirror may be plain http anywhere."""
    # Imported here, in the fetching process: a server that only starts a fetch does not carry them.
    import http.client
    import tarfile
    try:
        spec = editor_servers.parse(text)
    except InvalidValue as err:
        return f"Editor server: not fetched ({err})"
    home = home or Path.home()
    base = base or os.environ.get(editor_servers.BASE_VARIABLE) or None
    try:
        if base:
            editor_servers.check_source(base, insecure or editor_servers.insecure_allowed(os.environ))
    except InvalidValue as err:
        return f"Editor server: not fetched ({err}); the editor downloads it itself on first connect."
    machine = editor_servers.arch(platform.machine())
    if machine is None:
        return f"Editor server: not fetched (no server is built for {platform.machine()}); the editor says so itself."
    if _alpine():
        return "Editor server: not fetched (Alpine needs the editors' musl builds); the editor downloads it itself."
    wanted = editor_servers.downloads(spec, machine, base)
    try:
        for download in wanted:
            _install(download, home, carried)
    except _Unreachable as err:
        said = f"Editor server: not fetched ({_reason(err.reason)}); the editor downloads it itself on first connect."
        return f"{said}\nrdev-wants: {machine}" if offer else said
    except _Busy as err:
        return f"Editor server: not fetched ({err}); left alone for the editor to finish."
    except (OSError, EOFError, http.client.HTTPException, tarfile.TarError, ValueError) as err:
        return f"Editor server: not fetched ({_reason(err)}); the editor downloads it itself on first connect."
    return f"Editor server: {spec.editor} {spec.commit[:10]} is ready in ~/{Path(download.dest).parts[0]}."


def _alpine() -> bool:
    """Alpine's musl cannot run the glibc builds rdev fetches; the editors pick their own there."""
    try:
        release = Path("/etc/os-release").read_text(errors="replace")
    except OSError:
        return False
    return any(line.strip().replace('"', "").replace("'", "") == "ID=alpine" for line in release.splitlines())


def _reason(err: Exception) -> str:
    text = str(getattr(err, "reason", "") or err)
    return text.splitlines()[0][:160] if text else type(err).__name__


class _Unreachable(Exception):
    """The download server cannot be reached from here (no route, no name, refused): the laptop may fetch it."""

    def __init__(self, reason: Exception) -> None:
        super().__init__(str(reason))
        self.reason = reason


class _Busy(Exception):
    """The editor may be installing into the server's folder right now: it is left alone."""


def _install(download: editor_servers.Download, home: Path, carried: Path | None = None) -> None:
    import tarfile
    import tempfile

    unit = home / (download.unit or download.dest)
    if _taken(download, unit):
        return  # put there earlier, by rdev or by the editor
    unit.parent.mkdir(parents=True, exist_ok=True)
    # Staged beside the unit, on its file system, so that it appears with one rename.
    with tempfile.TemporaryDirectory(prefix=".rdev-fetch-", dir=unit.parent) as scratch:
        archive = Path(scratch) / "archive.tar.gz"
        if carried is None:
            _download(download.url, archive)
        else:
            _unpack_carried(carried, editor_servers.archive_name(download.url), archive)
        staged = Path(scratch) / "unit"
        inside = staged / Path(download.dest).relative_to(download.unit) if download.unit else staged
        inside.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            members = _vetted(tar)  # the whole archive, before anything of it is written
            if download.member:
                _install_member(tar, members, download.member, inside)
            else:
                _install_tree(tar, members, Path(scratch) / "tree", inside)
        if _taken(download, unit):  # the editor installed it while this downloaded: it stays, the editor may run it
            return
        if unit.exists():  # the editor's leftover of a failed install: out of the way, in one step
            os.rename(unit, Path(scratch) / "leftover")
        os.rename(staged, unit)


def _taken(download: editor_servers.Download, unit: Path) -> bool:
    """Whether `unit` is there to stay: installed (by rdev or the editor); _Busy when it is there without being
    complete and the editor may be installing into it. False: absent, or the editor's leftover, to be replaced."""
    if not unit.exists():
        return False
    if download.ready is None or (unit / download.ready).is_file():
        return True
    why = editor_servers.install_under_way(unit)
    if why:
        raise _Busy(f"the editor may be installing it into ~/{download.unit or download.dest} right now: {why}")
    return False


def _download(url: str, archive: Path) -> None:
    import socket
    import urllib.error
    import urllib.request

    try:
        answer = urllib.request.urlopen(url, timeout=TIMEOUT)
    except urllib.error.URLError as err:
        if isinstance(err, urllib.error.HTTPError) or not isinstance(err.reason, (OSError, socket.timeout)):
            raise
        raise _Unreachable(err.reason) from None
    with answer, open(archive, "wb") as out:
        editor_servers.save(answer, out, answer.headers.get("Content-Length"))


def _unpack_carried(carried: Path, name: str, archive: Path) -> None:
    """The archive the laptop put into the runtime zip, copied out to `archive`."""
    import zipfile

    with zipfile.ZipFile(carried) as bundle:
        try:
            member = bundle.open(name)
        except KeyError:
            raise ValueError(f"the laptop sent no {name}") from None
        with member, open(archive, "wb") as out:
            editor_servers.save(member, out)


def _install_member(tar: tarfile.TarFile, members: list[tarfile.TarInfo], name: str, dest: Path) -> None:
    member = next((m for m in members if m.isfile() and posixpath.normpath(m.name) == name), None)
    source = tar.extractfile(member) if member else None
    if source is None:
        raise ValueError(f"the archive holds no file {name}")
    with open(dest, "wb") as out:
        shutil.copyfileobj(source, out)
    dest.chmod(0o755)


def _install_tree(tar: tarfile.TarFile, members: list[tarfile.TarInfo], staged: Path, dest: Path) -> None:
    import tarfile

    if hasattr(tarfile, "data_filter"):  # 3.12, and 3.8.17+, 3.9.17+, 3.10.12+, 3.11.4+: checks again as it writes
        tar.extractall(staged, members=members, filter="data")
    else:
        tar.extractall(staged, members=members)
    entries = list(staged.iterdir())
    # A single top folder (vscode-server-linux-x64/) is the archive's wrapping, not part of the layout.
    root = entries[0] if len(entries) == 1 and entries[0].is_dir() else staged
    if not any(root.iterdir()):
        raise ValueError("the archive is empty")
    os.rename(root, dest)


def _vetted(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The archive's entries, or ValueError naming the first that would write or point outside the folder it unpacks
    into, is a device or a FIFO, or takes the whole past MAX_UNPACKED. tarfile's data filter refuses much the same,
    but only as it writes, only on the Pythons that have it, and with holes closed release after release (2025's
    PATH_MAX and link fixes, CPython gh-135034; a hard link to a symbolic link later, gh-157190): this runs on every
    Python, before anything is written, and leaves each entry as that filter would (ours, no set-id bit, not
    group-writable)."""
    tree = _Tree()
    members, used = [], 0
    for member in tar:  # header by header: a huge entry is refused before its data is read
        used += member.size + editor_servers.BLOCK
        problem = f"takes the archive past {editor_servers.MAX_UNPACKED >> 20} MB unpacked, several times an " \
            "editor's server" if used > editor_servers.MAX_UNPACKED else tree.add(member)
        if problem:
            raise ValueError(f"the archive's entry {member.name[:80]!r} {problem}")
        members.append(_as_data(member))
    for place in tree.links:  # a link checked on its own can be led astray by the links that came after it
        if tree.resolve(place) is None:
            raise ValueError(f"the archive's entry {place[:80]!r} is a link that leads out of its folder through "
                             "the links after it")
    return members


class _Tree:
    """The tree an archive unpacks into, as far as the entries so far make it: where its symbolic links are, and
    which places are taken. Paths are from the tree's top, `/`-separated; None stands for a place outside it."""

    LONGEST = 1024  # characters in a name or a link's target: a server's are far shorter, Linux's PATH_MAX far longer

    def __init__(self) -> None:
        self.links: dict[str, str] = {}  # place -> target, read from the place's folder
        self.link_names: set[str] = set()  # the links' names in the archive, as tarfile looks them up
        self.taken: set[str] = set()  # the places of the entries so far, and of the folders made for them

    def add(self, member: tarfile.TarInfo) -> str | None:
        """Record `member`; how it would write or point outside the tree, or None."""
        if member.name.startswith("/"):
            return "has an absolute name"
        if ".." in member.name.split("/"):
            return "climbs out of its folder with .."
        if max(len(member.name), len(member.linkname)) > self.LONGEST:
            # os.symlink refuses a target past PATH_MAX, and tarfile then copies the entry it names: a link, moved.
            return f"has a name or a target of over {self.LONGEST} characters"
        if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
            return "is a device, a FIFO or another kind of file a server never holds"
        place = self.place(member.name)
        if place is None:
            return "goes through a link out of its folder"
        if place in self.links:  # it would be written through the link
            return "lands on a link an entry before it made"
        if member.issym() and place in self.taken:  # the tree checked so far would no longer be the one on disk
            return "is a link in the place of an entry before it"
        if member.issym() or member.islnk():
            if member.linkname.startswith("/"):
                return "is a link to an absolute path"
            # A symbolic link's target is read from the link's folder, a hard link's from the archive's top.
            folder = place.rpartition("/")[0]
            if self.resolve(f"{folder}/{member.linkname}" if member.issym() else member.linkname) is None:
                return "is a link that leads out of its folder"
        if member.islnk() and (self.place(member.linkname) in self.links
                               or posixpath.normpath(member.linkname) in self.link_names):
            # Linux's link() copies a symbolic link as it is, its target then read from another folder.
            return "is a hard link to a symbolic link"
        if member.issym():
            self.links[place] = member.linkname
            self.link_names.add(posixpath.normpath(member.name))
        while place:
            self.taken.add(place)
            place = place.rpartition("/")[0]
        return None

    def place(self, path: str) -> str | None:
        """Where an entry named `path` lands: its folder followed through the links, its own name not."""
        head, _, last = path.rpartition("/")
        if last in ("", ".", ".."):
            return self.resolve(path)
        folder = self.resolve(head)
        return None if folder is None else f"{folder}/{last}".lstrip("/")

    def resolve(self, path: str) -> str | None:
        """Where `path` leads, following the links as the system would."""
        ahead, hops = path.split("/"), 0
        here: list[str] = []
        while ahead:
            part = ahead.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if not here:
                    return None
                here.pop()
                continue
            here.append(part)
            target = self.links.get("/".join(here))
            if target is not None:
                hops += 1
                if hops > 40 or target.startswith("/"):  # 40: Linux's own limit on links in one lookup
                    return None
                here.pop()
                ahead[:0] = target.split("/")
        return "/".join(here)


def _as_data(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """`member` as the data filter leaves it: owned by whoever unpacks (root would give it the archive's owner), no
    set-id or sticky bit, nothing writable by group or others."""
    member.uid, member.gid, member.uname, member.gname = os.getuid(), os.getgid(), "", ""
    mode = member.mode & 0o755
    if member.isdir():
        member.mode = mode | 0o700
    elif member.isfile():
        member.mode = (mode if mode & 0o100 else mode & ~0o111) | 0o600  # executable by all only if by its owner
    return member


def main(argv: list[str]) -> int:
    flags = set()
    while argv[:1] in (["--offer"], ["--carried"], ["--insecure-mirror"]):
        flags.add(argv[0])
        argv = argv[1:]
    carried = None
    if "--carried" in flags:
        # The runtime zip this module was imported from holds the archives.
        carried = Path(getattr(sys.modules[__name__].__loader__, "archive", "") or ".")
    if len(argv) not in (1, 2) or {"--offer", "--carried"} <= flags:
        print("usage: python -m colab_side.prefetch [--offer|--carried] [--insecure-mirror] EDITOR:QUALITY:COMMIT "
              "[MIRROR]", file=sys.stderr)
        return 2
    said = fetch(argv[0], base=argv[1] if len(argv) == 2 else None, carried=carried, offer="--offer" in flags,
                 insecure="--insecure-mirror" in flags)
    print(said)
    if "\nrdev-wants: " in said:
        return editor_servers.WANTS
    return 0 if "not fetched" not in said else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

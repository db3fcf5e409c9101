"""Fetch the laptop's editor server onto this machine ahead of the first connection.

Remote-SSH downloads it for the editor's exact commit on first connect (tens of MB; it hangs on a
host without internet). Here it is fetched while sshd starts, into the very place the editor looks
(bootstrap/editor_servers.py), unpacked beside it and put there with one rename: the editor takes
a folder that exists as installed, so a half-unpacked one must never bear the name. A failure is
one line and changes nothing else: the editor then fetches it itself, as without rdev.

    python -m colab_side.prefetch code:stable:COMMIT|codium:stable:COMMIT:URL [MIRROR]

On a host without internet the download fails. Run by the laptop with `--offer`, the fetch then says so with the
host's architecture (`rdev-wants: x64`, exit WANTS): the laptop makes the URLs itself (the host names none), downloads
them and runs this again with `--carried`, the archives inside the runtime zip it runs from (`rdev-archives/NAME`,
editor_servers.archive_name), to be unpacked the same way.
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
          offer: bool = False) -> str:
    """Fetch what `text` (EDITOR:QUALITY:COMMIT[:URL]) names; one line saying what happened. With `carried` (the
    runtime zip this runs from), the archives come from inside it instead of the network; with `offer`, a download
    server out of reach adds a line naming the archives wanted."""
    # Imported here, in the fetching process: a server that only starts a fetch does not carry them.
    import http.client
    import tarfile
    try:
        spec = editor_servers.parse(text)
    except InvalidValue as err:
        return f"Editor server: not fetched ({err})"
    home = home or Path.home()
    base = base or os.environ.get(editor_servers.BASE_VARIABLE) or None
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


def _install(download: editor_servers.Download, home: Path, carried: Path | None = None) -> None:
    import tarfile
    import tempfile

    unit = home / (download.unit or download.dest)
    if unit.exists() and (download.ready is None or (unit / download.ready).is_file()):
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
            if download.member:
                _install_member(tar, download.member, inside)
            else:
                _install_tree(tar, Path(scratch) / "tree", inside)
        if unit.exists():  # the editor's leftover of a failed install: out of the way, in one step
            os.rename(unit, Path(scratch) / "leftover")
        os.rename(staged, unit)


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
        shutil.copyfileobj(answer, out, 1 << 20)
        expected = answer.headers.get("Content-Length")
        if expected and expected.isdigit() and out.tell() != int(expected):
            raise ValueError(f"the download ended after {out.tell()} of {expected} bytes")


def _unpack_carried(carried: Path, name: str, archive: Path) -> None:
    """The archive the laptop put into the runtime zip, copied out to `archive`."""
    import zipfile

    with zipfile.ZipFile(carried) as bundle:
        try:
            member = bundle.open(name)
        except KeyError:
            raise ValueError(f"the laptop sent no {name}") from None
        with member, open(archive, "wb") as out:
            shutil.copyfileobj(member, out, 1 << 20)


def _install_member(tar: tarfile.TarFile, name: str, dest: Path) -> None:
    member = next((m for m in tar.getmembers() if m.isfile() and posixpath.normpath(m.name) == name), None)
    source = tar.extractfile(member) if member else None
    if source is None:
        raise ValueError(f"the archive holds no file {name}")
    with open(dest, "wb") as out:
        shutil.copyfileobj(source, out)
    dest.chmod(0o755)


def _install_tree(tar: tarfile.TarFile, staged: Path, dest: Path) -> None:
    members = [m for m in tar.getmembers() if _safe(m)]
    if len(members) != len(tar.getmembers()):
        raise ValueError("the archive has entries that would land outside its folder")
    tar.extractall(staged, members=members)
    entries = list(staged.iterdir())
    # A single top folder (vscode-server-linux-x64/) is the archive's wrapping, not part of the layout.
    root = entries[0] if len(entries) == 1 and entries[0].is_dir() else staged
    if not any(root.iterdir()):
        raise ValueError("the archive is empty")
    os.rename(root, dest)


def _safe(member: tarfile.TarInfo) -> bool:
    """Regular files, folders and links that stay inside the tree; nothing absolute, no `..`, no devices."""
    name = posixpath.normpath(member.name)
    if name.startswith(("/", "../")) or name == ".." or not (member.isfile() or member.isdir() or member.issym()
                                                            or member.islnk()):
        return False
    if member.issym() or member.islnk():
        target = member.linkname if member.islnk() else posixpath.join(posixpath.dirname(name), member.linkname)
        target = posixpath.normpath(target)
        return not (member.linkname.startswith("/") or target.startswith("../") or target == "..")
    return True


def main(argv: list[str]) -> int:
    carried, offer = None, argv[:1] == ["--offer"]
    if argv[:1] == ["--carried"]:
        # The runtime zip this module was imported from holds the archives.
        carried = Path(getattr(sys.modules[__name__].__loader__, "archive", "") or ".")
    argv = argv[1:] if argv[:1] in (["--offer"], ["--carried"]) else argv
    if len(argv) not in (1, 2):
        print("usage: python -m colab_side.prefetch [--offer|--carried] EDITOR:QUALITY:COMMIT [MIRROR]", file=sys.stderr)
        return 2
    said = fetch(argv[0], base=argv[1] if len(argv) == 2 else None, carried=carried, offer=offer)
    print(said)
    if "\nrdev-wants: " in said:
        return editor_servers.WANTS
    return 0 if "not fetched" not in said else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""`rdev colab cell`: the notebook cell with this laptop's key and the chosen tunnel in it, nothing to edit.

The text comes from bootstrap's template; this module decides what the cell installs. By default
the cell carries this laptop's own runtime side (colab_side and bootstrap, standard library only)
as a zip, so that the runtime runs exactly the laptop's rdev with nothing published, and pip
fetches only the package its tunnel needs. `--source` installs a given requirement instead. The
cell is printed and copied, so nothing secret may go into it: a source URL with a login is refused.
"""

from __future__ import annotations

import platform
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from bootstrap import cell as notebook_cell
from bootstrap.ticket import PUBLIC_TUNNELS
from bootstrap.validate import InvalidValue
from client_side.errors import BadInput, RdevError, split
from client_side.local import paths
from client_side.ssh import keys
from client_side.ssh.shipped import runtime_zip
from colab_side import runtime as runtimes

DISTRIBUTION = "rdev"
ARCHIVES = (".whl", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip")
_KINDS = ("a git+https:// URL (optionally ending in @REF), an https:// URL of a wheel or source archive, "
          "or an absolute path on the runtime (e.g. /kaggle/input/rdev)")


def cell(tunnel: str, runtime: str, source: str | None, drive: bool = False) -> str:
    """The cell's text for `tunnel` on `runtime`, with rdev's public key (made if missing) in it; with
    `drive`, it writes the ticket file to the user's Drive and tells the laptop command that reads it."""
    # A notebook runtime is reachable only through a tunnel; "direct" is for tests and LAN boxes.
    if tunnel not in PUBLIC_TUNNELS:
        raise BadInput(f"The tunnel {tunnel!r} cannot reach a notebook", "use cloudflared or ngrok.")
    # Every option is checked before the key pair is made: bad input writes nothing.
    try:
        notebook_cell.check(tunnel, runtime, drive=drive)
    except InvalidValue as err:
        raise BadInput(*split(str(err))) from None
    installs = requirement(source) if source is not None else None
    ticket = notebook_cell.Drive(name=runtime, laptop_file=f"{drive_folder()}/rdev/{runtime}.ticket") if drive else None
    try:
        return notebook_cell.render(keys.public_key(), tunnel, runtime, installs,
                                    runtime_zip=runtime_zip() if installs is None else None, drive=ticket,
                                    editor_server=_editor_server())
    except InvalidValue as err:
        raise BadInput(*split(str(err))) from None


def _editor_server() -> str | None:
    """This laptop's editor server, for the runtime to fetch while sshd starts (none if no editor is found)."""
    from client_side.editors import editor, server as editor_server

    try:
        return editor_server.spec(editor.choose(None))
    except RdevError:
        return None  # an editor setting that is wrong is said by `rdev connect`, where it matters


def drive_folder(system: str | None = None) -> str:
    """'My Drive' as Google Drive for desktop shows it on this laptop: found where it is, else its usual
    place (macOS: ~/Library/CloudStorage/GoogleDrive-ACCOUNT/My Drive; Windows: G:/My Drive)."""
    system = system or platform.system()
    if system == "Darwin":
        storage = paths.home() / "Library" / "CloudStorage"
        found = sorted(storage.glob("GoogleDrive-*/My Drive"))
        return str(found[0] if found else storage / "GoogleDrive-ACCOUNT" / "My Drive")
    if system == "Windows":
        return "G:/My Drive"
    # Google has no Drive client for Linux: a sync tool (rclone, insync) puts My Drive where it is told.
    return str(paths.home() / "Google Drive" / "My Drive")


def policy_note(runtime: str) -> str:
    """What the notebook service's rules say about SSH there: the same words the cell prints on the runtime."""
    return runtimes.policy_note(runtime) or ""


def requirement(source: str) -> str:
    """What the cell's pip installs for `--source`."""
    if "://" in source:
        return _from_url(source)
    # The path is one on the runtime (Linux), whatever this laptop's OS is.
    if source.isprintable() and PurePosixPath(source).is_absolute():
        return source
    raise BadInput(f"The source {source!r} is not {_KINDS}", "pass one of those.")


def copy(text: str) -> bool:
    """Put `text` on the clipboard; False where there is no clipboard (a server, a container)."""
    import pyperclip

    try:
        pyperclip.copy(text)
    except pyperclip.PyperclipException:
        return False
    return True


def _from_url(url: str) -> str:
    # The URL is not echoed until it is known to hold no login or query: that part may be a token.
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or not url.isprintable():
        raise BadInput("The source URL does not parse", f"pass {_KINDS}.")
    if "@" in parts.netloc or parts.query:
        raise BadInput("The source URL carries a login or a query (where tokens go), and the cell is printed and "
                       "copied", "make the repository or file public, or put a wheel on the runtime (Drive, a Kaggle "
                       "dataset) and pass its path.")
    vcs = parts.scheme == "git+https" and bool(parts.path.strip("/"))
    archive = parts.scheme == "https" and parts.path.lower().endswith(ARCHIVES)
    if not parts.hostname or not (vcs or archive):
        raise BadInput(f"The source {url!r} is not {_KINDS}", "pass one of those.")
    return f"{DISTRIBUTION} @ {url}"

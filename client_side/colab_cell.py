"""`rdev colab cell`: the notebook cell with this laptop's key and the chosen tunnel in it, nothing to edit.

The text comes from bootstrap's template; this module decides what the cell's pip installs, so
that the runtime runs the same rdev as the laptop and both agree on the ticket format. The cell is
printed and copied, so nothing secret may go into it: a source URL with a login is refused.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from bootstrap import cell as notebook_cell
from bootstrap.ticket import PUBLIC_TUNNELS
from bootstrap.validate import InvalidValue
from client_side import keys
from client_side.errors import BadInput, split

DISTRIBUTION = "rdev"
ARCHIVES = (".whl", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip")
_KINDS = ("a git+https:// URL (optionally ending in @REF), an https:// URL of a wheel or source archive, "
          "or an absolute path on the runtime (e.g. /kaggle/input/rdev)")


def cell(tunnel: str, runtime: str, source: str | None) -> str:
    """The cell's text for `tunnel` on `runtime`, with rdev's public key (made if missing) in it."""
    # A notebook runtime is reachable only through a tunnel; "direct" is for tests and LAN boxes.
    if tunnel not in PUBLIC_TUNNELS:
        raise BadInput(f"The tunnel {tunnel!r} cannot reach a notebook", "use cloudflared or ngrok.")
    if runtime not in notebook_cell.RUNTIMES:
        raise BadInput(f"The runtime {runtime!r} has no cell", f"use {' or '.join(notebook_cell.RUNTIMES)}.")
    # Every option is checked before the key pair is made: bad input writes nothing.
    installs = requirement(source)
    try:
        return notebook_cell.render(keys.public_key(), tunnel, runtime, installs)
    except InvalidValue as err:
        raise BadInput(*split(str(err))) from None


def requirement(source: str | None) -> str:
    """What the cell's pip installs: `source` when given, else exactly the rdev running here."""
    if source is None:
        return _installed()
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


def installed_from_folder() -> bool:
    """True when this rdev came from a local folder (a checkout), so the index may not have its version."""
    from importlib import metadata

    try:
        origin = json.loads(metadata.distribution(DISTRIBUTION).read_text("direct_url.json") or "{}")
    except metadata.PackageNotFoundError:
        return False
    return "dir_info" in origin


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


def _installed() -> str:
    """The installed rdev as a requirement: its commit if it came from git (PEP 610), else its version."""
    from importlib import metadata

    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise BadInput(f"{DISTRIBUTION} is not installed as a package here, so its version is unknown",
                       "install it with pip, or pass --source.") from None
    origin = json.loads(dist.read_text("direct_url.json") or "{}")
    vcs = origin.get("vcs_info")
    if not vcs:
        # From an index, a wheel or a local folder: the runtime gets the same version from the index.
        return f"{DISTRIBUTION}=={dist.version}"
    try:
        return _from_url(f"{vcs['vcs']}+{origin['url']}@{vcs['commit_id']}")
    except BadInput:
        raise BadInput(f"This {DISTRIBUTION} was installed from a {vcs['vcs']} URL that a runtime cannot fetch "
                       "as is (not https, or with a login)", "pass --source.") from None

"""Which editor server the remote should fetch ahead: the laptop's editor and its exact commit.

`EDITOR --version` prints the version, the commit and the laptop's architecture, one per line
(docs/editor-servers.md); the remote picks its own architecture. VS Code and Insiders need no more.
VSCodium's download is named by a release that only its product.json holds (beside its launcher, as
Electron apps lay it out): the URL is made here as open-remote-ssh makes it (its template, else the
default, with version, release, commit and quality), leaving the remote's os and arch. Cursor and
Windsurf are not fetched ahead (bootstrap/editor_servers.py says why).
"""

from __future__ import annotations

import json
import os
import subprocess
from http.client import HTTPException
from pathlib import Path

from bootstrap import editor_servers
from bootstrap.validate import InvalidValue
from client_side.editors import archives
from client_side.editors.editor import Editor
from client_side.errors import RdevError, printable
from client_side.ssh import shipped

FETCH_TIMEOUT = 300  # a server is tens of MB; a host that cannot fetch it says so well before

_QUALITY = {"code": "stable", "code-insiders": "insider"}
# open-remote-ssh's own default (src/serverSetup.ts), for a product.json without a template.
CODIUM_TEMPLATE = ("https://github.com/VSCodium/vscodium/releases/download/${version}.${release}/"
                   "vscodium-reh-${os}-${arch}-${version}.${release}.tar.gz")


def spec(editor: Editor | None) -> str | None:
    """What to fetch for `editor` (EDITOR:QUALITY:COMMIT[:URL]), or None when there is none to fetch
    (or it would not say)."""
    if editor is None or (editor.kind.name not in _QUALITY and editor.kind.name != "codium"):
        return None
    try:
        lines = [line.strip() for line in subprocess.run([editor.path, "--version"], check=False, capture_output=True, text=True,
                                                         timeout=15, stdin=subprocess.DEVNULL).stdout.splitlines()]
    except (OSError, subprocess.TimeoutExpired):
        return None
    if len(lines) < 2:
        return None
    version, commit = lines[0], lines[1]
    wanted = f"code:{_QUALITY[editor.kind.name]}:{commit}" if editor.kind.name in _QUALITY else _codium(editor, version,
                                                                                                          commit)
    try:
        return editor_servers.parse(wanted).text() if wanted else None
    except InvalidValue:
        return None


def _codium(editor: Editor, version: str, commit: str) -> str | None:
    """codium:stable:COMMIT:URL from VSCodium's product.json, if it is the install rdev knows the layout of."""
    launcher = Path(editor.path).resolve()
    # Linux and Windows: <app>/bin/codium with <app>/resources/app/product.json; macOS: .../Resources/app/bin/codium.
    for product_json in (launcher.parent.parent / "resources" / "app" / "product.json",
                         launcher.parent.parent / "product.json"):
        try:
            product = json.loads(product_json.read_text(encoding="utf-8"))
            break
        except (OSError, ValueError):
            continue
    else:
        return None
    if not isinstance(product, dict) or product.get("commit") != commit or product.get("quality") != "stable" \
            or product.get("serverDataFolderName") != ".vscodium-server" \
            or product.get("serverApplicationName") != "codium-server":
        return None  # another build, or one that installs elsewhere: its layout is not the one rdev knows
    url = str(product.get("serverDownloadUrlTemplate") or CODIUM_TEMPLATE)
    if "${release}" in url and not product.get("release"):
        return None  # open-remote-ssh would ask GitHub which release; rdev does not guess
    for name, value in (("version", version.replace("-insider", "")), ("release", str(product.get("release", ""))),
                        ("commit", commit), ("quality", "stable")):
        url = url.replace("${" + name + "}", value)
    return f"codium:stable:{commit}:{url}"


def fetch_on(name: str, editor: Editor | None, python: str | None = None) -> str | None:
    """Have host `name` fetch `editor`'s server before the editor connects, or, where it cannot reach the
    download server, send it from this laptop; the line to show (None when there is nothing to fetch). A failure
    changes nothing: the editor then fetches it itself."""
    wanted = spec(editor)
    if wanted is None:
        return None
    mirror = [os.environ[editor_servers.BASE_VARIABLE]] if os.environ.get(editor_servers.BASE_VARIABLE) else []
    # The user's opt-in into a plain-http mirror holds on the host too.
    insecure = ["--insecure-mirror"] if mirror and editor_servers.insecure_allowed(os.environ) else []
    try:
        result = shipped.run(name, "prefetch", "--offer", *insecure, wanted, *mirror, python=python, timeout=FETCH_TIMEOUT)
        lines = result.stdout.decode(errors="replace").splitlines()
        machine = next((line.split()[-1] for line in lines if line.startswith("rdev-wants: ")), None)
        if result.returncode != editor_servers.WANTS or machine not in editor_servers.ARCHES:
            return _said(lines)
        # The URLs are made here, from what the laptop asked for: a host only names its architecture.
        urls = [download.url for download in editor_servers.downloads(editor_servers.parse(wanted), machine,
                                                                       mirror[0] if mirror else None)]
        try:
            carrying = {editor_servers.archive_name(url): archives.cached(url) for url in urls}
        except (OSError, ValueError, HTTPException) as err:
            reason = str(getattr(err, "reason", "") or err).splitlines()[0][:160]
            return f"Editor server: not fetched (neither {name} nor this laptop could download it: {reason}); the " \
                   "editor downloads it itself."
        sent = shipped.run(name, "prefetch", "--carried", *insecure, wanted, *mirror, python=python, carrying=carrying,
                           timeout=FETCH_TIMEOUT)
        line = _said(sent.stdout.decode(errors="replace").splitlines())
        if sent.returncode != 0:
            return line
        return line.rstrip(".") + f", sent from this laptop ({name} cannot reach the download server)."
    except RdevError as err:  # no Python new enough there, or a download the laptop refused
        return f"Editor server: not fetched ({err.sentence()}); the editor downloads it itself."
    except subprocess.TimeoutExpired:
        return f"Editor server: not fetched (no answer within {FETCH_TIMEOUT} s); the editor downloads it itself."


def _said(lines: list[str]) -> str:
    said = [line for line in lines if line.startswith("Editor server:")]
    if said:
        return printable(said[-1])
    return "Editor server: not fetched (the host could not run rdev's fetch); the editor downloads it itself."

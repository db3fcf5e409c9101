"""Where an editor's remote server comes from, where the editor looks for it on the remote, and
whether the editor may be installing it there right now (sources in docs/editor-servers.md).

The laptop names its editor, quality and commit as one word, `code:stable:COMMIT`; the runtime,
which knows its own machine, turns that into downloads for its architecture and home. VS Code
and Insiders (Microsoft's Remote-SSH, exec-server mode, its default) look for their CLI at
`~/.vscode-server/code-COMMIT` and the server in `~/.vscode-server/cli/servers/Stable-COMMIT/server`.
VSCodium (open-remote-ssh) looks in `~/.vscodium-server/bin/COMMIT`; its download is named by a
release only the laptop's product.json knows, so the laptop sends the URL as open-remote-ssh makes
it, `codium:stable:COMMIT:URL`, with `${os}` and `${arch}` left for the runtime. Not fetched ahead:
Cursor and Windsurf, whose layout has no public account.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bootstrap.validate import InvalidValue

# A mirror (or the tests' stand-in) in place of the editors' own download servers: https, or plain http on this
# machine's loopback, or plain http anywhere when the user says so with INSECURE_VARIABLE=1.
BASE_VARIABLE = "RDEV_EDITOR_DOWNLOADS"
INSECURE_VARIABLE = "RDEV_EDITOR_DOWNLOADS_INSECURE"
# What one archive may bring. VS Code's server is some 60-80 MB packed and 200 MB unpacked: a few times that leaves
# room for the editors to grow, and keeps a hostile or broken server from filling the disk.
MAX_DOWNLOAD = 400 * 2**20  # bytes downloaded (or carried from the laptop)
MAX_UNPACKED = 2**30  # bytes unpacked, each entry counting at least BLOCK
BLOCK = 4096  # what a file system gives even an empty file: a million empty entries weigh as much as 4 GB
_COMMIT = re.compile(r"[0-9a-f]{40}")
# A VSCodium download as the laptop sends it: https, nothing a shell, a cell literal or a URL parser
# could take apart, and only the runtime's two placeholders left.
_CODIUM_URL = re.compile(r"https://[A-Za-z0-9.-]+(?:/(?:[A-Za-z0-9._~%+-]|\$\{os\}|\$\{arch\})*)+")
# Seconds without a write after which a server's folder without its server is the editor's leftover, not its install
# under way: open-remote-ssh's wget gives up after 3 tries of 10 s, and tar writes as it goes.
QUIET = 120
_ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}
ARCHES = frozenset(_ARCH.values())  # the architectures the editors build servers for


@dataclass(frozen=True)
class Spec:
    """The editor whose server to fetch: `code`, of quality stable (VS Code) or insider (Insiders), or
    `codium` (VSCodium) with its download `url`."""

    editor: str
    quality: str
    commit: str
    url: str | None = None

    def text(self) -> str:
        return ":".join([self.editor, self.quality, self.commit, *([self.url] if self.url else [])])


@dataclass(frozen=True)
class Download:
    """One archive, and where it goes under the remote home; `member` names the one file of the archive
    to install as `dest` (VS Code's CLI), else the archive's tree goes there without its top folder.
    `unit` is the folder (at or above `dest`) that must appear in one step, whole. The editor takes it
    for "installed" when it exists, or, with `ready`, when that file in it exists (open-remote-ssh makes
    the folder before it downloads and leaves it behind when that fails: such a leftover is replaced)."""

    url: str
    dest: str
    member: str | None = None
    unit: str | None = None  # None: dest itself
    ready: str | None = None


def parse(text: str) -> Spec:
    editor, _, rest = text.partition(":")
    quality, _, rest = rest.partition(":")
    commit, _, url = rest.partition(":")
    spec = Spec(editor, quality, commit, url or None)
    code = editor == "code" and quality in ("stable", "insider") and not url
    codium = editor == "codium" and quality == "stable" and len(url) < 400 and _CODIUM_URL.fullmatch(url) \
        and "${arch}" in url
    if not _COMMIT.fullmatch(commit) or not (code or codium):
        raise InvalidValue(f"The editor server {text!r} is not EDITOR:QUALITY:COMMIT as rdev writes it "
                           "(e.g. code:stable:<40 hex digits>).")
    return spec


def arch(machine: str) -> str | None:
    """The editors' name for this machine's architecture (`uname -m`), or None for one they do not serve."""
    return _ARCH.get(machine.lower())


def downloads(spec: Spec, machine_arch: str, base: str | None = None) -> list[Download]:
    """What to fetch for `spec` on a Linux (glibc) machine of `machine_arch`; `base` replaces the
    download server's scheme and host (a mirror, or the tests' stand-in)."""
    commit = spec.commit
    if spec.editor == "codium" and spec.url:
        url = spec.url.replace("${os}", "linux").replace("${arch}", machine_arch)
        if base:  # the mirror stands for VSCodium's host too
            url = base.rstrip("/") + "/" + url.split("/", 3)[3]
        # A flat archive (entries start with ./), unpacked as `tar --strip-components 1` would.
        return [Download(url, f".vscodium-server/bin/{commit}", ready="bin/codium-server")]
    host = base or "https://update.code.visualstudio.com"
    stable = spec.quality == "stable"
    folder, cli, servers = (".vscode-server", "code", "Stable") if stable else \
        (".vscode-server-insiders", "code-insiders", "Insiders")
    return [Download(f"{host}/commit:{commit}/server-linux-{machine_arch}/{spec.quality}",
                     f"{folder}/cli/servers/{servers}-{commit}/server", unit=f"{folder}/cli/servers/{servers}-{commit}"),
            Download(f"{host}/commit:{commit}/cli-alpine-{machine_arch}/{spec.quality}", f"{folder}/{cli}-{commit}", cli)]


class TooLarge(ValueError):
    """A download over MAX_DOWNLOAD bytes."""


def save(source: IO[bytes], out: IO[bytes], length: str | None = None) -> None:
    """Copy a download (an HTTP answer whose Content-Length is `length`, or an archive the laptop carried) into `out`:
    TooLarge past MAX_DOWNLOAD bytes, whatever the server claimed, and ValueError when it ends short of `length`."""
    claimed = int(length) if length and length.isdigit() else None
    too_large = TooLarge(f"the download is over {MAX_DOWNLOAD >> 20} MB, several times an editor's server: check "
                         f"the download server, or the mirror {BASE_VARIABLE} names")
    if claimed is not None and claimed > MAX_DOWNLOAD:
        raise too_large  # refused before a byte is read
    copied = 0
    while True:
        chunk = source.read(1 << 20)
        if not chunk:
            break
        copied += len(chunk)
        if copied > MAX_DOWNLOAD:
            raise too_large
        out.write(chunk)
    if claimed is not None and copied != claimed:
        raise ValueError(f"the download ended after {copied} of {claimed} bytes")


def insecure_allowed(environ: Mapping[str, str]) -> bool:
    """Whether the user accepts plain http from any mirror (INSECURE_VARIABLE=1)."""
    return environ.get(INSECURE_VARIABLE) == "1"


def check_source(url: str, insecure: bool = False) -> str:
    """`url` (a mirror, or an address made from one) if rdev may download an editor's server from it; else
    InvalidValue, one sentence with the fix. A server is code the editor runs: plain http lets anyone on the way
    swap it, so only https is taken, or plain http to this machine's loopback (it never crosses a network: an SSH
    tunnel, a local cache), or any plain http with `insecure` (the user's explicit INSECURE_VARIABLE=1)."""
    import ipaddress
    from urllib.parse import urlsplit

    shown = repr(url[:80])
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname or ""
        parts.port  # noqa: B018 (read to refuse a port that is no number)
    except ValueError:
        scheme, host = "", ""
    if scheme not in ("https", "http") or not host:
        raise InvalidValue(f"{shown} is no download address: set {BASE_VARIABLE} to https://HOST[:PORT][/PATH]")
    if scheme == "http" and not insecure:
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:  # a name, not an address
            loopback = False
        if not loopback:
            raise InvalidValue(f"{shown} is plain http, which anyone on the way can alter: serve the mirror over "
                               f"https, or set {INSECURE_VARIABLE}=1 to accept plain http")
    return url


WANTS = 3  # colab_side.prefetch --offer's exit status when the host could not download: the laptop may send them


def archive_name(url: str) -> str:
    """The name an archive travels under inside the runtime zip, when the laptop fetched it for a host without
    internet (colab_side.prefetch --carried)."""
    return f"rdev-archives/{hashlib.sha256(url.encode()).hexdigest()[:24]}.tar.gz"


def install_under_way(folder: Path) -> str | None:
    """Why `folder` (a server's, there without its server) may be the editor's install under way, or None: a leftover.
    open-remote-ssh's script takes no lock: it makes the folder, `pushd`es into it, downloads there (wget or curl,
    into vscode-server.tar.gz) and unpacks there (tar). So a process of this machine working in it (its working
    folder, program or an open file there), or a write within QUIET seconds (that process may run on another node of
    a shared home), is taken for one. (VS Code's CLI unpacks into NAME.staging and renames it: never half there.)"""
    try:
        newest = max(os.lstat(path).st_mtime for path in [folder, *folder.iterdir()])
    except OSError:  # it changes as it is read: being written to
        return "it changes as rdev looks"
    if time.time() - newest < QUIET:
        return f"written to {max(time.time() - newest, 0):.0f} s ago"
    inside = os.path.realpath(folder)
    for process in Path("/proc").glob("[0-9]*"):  # Linux's; only this user's processes (or all, for root) show
        try:
            links = ["cwd", "exe", *(f"fd/{fd}" for fd in os.listdir(process / "fd"))]
        except OSError:
            continue
        for link in links:
            with contextlib.suppress(OSError):
                target = os.readlink(process / link)
                if target == inside or target.startswith(inside + "/"):
                    return f"process {process.name} works in it"
    return None

"""Where an editor's remote server comes from, and where the editor looks for it on the remote
(sources in docs/editor-servers.md).

The laptop names its editor, quality and commit as one word, `code:stable:COMMIT`; the runtime,
which knows its own machine, turns that into downloads for its architecture and home. VS Code
and Insiders (Microsoft's Remote-SSH, exec-server mode, its default) look for their CLI at
`~/.vscode-server/code-COMMIT` and the server in `~/.vscode-server/cli/servers/Stable-COMMIT/server`.
Not fetched ahead: VSCodium, whose download is named by a release number that `codium --version`
does not print (and whose naming changed at 1.99); Cursor and Windsurf, whose layout has no
public account.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bootstrap.validate import InvalidValue

# A mirror (or the tests' stand-in) in place of the editors' own download servers.
BASE_VARIABLE = "RDEV_EDITOR_DOWNLOADS"
_COMMIT = re.compile(r"[0-9a-f]{40}")
_ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class Spec:
    """The editor whose server to fetch: `code`, of quality stable (VS Code) or insider (Insiders)."""

    editor: str
    quality: str
    commit: str

    def text(self) -> str:
        return f"{self.editor}:{self.quality}:{self.commit}"


@dataclass(frozen=True)
class Download:
    """One archive, and where it goes under the remote home; `member` names the one file of the archive
    to install as `dest` (VS Code's CLI), else the archive's tree goes there without its top folder.
    `unit` is the folder (at or above `dest`) whose existence the editor takes for "installed": it
    must appear in one step, whole."""

    url: str
    dest: str
    member: str | None = None
    unit: str | None = None  # None: dest itself


def parse(text: str) -> Spec:
    editor, _, rest = text.partition(":")
    quality, _, commit = rest.partition(":")
    spec = Spec(editor, quality, commit)
    if not _COMMIT.fullmatch(commit) or editor != "code" or quality not in ("stable", "insider"):
        raise InvalidValue(f"The editor server {text!r} is not EDITOR:QUALITY:COMMIT as rdev writes it "
                           "(e.g. code:stable:<40 hex digits>).")
    return spec


def arch(machine: str) -> str | None:
    """The editors' name for this machine's architecture (`uname -m`), or None for one they do not serve."""
    return _ARCH.get(machine.lower())


def downloads(spec: Spec, machine_arch: str, base: str | None = None) -> list[Download]:
    commit = spec.commit
    host = base or "https://update.code.visualstudio.com"
    stable = spec.quality == "stable"
    folder, cli, servers = (".vscode-server", "code", "Stable") if stable else \
        (".vscode-server-insiders", "code-insiders", "Insiders")
    return [Download(f"{host}/commit:{commit}/server-linux-{machine_arch}/{spec.quality}",
                     f"{folder}/cli/servers/{servers}-{commit}/server", unit=f"{folder}/cli/servers/{servers}-{commit}"),
            Download(f"{host}/commit:{commit}/cli-alpine-{machine_arch}/{spec.quality}", f"{folder}/{cli}-{commit}", cli)]

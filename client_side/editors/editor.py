"""Finding the editor (VS Code or a fork) and opening a remote folder in it over Remote-SSH.

Every supported editor takes `--remote ssh-remote+NAME PATH`, but each needs its own remote-SSH
extension: Microsoft's works only in Microsoft's builds, so the forks ship or publish their own.
"""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from client_side.errors import BadInput, RdevError
from client_side.local import paths

LIST_TIMEOUT = 60


@dataclass(frozen=True)
class Kind:
    """One editor product: its command, the extension it needs for SSH, and where it installs."""

    name: str  # its command, and the name --editor and RDEV_EDITOR accept
    title: str
    extensions: tuple[str, ...]  # any of these gives it Remote-SSH; the first is the one to install; () = built in
    config_folder: str  # the folder under the OS's config place that holds User/settings.json
    linux: tuple[str, ...]
    mac: tuple[str, ...]  # inside /Applications or ~/Applications
    windows: tuple[str, ...]  # under %LOCALAPPDATA%\Programs or %ProgramFiles%


KINDS: tuple[Kind, ...] = (
    Kind("code", "VS Code", ("ms-vscode-remote.remote-ssh",), "Code",
         ("/usr/bin/code", "/usr/share/code/bin/code", "/snap/bin/code"),
         ("Visual Studio Code.app/Contents/Resources/app/bin/code",),
         ("Microsoft VS Code/bin/code.cmd",)),
    Kind("code-insiders", "VS Code Insiders", ("ms-vscode-remote.remote-ssh",), "Code - Insiders",
         ("/usr/bin/code-insiders", "/usr/share/code-insiders/bin/code-insiders", "/snap/bin/code-insiders"),
         ("Visual Studio Code - Insiders.app/Contents/Resources/app/bin/code-insiders",),
         ("Microsoft VS Code Insiders/bin/code-insiders.cmd",)),
    # Cursor replaced its bundled open-remote-ssh fork with Anysphere's Remote-SSH in 2025.
    Kind("cursor", "Cursor", ("anysphere.remote-ssh", "anysphere.open-remote-ssh"), "Cursor",
         ("/usr/bin/cursor", "/usr/share/cursor/bin/cursor", "/opt/Cursor/resources/app/bin/cursor"),
         ("Cursor.app/Contents/Resources/app/bin/cursor",),
         ("cursor/resources/app/bin/cursor.cmd",)),
    Kind("codium", "VSCodium", ("jeanp413.open-remote-ssh",), "VSCodium",
         ("/usr/bin/codium", "/usr/share/codium/bin/codium", "/snap/bin/codium"),
         ("VSCodium.app/Contents/Resources/app/bin/codium",),
         ("VSCodium/bin/codium.cmd",)),
    # Windsurf bundles its SSH extension, and --list-extensions does not show bundled ones.
    Kind("windsurf", "Windsurf", (), "Windsurf",
         ("/usr/bin/windsurf", "/usr/share/windsurf/bin/windsurf"),
         ("Windsurf.app/Contents/Resources/app/bin/windsurf",),
         ("Windsurf/bin/windsurf.cmd",)),
)
BY_NAME = {kind.name: kind for kind in KINDS}
NAMES = ", ".join(BY_NAME)


@dataclass(frozen=True)
class Editor:
    kind: Kind
    path: str


def install_places(kind: Kind, system: str | None = None, env: dict[str, str] | None = None,
                   home: Path | None = None) -> list[Path]:
    """Where `kind` installs its command on this OS, besides PATH, most usual first."""
    system = system or platform.system()
    environ = os.environ if env is None else env
    home = home or paths.home()
    if system == "Darwin":
        return [root / app for app in kind.mac for root in (Path("/Applications"), home / "Applications")]
    if system == "Windows":
        roots = [Path(environ["LOCALAPPDATA"]) / "Programs"] if environ.get("LOCALAPPDATA") else []
        roots += [Path(environ[var]) for var in ("ProgramFiles", "ProgramFiles(x86)") if environ.get(var)]
        return [root / place for place in kind.windows for root in roots]
    return [Path(place) for place in kind.linux]


def locate(kind: Kind) -> Editor | None:
    """`kind`'s command on PATH, else in its install places."""
    found = shutil.which(kind.name) or next((str(p) for p in install_places(kind) if _runnable(p)), None)
    return Editor(kind, found) if found else None


def installed() -> list[Editor]:
    """Every supported editor found on this machine, in the order of KINDS."""
    return [editor for kind in KINDS if (editor := locate(kind))]


def settings_kinds(chosen: Editor | None) -> list[Kind]:
    """The editors whose settings rdev keeps: every one installed, and the one chosen."""
    return list(dict.fromkeys([editor.kind for editor in installed()] + ([chosen.kind] if chosen else [])))


def choose(given: str | None, remembered: str | None = None) -> Editor | None:
    """`--editor`, else the host's remembered choice, else RDEV_EDITOR, else the first editor installed.
    Each may be an editor's name (code, code-insiders, cursor, codium, windsurf) or a path. A
    remembered editor that has since gone is passed over: the user named nothing wrong this time."""
    if given:
        return _named(given, "--editor")
    if remembered:
        try:
            return _named(remembered, "the editor remembered for this host")
        except BadInput:
            pass
    if os.environ.get("RDEV_EDITOR"):
        return _named(os.environ["RDEV_EDITOR"], "RDEV_EDITOR")
    found = installed()
    return found[0] if found else None


def _named(value: str, source: str) -> Editor:
    kind = BY_NAME.get(value)
    if kind:
        editor = locate(kind)
        if not editor:
            raise BadInput(f"{kind.title} ({source}) is not on PATH or in its usual install places",
                           "install it, or give the full path of its command with --editor.")
        return editor
    found = shutil.which(os.path.expanduser(value))
    if not found:
        raise BadInput(f"The editor {value!r} ({source}) is not an executable",
                       f"give one of {NAMES}, a command on PATH, or a full path.")
    # A path is taken for the fork its file is named after; anything else is driven like VS Code.
    stem = Path(found).name.lower().removesuffix(".cmd").removesuffix(".exe")
    return Editor(BY_NAME.get(stem, BY_NAME["code"]), str(Path(found).absolute()))


def remembered_value(given: str | None) -> str | None:
    """What to remember for a host from `--editor`: a name as it is, a path made absolute."""
    if not given or given in BY_NAME:
        return given
    found = shutil.which(os.path.expanduser(given))
    return str(Path(found).absolute()) if found else given


def command(editor: Editor | str, name: str, folder: str) -> list[str]:
    path = editor.path if isinstance(editor, Editor) else editor
    return [path, "--remote", f"ssh-remote+{name}", folder]


def missing_extension(editor: Editor) -> str | None:
    """The extension `editor` needs for Remote-SSH when `--list-extensions` shows it is not installed;
    None when it is, when the editor bundles it, or when the editor cannot say."""
    if not editor.kind.extensions:
        return None
    try:
        result = subprocess.run([editor.path, "--list-extensions"], check=False, stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, timeout=LIST_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    listed = {line.strip().lower() for line in result.stdout.splitlines()}
    return None if listed & set(editor.kind.extensions) else editor.kind.extensions[0]


def open_folder(name: str, folder: str, editor: Editor | None) -> str:
    """Open `folder` on `name` in `editor`; return a line for the user (what ran, or what to run)."""
    if editor is None:
        return (f"No editor found ({NAMES}); open it yourself with: "
                f"{shlex.join(command('code', name, folder))}")
    argv = command(editor, name, folder)
    extension = missing_extension(editor)
    if extension:
        raise RdevError(f"{editor.kind.title} has no Remote-SSH extension, so its window could not reach {name}",
                        f"install it with '{shlex.join([editor.path, '--install-extension', extension])}', "
                        f"then run: {shlex.join(argv)}")
    try:
        result = subprocess.run(argv, check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise RdevError(f"Starting the editor failed ({err})", f"run it yourself: {shlex.join(argv)}") from None
    if result.returncode != 0:
        raise RdevError(f"The editor exited with code {result.returncode}",
                        f"run it yourself to see why: {shlex.join(argv)}")
    return f"Opened: {shlex.join(argv)}"


def _runnable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)

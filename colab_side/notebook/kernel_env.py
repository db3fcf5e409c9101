"""`python3 -m colab_side.notebook.kernel_env`: give SSH shells the notebook kernel's environment.

Through Google's own SSH proxy to a Colab runtime no rdev sshd passes variables on with `SetEnv`,
so a session lacks what the kernel has (the NVIDIA folders on PATH and LD_LIBRARY_PATH, CUDA_*,
NVIDIA_*, PYTHONPATH). After connecting, the laptop runs this module on the runtime: it copies
the kernel's variables, filtered as for the tunnel route, into ~/.rdev/kernel-env.sh and makes
login and non-login bash shells read that file.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple

from bootstrap.files import atomic_write, ensure_private_dir
from colab_side.environment import session_environment

PROC = Path("/proc")
ENV_FILE = Path(".rdev") / "kernel-env.sh"
SOURCE_LINE = ('[ -r "$HOME/.rdev/kernel-env.sh" ] && . "$HOME/.rdev/kernel-env.sh"'
               "  # rdev: the notebook kernel's GPU environment")
_HEADER = "# rdev wrote this from the notebook kernel's environment; each connect rewrites it.\n"
_LAUNCHERS = ("colab_kernel_launcher", "ipykernel_launcher")
# A login bash reads only the first of ~/.bash_profile, ~/.bash_login and ~/.profile that exists:
# these two get the line when present, ~/.profile always (other login shells read it too).
_LOGIN_FILES = (".bash_profile", ".bash_login")


class Kernel(NamedTuple):
    pid: int
    source: str  # "kernel", or "jupyter" for a server found when no kernel runs
    environ: dict[str, str]


def find_kernel(proc: Path = PROC) -> Kernel | None:
    """The newest notebook kernel of this user, else the newest Jupyter server; processes whose
    files cannot be read (another user's, or ended meanwhile) are passed over."""
    found: dict[str, list[tuple[int, int, dict[str, str]]]] = {"kernel": [], "jupyter": []}
    for entry in proc.glob("[0-9]*"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            names = [os.path.basename(arg) for arg in os.fsdecode((entry / "cmdline").read_bytes()).split("\0")]
            if any((name[:-3] if name.endswith(".py") else name) in _LAUNCHERS for name in names):
                source = "kernel"
            elif any(name == "jupyter" or name.startswith("jupyter-") for name in names):
                source = "jupyter"
            else:
                continue
            # The command name (field 2) may hold spaces and ')'; start time is field 22.
            started = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[19])
            environ = read_environ((entry / "environ").read_bytes())
        except (OSError, ValueError, IndexError):
            continue
        found[source].append((started, int(entry.name), environ))
    for source, candidates in found.items():
        if candidates:
            _, pid, environ = max(candidates, key=lambda candidate: candidate[:2])
            return Kernel(pid, source, environ)
    return None


def read_environ(raw: bytes) -> dict[str, str]:
    """The NAME=VALUE entries of a /proc environ file; one that is not UTF-8 could not be written
    back faithfully into a shell file, so it is left out."""
    environ = {}
    for entry in raw.split(b"\0"):
        name, equals, value = entry.partition(b"=")
        if not equals:
            continue
        try:
            environ[name.decode()] = value.decode()
        except UnicodeDecodeError:
            continue
    return environ


def to_write(kernel: Mapping[str, str], own: Mapping[str, str], written_before: Iterable[str]) -> dict[str, str]:
    """The kernel's session variables this session lacks or has with another value. A variable
    the last run wrote stays even if equal: this session may have it from that very file, and
    leaving it out would take it away from the next one."""
    before = set(written_before)
    return {name: value for name, value in session_environment(dict(kernel)).items()
            if own.get(name) != value or name in before}


def written_names(env_file: Path) -> list[str]:
    """The variables an earlier run exported in `env_file` (none if it is missing or unreadable)."""
    try:
        return re.findall(r"^export ([A-Za-z_][A-Za-z0-9_]*)=", env_file.read_text(errors="replace"), re.MULTILINE)
    except OSError:
        return []


def env_file_text(variables: Mapping[str, str]) -> str:
    """`export NAME='value'` lines, sorted; inside single quotes only a quote itself needs escaping."""
    return _HEADER + "".join(f"export {name}='" + value.replace("'", "'\\''") + "'\n"
                             for name, value in sorted(variables.items()))


def ensure_sourced(rc_file: Path) -> bool:
    """Put SOURCE_LINE first in `rc_file` unless it is there already; True if the file changed.

    First, because Debian's ~/.bashrc returns early in non-interactive shells, such as the
    `bash -c` that ssh runs a command with. Every other byte and the file's mode are kept.
    """
    try:
        old, mode = rc_file.read_bytes(), stat.S_IMODE(rc_file.stat().st_mode)
    except FileNotFoundError:
        old, mode = b"", 0o644
    if SOURCE_LINE.encode() in old.splitlines():
        return False
    atomic_write(rc_file, SOURCE_LINE.encode() + b"\n" + old, mode)
    return True


def write_files(home: Path, variables: Mapping[str, str]) -> None:
    """Rewrite the environment file (even empty, so a stale one does not linger) and make
    ~/.bashrc, ~/.profile and whichever bash login files exist read it."""
    ensure_private_dir(home / ENV_FILE.parent)
    atomic_write(home / ENV_FILE, env_file_text(variables).encode(), 0o600, follow=False)
    for name in (".bashrc", ".profile", *(name for name in _LOGIN_FILES if (home / name).exists())):
        ensure_sourced(home / name)


def main(proc: Path = PROC) -> int:
    """Write the newest kernel's variables for SSH shells; print what was done as one JSON line."""
    kernel = find_kernel(proc)
    variables: dict[str, str] = {}
    if kernel is not None:
        home = Path.home()
        variables = to_write(kernel.environ, os.environ, written_names(home / ENV_FILE))
        try:
            write_files(home, variables)
        except OSError as err:
            print(f"rdev could not write the notebook kernel's environment for SSH shells: {err}", file=sys.stderr)
            return 1
    print(json.dumps({"kernel": kernel.pid if kernel else None, "source": kernel.source if kernel else None,
                      "variables": sorted(variables)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The secret first line of a shipped command (`rdev jupyter`'s token) reaches the module's stdin and never any
process's argv on the host, which `ps` shows to every user: not with a sh whose printf is a builtin (dash here),
nor with one that has only an external printf and echo (mksh, posh). Every process's argv on this machine is read
over and over while the command runs, and `printf` and `echo` first on PATH linger, so that one started with the
secret would be seen."""

from __future__ import annotations

import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from client_side.ssh import shipped
from tests.conftest import read_or_empty

SECRET = "tok3n-" + "Q" * 40


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def tools(folder: Path, builtin_printf: bool) -> Path:
    """A folder for the front of PATH: lingering printf and echo, a stand-in Python, and, without `builtin_printf`,
    an `sh` that is bash with its printf and echo builtins switched off."""
    folder.mkdir()
    for name in ("printf", "echo"):
        executable(folder / name, f'#!/bin/sh\nsleep 1\nexec /usr/bin/{name} "$@"\n')
    if not builtin_printf:
        executable(folder / "sh", '#!/bin/bash\nenable -n printf echo\n[ "$1" = -c ] || exit 2\neval "$2"\n')
    # The module: says what it read on stdin (with /bin/sh's own echo, no process), then stays a while to be seen.
    # `-c` (the version check, and the printing of the secret where printf is not a builtin) is the real Python's.
    return executable(folder / "python", f'#!/bin/sh\n[ "$1" = -c ] && exec "{sys.executable}" "$@"\n'
                                         'IFS= read -r line\necho "stdin=$line"\nsleep 1\n')


class ArgvWatch:
    """Reads every process's argv until stopped: those that hold the secret, and whether the module ran."""

    def __init__(self) -> None:
        self.leaks: set[bytes] = set()
        self.saw_module = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                argv = read_or_empty(cmdline)
                if SECRET.encode() in argv:
                    self.leaks.add(argv)
                self.saw_module |= b"-m\0colab_side.notebook.jupyter\0start" in argv

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.parametrize("builtin_printf", [True, False], ids=["printf-builtin", "printf-external"])
def test_the_secret_reaches_stdin_and_no_argv(tmp_path: Path, builtin_printf: bool) -> None:
    python = tools(tmp_path / "bin", builtin_printf)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    command = shipped.command("notebook.jupyter", "start", python=shlex.quote(str(python)), secret_first=True)
    watch = ArgvWatch()
    try:
        # sshd hands the command to the login shell as `SHELL -c COMMAND`.
        result = subprocess.run(["bash", "-c", command], check=False, input=SECRET.encode() + b"\n" + shipped.runtime_zip(),
                                capture_output=True, timeout=60,
                                env={"PATH": f"{python.parent}:/usr/bin:/bin", "TMPDIR": str(scratch)})
    finally:
        watch.stop()
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [f"stdin={SECRET}"]
    assert watch.saw_module  # the watch did see the command's processes
    assert watch.leaks == set()
    # ...and the sh it ran had the printf this case is about.
    which = subprocess.run(["bash", "-c", "sh -c 'command -v printf'"], check=False, capture_output=True, text=True,
                           env={"PATH": f"{python.parent}:/usr/bin:/bin"}).stdout.strip()
    assert which == ("printf" if builtin_printf else str(python.parent / "printf"))

"""rdev's runtime side as it travels: a zip of colab_side and bootstrap (standard library only),
carried by the notebook cell, copied to a cluster, or sent over SSH onto PYTHONPATH for one
`python3 -m colab_side.MODULE` run on a host where rdev is not installed, so that the host runs
exactly the laptop's version."""

from __future__ import annotations

import importlib.util
import io
import shlex
import subprocess
import zipfile
from pathlib import Path

from client_side.errors import RdevError, printable
from client_side.ssh import probe

RUNTIME_PACKAGES = ("bootstrap", "colab_side")
RUNTIME_PYTHON = (3, 8)  # the oldest Python the runtime side runs on (the bridge alone runs on 3.6)
# Tried in this order where the host was not given a Python: its python3, then the newest python3.X on its PATH.
PYTHONS = ("python3", *(f"python3.{minor}" for minor in range(14, RUNTIME_PYTHON[1] - 1, -1)))
NO_PYTHON = 86  # the exit status of a remote command that found no Python new enough
# sh that writes the secret in `$t` as one line without putting it in any process's argv, which `ps` shows every
# user. `read` is a builtin in every sh, printf in dash, bash, zsh, busybox and ksh93; where it is not (mksh, posh),
# the host's Python prints the secret from its environment, which only the user and root can read.
SECRET_FEED = ('case $(command -v printf) in printf) printf "%s\\n" "$t";; '
               '*) RDEV_SECRET=$t "$py" -c "import os; print(os.environ[\'RDEV_SECRET\'])";; esac')


def runtime_zip(carrying: dict[str, Path] | None = None) -> bytes:
    """This rdev's runtime side, colab_side and bootstrap's Python files, as a zip the cell carries.
    The same code gives the same bytes (fixed times, sorted names), so the cell names its copy by content.
    `carrying` adds files (name in the zip -> file here) for the module it runs, stored as they are."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, path in sorted((carrying or {}).items()):
            archive.write(path, name, compress_type=zipfile.ZIP_STORED)
        for package in RUNTIME_PACKAGES:
            # Found, not imported: importing colab_side would load its whole server.
            spec = importlib.util.find_spec(package)
            if spec is None or not spec.submodule_search_locations:
                raise ImportError(f"rdev's package {package} is not installed")
            root = Path(spec.submodule_search_locations[0])
            for path in sorted(root.rglob("*.py")):
                entry = zipfile.ZipInfo(path.relative_to(root.parent).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
                archive.writestr(entry, path.read_bytes(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return buffer.getvalue()


def python_word(python: str | None) -> str | None:
    """A Python the user named for a host as one word of the remote sh script: `~/` is the remote home, the rest
    is quoted."""
    if python is None:
        return None
    return f'"$HOME"/{shlex.quote(python[2:])}' if python.startswith("~/") else shlex.quote(python)


def choose_python(python: str | None = None) -> str:
    """sh that sets `py` to the Python that runs the runtime side there: `python` (a word of the script, already
    quoted) if given, else the first of PYTHONS that is new enough; when none is, it says on stderr what python3
    is (`rdev-python: Python 3.6.8`) and exits NO_PYTHON, before anything else runs."""
    tried = python or " ".join(PYTHONS)
    check = f'"$c" -c "import sys; sys.exit(sys.version_info < {RUNTIME_PYTHON})" </dev/null >/dev/null 2>&1'
    return (f'py=; for c in {tried}; do if command -v "$c" >/dev/null 2>&1 && {check}; then py=$c; break; fi; done; '
            f'if [ -z "$py" ]; then printf "rdev-python: %s\\n" "$({python or "python3"} --version 2>&1 | head -n 1)" >&2; '
            f"exit {NO_PYTHON}; fi")


def python_failure(name: str, returncode: int, stderr: str, python: str | None = None) -> RdevError | None:
    """The sentence for a remote command that found no Python new enough on `name`; None for any other outcome."""
    said = next((line for line in stderr.splitlines() if line.startswith("rdev-python: ")), None)
    if returncode != NO_PYTHON or said is None:
        return None
    found = said.removeprefix("rdev-python: ").strip()
    needed = ".".join(map(str, RUNTIME_PYTHON))
    what = python or "python3"
    problem = (f"{name}'s {what} is {printable(found)}, older than the Python {needed} rdev's runtime side needs"
               if found.startswith("Python ") else f"{name} has no {what}")
    if python is not None:
        return RdevError(problem, f"name a Python {needed} or newer that {name} has (--python PATH).")
    return RdevError(problem + ", and no newer python3.X is on its PATH",
                     f"put a Python {needed} or newer first on PATH there (e.g. 'module load python' in your shell's rc "
                     f"file), or name one: rdev add {name} ... --python PATH.")


def command(module: str, *args: str, python: str | None = None, secret_first: bool = False) -> str:
    """The remote command that runs `PYTHON -m colab_side.MODULE ARGS` from the runtime zip sent on its
    stdin, under sh whatever the login shell is (tcsh is common on school servers). `python` is a word
    of that script, already quoted; by default the host's own is chosen (choose_python). With `secret_first`,
    stdin's first line is a secret the module reads on its own stdin: the shell keeps it in a variable and
    hands it on without any argv showing it (SECRET_FEED)."""
    module_run = " ".join(['PYTHONPATH="$f${PYTHONPATH:+:$PYTHONPATH}" "$py" -m', f"colab_side.{module}",
                           *(shlex.quote(arg) for arg in args)])
    if secret_first:
        script = f'IFS= read -r t; cat > "$f" && {{ {SECRET_FEED}; }} | {module_run}'
    else:
        script = f'cat > "$f" && {module_run}'
    return "sh -c " + shlex.quote(f'{choose_python(python)}; f=$(mktemp) || exit 1; {script}; s=$?; rm -f "$f"; '
                                  "exit $s")


def run(name: str, module: str, *args: str, options: tuple[str, ...] = (), python: str | None = None,
        carrying: dict[str, Path] | None = None, timeout: float = probe.PROBE_TIMEOUT) -> subprocess.CompletedProcess:
    """`PYTHON -m colab_side.MODULE ARGS` on `name` through rdev's config (its output as bytes); RdevError when
    the host has no Python new enough, subprocess.TimeoutExpired when it takes longer than `timeout`."""
    result = subprocess.run(probe.ssh_argv(name, "-o", "BatchMode=yes", *options) + [command(module, *args, python=python)],
                            check=False, input=runtime_zip(carrying), capture_output=True, timeout=timeout)
    failure = python_failure(name, result.returncode, result.stderr.decode(errors="replace"), python)
    if failure is not None:
        raise failure
    return result

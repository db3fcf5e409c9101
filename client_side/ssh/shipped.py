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

from client_side.ssh import probe

RUNTIME_PACKAGES = ("bootstrap", "colab_side")


def runtime_zip() -> bytes:
    """This rdev's runtime side, colab_side and bootstrap's Python files, as a zip the cell carries.
    The same code gives the same bytes (fixed times, sorted names), so the cell names its copy by content."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
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


def command(module: str, *args: str, python: str = "python3", secret_first: bool = False) -> str:
    """The remote command that runs `PYTHON -m colab_side.MODULE ARGS` from the runtime zip sent on its
    stdin, under sh whatever the login shell is (tcsh is common on school servers). `python` is a word
    of that script, already quoted. With `secret_first`, stdin's first line is a secret the module reads
    on its own stdin: the shell keeps it in a variable (read and printf are builtins, so no argv shows it)."""
    module_run = " ".join([f'PYTHONPATH="$f${{PYTHONPATH:+:$PYTHONPATH}}" {python} -m colab_side.{module}',
                           *(shlex.quote(arg) for arg in args)])
    if secret_first:
        script = f'IFS= read -r t; cat > "$f" && printf "%s\\n" "$t" | {module_run}'
    else:
        script = f'cat > "$f" && {module_run}'
    return "sh -c " + shlex.quote(f'f=$(mktemp) || exit 1; {script}; s=$?; rm -f "$f"; exit $s')


def run(name: str, module: str, *args: str, options: tuple[str, ...] = (),
        timeout: float = probe.PROBE_TIMEOUT) -> subprocess.CompletedProcess:
    """`python3 -m colab_side.MODULE ARGS` on `name` through rdev's config (its output as bytes);
    subprocess.TimeoutExpired when it takes longer than `timeout`."""
    return subprocess.run(probe.ssh_argv(name, "-o", "BatchMode=yes", *options) + [command(module, *args)], check=False,
                          input=runtime_zip(), capture_output=True, timeout=timeout)

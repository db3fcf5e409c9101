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

from client_side import probe

RUNTIME_PACKAGES = ("bootstrap", "colab_side")


def runtime_zip() -> bytes:
    """This rdev's runtime side, colab_side and bootstrap's Python files, as a zip the cell carries.
    The same code gives the same bytes (fixed times, sorted names), so the cell names its copy by content."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for package in RUNTIME_PACKAGES:
            # Found, not imported: importing colab_side would load its whole server.
            root = Path(importlib.util.find_spec(package).submodule_search_locations[0])
            for path in sorted(root.rglob("*.py")):
                entry = zipfile.ZipInfo(path.relative_to(root.parent).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
                archive.writestr(entry, path.read_bytes(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return buffer.getvalue()


def run(name: str, module: str, *args: str, options: tuple[str, ...] = (),
        timeout: float = probe.PROBE_TIMEOUT) -> subprocess.CompletedProcess:
    """`python3 -m colab_side.MODULE ARGS` on `name` through rdev's config (its output as bytes);
    subprocess.TimeoutExpired when it takes longer than `timeout`."""
    words = " ".join(shlex.quote(arg) for arg in args)
    command = (f'f=$(mktemp) && cat > "$f" && PYTHONPATH="$f" python3 -m colab_side.{module} {words}; s=$?; '
               'rm -f "$f"; exit $s')
    return subprocess.run(probe.ssh_argv(name, "-o", "BatchMode=yes", *options) + [command],
                          input=runtime_zip(), capture_output=True, timeout=timeout)

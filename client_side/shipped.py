"""rdev's runtime side, run over SSH on a host where rdev is not installed: its zip (colab_side and
bootstrap, standard library only) goes over the connection onto PYTHONPATH for one
`python3 -m colab_side.MODULE` run, so the host runs exactly the laptop's version."""

from __future__ import annotations

import shlex
import subprocess

from client_side import probe


def run(name: str, module: str, *args: str, options: tuple[str, ...] = (),
        timeout: float = probe.PROBE_TIMEOUT) -> subprocess.CompletedProcess:
    """`python3 -m colab_side.MODULE ARGS` on `name` through rdev's config (its output as bytes);
    subprocess.TimeoutExpired when it takes longer than `timeout`."""
    from client_side import colab_cell

    words = " ".join(shlex.quote(arg) for arg in args)
    command = (f'f=$(mktemp) && cat > "$f" && PYTHONPATH="$f" python3 -m colab_side.{module} {words}; s=$?; '
               'rm -f "$f"; exit $s')
    return subprocess.run(probe.ssh_argv(name, "-o", "BatchMode=yes", *options) + [command],
                          input=colab_cell.runtime_zip(), capture_output=True, timeout=timeout)

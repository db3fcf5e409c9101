"""One call of a runtime-side helper (`colab_side.notebook.jupyter`, `colab_side.long_runs.runs`) on a host: the runtime
zip (and a secret first line, if any) on ssh's stdin, JSON lines back as the only channel, and one sentence for each way
it can fail. The helpers say what they do while they work; their last other object is the answer."""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
import threading
from collections.abc import Callable

from client_side.errors import RdevError, printable
from client_side.ssh import probe, shipped


def call(name: str, remote: str, *, what: str, timeout: float | None, python: str | None, fix: str,
         heard: Callable[[dict], bool], first_line: str | None = None) -> dict:
    """Run `remote` (a shipped.command) on `name`; every JSON object it prints goes to `heard` as it arrives, and the
    last one `heard` does not take (returns False for) is the answer. `what` names the helper in sentences, `fix`
    ends the one for a helper that failed without saying why; `python` is the one it was run with (None: the host's
    own choice). Ctrl-C ends the ssh, and what it ran on the host after it."""
    argv = probe.ssh_argv(name, "-o", "BatchMode=yes", "-o", "ConnectTimeout=20") + [remote]
    expired = threading.Event()
    answer: dict | None = None
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors)
        assert process.stdin is not None and process.stdout is not None  # both are pipes

        def expire() -> None:
            expired.set()
            process.kill()

        timer = threading.Timer(timeout, expire) if timeout else None
        try:
            if timer:
                timer.start()
            secret = b"" if first_line is None else first_line.encode() + b"\n"
            with contextlib.suppress(BrokenPipeError):  # an ssh that failed to connect reads nothing
                process.stdin.write(secret + shipped.runtime_zip())
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
            for line in process.stdout:  # read as it comes: a helper says what it does (an install) first
                message = _message(line)
                if message is not None and not heard(message):
                    answer = message
            code = process.wait()
        finally:
            if timer:
                timer.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
    if expired.is_set():
        raise RdevError(f"rdev's {what} on {name} did not finish within {timeout:.0f} s",
                        f"check the host with 'rdev ssh {name}' and run again.")
    if code == 255:
        raise probe.failure(name, stderr)
    no_python = shipped.python_failure(name, code, stderr, python)
    if no_python is not None:
        raise no_python
    if answer is not None and "error" in answer:
        raise RdevError(f"{name}: {printable(str(answer['error']))}", printable(str(answer.get("fix", ""))))
    if code == 127:
        raise RdevError(f"{name} has no {python or 'python3'}", fix)
    if code != 0 or answer is None:
        last = stderr.strip().splitlines()[-1:] or [f"exit status {code}"]
        raise RdevError(f"rdev's {what} failed on {name} ({printable(last[0])})", fix)
    return answer


def _message(line: bytes) -> dict | None:
    """One JSON object the helper printed; None for anything else (a login script's chatter)."""
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None

"""`rdev doctor`: what on this laptop is missing or wrong for rdev, one line each with its fix.

Each check returns Findings; a `problem` makes the command exit 1, a `note` does not (something
that will matter later, or that rdev fixes by itself on the next connect).
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from bootstrap import binaries, ticket as tickets
from client_side.editors import editor
from client_side.errors import RdevError
from client_side.local import paths, registry
from client_side.ssh import config as sshconfig, probe

OK, NOTE, PROBLEM = "ok", "note", "problem"
OLDEST_SSH = (7, 3)  # Include and ProxyJump


@dataclass(frozen=True)
class Finding:
    check: str
    status: str
    detail: str
    fix: str = ""


def report(check_hosts: bool, as_json: bool) -> tuple[str, bool]:
    """The report's text and whether it found a problem."""
    try:
        hosts, damaged = registry.load(), None
    except RdevError as err:
        hosts, damaged = {}, err
    findings = [_ssh_client(), *_ssh_modes(), _include(hosts), _key(hosts), _cloudflared(hosts), *_colab(hosts),
                _keyring(hosts), *_editors(), *_registered(hosts, damaged, check_hosts)]
    problems = sum(f.status == PROBLEM for f in findings)
    if as_json:
        return json.dumps([asdict(f) for f in findings], indent=2), problems > 0
    lines = [f"{f.status.upper() if f.status == PROBLEM else f.status:8} {f.check}: {f.detail}"
             + (f" Fix: {f.fix}" if f.fix else "") for f in findings]
    lines.append(f"{problems} problem{'s' * (problems != 1)} found." if problems else "No problems found.")
    return "\n".join(lines), problems > 0


def _ssh_client() -> Finding:
    try:
        result = subprocess.run([probe.ssh_binary(), "-V"], check=False, capture_output=True, text=True, timeout=10)
    except RdevError as err:
        return Finding("OpenSSH client", PROBLEM, "ssh is not installed.", err.fix)
    except (OSError, subprocess.TimeoutExpired) as err:
        return Finding("OpenSSH client", PROBLEM, f"ssh -V failed ({err}).", "reinstall the OpenSSH client.")
    output = (result.stderr or result.stdout).strip()
    version = output.splitlines()[0] if output else ""
    found = re.search(r"OpenSSH_(?:for_Windows_)?(\d+)\.(\d+)", version)
    if not found:
        return Finding("OpenSSH client", PROBLEM, f"ssh is not OpenSSH ({version or 'no version'}).",
                       "install the OpenSSH client; rdev writes OpenSSH's sshconfig.")
    if (int(found[1]), int(found[2])) < OLDEST_SSH:
        return Finding("OpenSSH client", PROBLEM, f"{version} is older than 7.3, which lacks Include and ProxyJump.",
                       "update the OpenSSH client.")
    return Finding("OpenSSH client", OK, version)


def _ssh_modes() -> list[Finding]:
    """ssh refuses a config or private key others can change or read; rdev's own places are private."""
    wanted = [(paths.ssh_dir(), 0o022, "chmod 700"), (paths.user_ssh_config(), 0o022, "chmod 600"),
              (paths.rdev_ssh_dir(), 0o077, "chmod 700"), (paths.rdev_ssh_config(), 0o077, "chmod 600"),
              (paths.private_key(), 0o077, "chmod 600")]
    findings = []
    for path, forbidden, fix in wanted if os.name == "posix" else []:
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        if info.st_uid not in (os.getuid(), 0):  # OpenSSH accepts files owned by root
            findings.append(Finding(str(path), PROBLEM, "belongs to another user, so ssh refuses it.",
                                    f"chown {os.getuid()} {path}"))
        elif stat.S_IMODE(info.st_mode) & forbidden:
            who = "others can change it" if forbidden == 0o022 else "others can read or change it"
            findings.append(Finding(str(path), PROBLEM, f"mode {stat.S_IMODE(info.st_mode):o}: {who}.", f"{fix} {path}"))
    return findings or [Finding("~/.ssh modes", OK, "private")]


def _include(hosts: dict) -> Finding:
    state = sshconfig.include_state()
    if state == "first":
        return Finding("Include line", OK, f"first in {paths.user_ssh_config()}")
    if state == "unreadable":
        return Finding("Include line", PROBLEM, f"{paths.user_ssh_config()} cannot be read.",
                       "make it a file you can read (ssh reads it too).")
    if state == "missing" and not hosts:
        return Finding("Include line", NOTE, "not written yet; the first 'rdev connect' adds it.")
    if state == "missing":
        return Finding("Include line", PROBLEM, f"{paths.user_ssh_config()} does not include rdev's hosts, so 'ssh NAME' "
                       "and the editor cannot find them.", "run 'rdev connect NAME' again, which puts it back.")
    return Finding("Include line", PROBLEM, f"it is not first in {paths.user_ssh_config()}, so a Host block above it "
                   "can change what rdev's options mean.",
                   f"move rdev's two lines ('{sshconfig.INCLUDE_COMMENT}' and the Include) to the top.")


def _key(hosts: dict) -> Finding:
    if paths.private_key().exists() and paths.public_key().exists():
        return Finding("rdev's key", OK, str(paths.private_key()))
    return Finding("rdev's key", PROBLEM if hosts else NOTE, f"{paths.private_key()} or its .pub is missing.",
                   "run 'rdev key' (and give the new key to each host again: 'rdev connect NAME').")


def _cloudflared(hosts: dict) -> Finding:
    needed = any(e.tunnel == "cloudflared" for e in hosts.values())
    try:
        found = binaries.given_or_on_path("cloudflared", None, "RDEV_CLOUDFLARED")
    except binaries.BinaryUnavailable as err:
        return Finding("cloudflared", PROBLEM, err.problem + ".", "fix RDEV_CLOUDFLARED.")
    if found:
        return Finding("cloudflared", OK, found)
    try:
        from pycloudflared.util import get_info

        info = get_info()
    except ImportError:
        return Finding("cloudflared", PROBLEM if needed else NOTE, "not on PATH, and pycloudflared is not installed.",
                       "install cloudflared, or 'pip install pycloudflared'.")
    except RuntimeError as err:
        return Finding("cloudflared", PROBLEM if needed else NOTE, f"pycloudflared has none for this machine ({err}).",
                       "install cloudflared yourself and put it on PATH.")
    if os.access(info.executable, os.X_OK):
        return Finding("cloudflared", OK, f"{info.executable} (pycloudflared's copy)")
    return Finding("cloudflared", OK, f"not downloaded yet; pycloudflared fetches it for this machine on first use ({info.url})")


def _colab(hosts: dict) -> list[Finding]:
    """Google's colab CLI, only when a host is reached through it."""
    remembered = [e.colab for e in hosts.values() if e.colab_session]
    if not remembered:
        return []
    from client_side.colab import cli as colab_cli

    try:
        return [Finding("colab CLI", OK, colab_cli.find(None, remembered[0]))]
    except RdevError as err:
        return [Finding("colab CLI", PROBLEM, err.problem + ".", err.fix)]


def _keyring(hosts: dict) -> Finding:
    from client_side.local import passwords

    needed = any(e.login for e in hosts.values())
    try:
        if passwords.usable():
            passwords.get("rdev-doctor")  # a locked or absent Secret Service fails here
            return Finding("keyring", OK, "usable")
        reason, fix = "no usable system keyring", passwords.NO_BACKEND_FIX
    except RdevError as err:
        reason, fix = err.problem, "unlock or repair the system keyring."
    return Finding("keyring", PROBLEM if needed else NOTE,
                   reason + ("." if needed else " (needed only for password hosts)."), fix)


def _editors() -> list[Finding]:
    try:
        chosen = editor.choose(None)
    except RdevError as err:
        return [Finding("editor", PROBLEM, err.problem + ".", "fix or unset RDEV_EDITOR.")]
    found = list(dict.fromkeys(([chosen] if chosen else []) + editor.installed()))
    if not found:
        return [Finding("editor", PROBLEM, f"none found ({editor.NAMES}, on PATH or where they install).",
                        "install VS Code (https://code.visualstudio.com), or set RDEV_EDITOR to your editor's command.")]
    findings = []
    for each in found:
        missing = editor.missing_extension(each)
        if missing:
            findings.append(Finding(each.kind.title, PROBLEM, f"{each.path} has no Remote-SSH extension.",
                                    f"{each.path} --install-extension {missing}"))
        else:
            findings.append(Finding(each.kind.title, OK, each.path))
    return findings


def _registered(hosts: dict[str, registry.HostEntry], damaged: RdevError | None, check_hosts: bool) -> list[Finding]:
    if damaged:
        return [Finding("hosts", PROBLEM, damaged.problem + ".", damaged.fix)]
    if not hosts:
        return [Finding("hosts", NOTE, "none yet.", "'rdev connect NAME --ticket ...' or 'rdev add NAME --host H'.")]
    answers = {}
    if check_hosts:
        with ThreadPoolExecutor(max_workers=min(16, len(hosts))) as pool:
            answers = dict(zip(hosts, pool.map(_answer, hosts)))
    findings = []
    for name, entry in hosts.items():
        where = f"{entry.user}@{entry.host}:{entry.port} ({entry.tunnel})"
        if check_hosts and answers[name]:
            findings.append(Finding(f"host {name}", PROBLEM, f"{where} does not answer.", answers[name]))
        elif _expired(entry):
            findings.append(Finding(f"host {name}", NOTE, f"{where}: its runtime was due to end at {entry.expires}.",
                                    f"start the notebook cell again and 'rdev connect {name}' with the new ticket."))
        else:
            findings.append(Finding(f"host {name}", OK, where + (" answers" if check_hosts else "")))
    return findings


def _answer(name: str) -> str:
    """'' when `name` answers ssh; else the sentence saying why not."""
    try:
        result = probe.try_login(name)
    except RdevError as err:
        return str(err)
    return "" if result.returncode == 0 else probe.explain(name, result.stderr)


def _expired(entry: registry.HostEntry) -> bool:
    ends = tickets.moment(entry.expires)
    return ends is not None and ends < datetime.now(timezone.utc)


"""rdev's SSH config: the exact text of `~/.ssh/rdev/config`, what OpenSSH makes of it (`ssh -G`),
and the user's own `~/.ssh/config`, which gets the Include line first and keeps every other byte."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path, PureWindowsPath

import pytest

from client_side.errors import RdevError
from client_side.local import paths, store
from client_side.local.registry import HostEntry
from client_side.ssh import config as sshconfig

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")

GPU = HostEntry(name="gpu", host="203.0.113.7", port=2222, user="alice")
COLAB = HostEntry(name="colab", host="tunnel.example.com", port=443, user="root", tunnel="ngrok")

# What ssh adds to ControlPath while binding ("." and 16 random characters, see muxserver_listen in mux.c).
BIND_SUFFIX_LEN = 17
# The smallest sockaddr_un.sun_path among the systems rdev runs on (macOS and the BSDs); it holds the NUL too.
SMALLEST_SUN_PATH = 104


def write(*entries: HostEntry) -> None:
    """Write entries the way `rdev connect` does: with their registry entries, under rdev's lock."""
    for entry in entries:
        store.put(entry)


def remove(name: str) -> bool:
    return store.drop(name) is not None


def ssh_g(name: str, config: Path) -> dict[str, list[str]]:
    """`ssh -G NAME -F CONFIG`: every option OpenSSH resolved, each with its values in order."""
    result = subprocess.run(["ssh", "-G", name, "-F", str(config)], check=False, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=30)
    assert result.returncode == 0, result.stderr
    options: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(" ")
        options.setdefault(key, []).append(value)
    return options


def ssh_g_raw(name: str, config: Path | None) -> str:
    """The whole `ssh -G` output, for comparing before and after (no file: an empty config)."""
    result = subprocess.run(["ssh", "-G", name, "-F", str(config) if config else os.devnull], check=False, capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


def block(entry: HostEntry, home: Path, multiplexing: bool = True) -> str:
    rdev = f"{home}/.ssh/rdev"
    text = (f"Host {entry.name}\n"
            f"  HostName {entry.host}\n"
            f"  Port {entry.port}\n"
            f"  User {entry.user}\n"
            f"  HostKeyAlias rdev-{entry.name}\n"
            f"  UserKnownHostsFile {rdev}/known_hosts\n"
            f"  StrictHostKeyChecking yes\n"
            f"  IdentityFile {rdev}/id_ed25519\n"
            f"  IdentitiesOnly yes\n"
            f"  ForwardAgent no\n"
            f"  ServerAliveInterval 15\n"
            f"  ServerAliveCountMax 6\n"
            f"  RemoteCommand none\n"
            f"  UpdateHostKeys no\n"
            f"  ProxyCommand none\n")
    if multiplexing:
        text += (f"  ControlMaster auto\n"
                 f"  ControlPath {rdev}/cm/{entry.name}\n"
                 f"  ControlPersist 10m\n")
    else:
        text += "  ControlMaster no\n  ControlPath none\n"
    return text


def expected_file(home: Path, *entries: HostEntry) -> str:
    return "\n".join([sshconfig.HEADER + "\n", *(block(e, home) for e in entries)])


def include_head(home: Path, newline: bytes = b"\n") -> bytes:
    return (sshconfig.INCLUDE_COMMENT.encode() + newline + f"Include {home}/.ssh/rdev/config".encode() + newline)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- rdev's own file, compared as exact text -----------------------------------------------------------------


def test_one_entry_renders_exactly(home: Path) -> None:
    write(GPU)
    assert paths.rdev_ssh_config().read_text() == expected_file(home, GPU)
    assert sshconfig.has_entry("gpu") and not sshconfig.has_entry("colab")


def test_two_entries_render_with_one_blank_line_between_blocks(home: Path) -> None:
    write(GPU, COLAB)
    assert paths.rdev_ssh_config().read_text() == expected_file(home, GPU, COLAB)


def test_replacing_an_entry_rewrites_its_block_and_keeps_the_other(home: Path) -> None:
    write(GPU, COLAB)
    moved = HostEntry(name="gpu", host="198.51.100.9", port=2200, user="bob")
    write(moved)
    # The replaced block goes to the end; the untouched one keeps its text.
    assert paths.rdev_ssh_config().read_text() == expected_file(home, COLAB, moved)


def test_writing_an_unchanged_entry_keeps_its_place_and_the_file(home: Path) -> None:
    """A reconnect to a host that is not the last one written rewrites nothing (the file keeps its bytes and inode)."""
    write(GPU, COLAB)
    before = paths.rdev_ssh_config().stat()
    write(GPU)
    assert paths.rdev_ssh_config().read_text() == expected_file(home, GPU, COLAB)
    after = paths.rdev_ssh_config().stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


@pytest.mark.parametrize("times", [2, 5, 20])
def test_repeated_replace_leaves_no_runaway_blank_lines(home: Path, times: int) -> None:
    write(GPU, COLAB)
    for port in range(times):
        write(HostEntry(name="gpu", host="203.0.113.7", port=3000 + port, user="alice"),
              HostEntry(name="colab", host="tunnel.example.com", port=4000 + port, user="root"))
    last_gpu = HostEntry(name="gpu", host="203.0.113.7", port=3000 + times - 1, user="alice")
    last_colab = HostEntry(name="colab", host="tunnel.example.com", port=4000 + times - 1, user="root")
    text = paths.rdev_ssh_config().read_text()
    assert text == expected_file(home, last_gpu, last_colab)
    assert "\n\n\n" not in text


def test_removing_an_entry_leaves_exactly_the_other(home: Path) -> None:
    write(GPU, COLAB)
    assert remove("gpu") is True
    assert paths.rdev_ssh_config().read_text() == expected_file(home, COLAB)
    assert not sshconfig.has_entry("gpu")


def test_removing_every_entry_leaves_the_header_only(home: Path) -> None:
    write(GPU, COLAB)
    assert remove("colab") and remove("gpu")
    assert paths.rdev_ssh_config().read_text() == sshconfig.HEADER + "\n"


def test_removing_an_unknown_name_changes_nothing(home: Path) -> None:
    write(GPU)
    before = paths.rdev_ssh_config().read_bytes()
    assert remove("nosuch") is False
    assert paths.rdev_ssh_config().read_bytes() == before


def test_rdev_file_and_folders_are_private(home: Path) -> None:
    write(GPU)
    assert mode(paths.rdev_ssh_config()) == 0o600
    assert mode(paths.ssh_dir()) == 0o700
    assert mode(paths.rdev_ssh_dir()) == 0o700
    assert mode(paths.control_dir()) == 0o700


# --- what OpenSSH makes of it ---------------------------------------------------------------------------------


def test_ssh_resolves_every_option_rdev_meant(home: Path) -> None:
    write(GPU, COLAB)
    options = ssh_g("gpu", paths.user_ssh_config())
    rdev = home / ".ssh" / "rdev"
    assert options["hostname"] == ["203.0.113.7"]
    assert options["port"] == ["2222"]
    assert options["user"] == ["alice"]
    assert options["hostkeyalias"] == ["rdev-gpu"]
    assert options["userknownhostsfile"] == [str(rdev / "known_hosts")]
    assert options["identityfile"] == [str(rdev / "id_ed25519")]
    assert options["identitiesonly"] == ["yes"]
    assert options["stricthostkeychecking"] == ["true"]  # how ssh -G prints "yes"
    assert options["controlmaster"] == ["auto"]
    [control_path] = options["controlpath"]
    assert Path(control_path).parent == rdev / "cm"
    assert Path(control_path).name == "gpu"
    assert options["controlpersist"] == ["600"]
    assert options["serveraliveinterval"] == ["15"]
    assert options["serveralivecountmax"] == ["6"]


def test_each_alias_gets_its_own_block(home: Path) -> None:
    write(GPU, COLAB)
    options = ssh_g("colab", paths.user_ssh_config())
    assert (options["hostname"], options["port"], options["user"], options["hostkeyalias"]) == (
        ["tunnel.example.com"], ["443"], ["root"], ["rdev-colab"])
    # Different hosts must not share a master connection.
    assert options["controlpath"] != ssh_g("gpu", paths.user_ssh_config())["controlpath"]


# --- the user's ~/.ssh/config ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserConfig:
    """A user's ~/.ssh/config (None: no file) and a host of theirs with the user ssh gives it."""

    content: bytes | None
    probe: str = "myhost"
    probe_user: str | None = "alice"


LONG = b"".join(b"Host h%d\n  HostName 10.0.%d.%d\n  User u%d\n  Port %d\n\n" % (i, i // 250, i % 250, i, 1000 + i)
                for i in range(3000)) + b"Host myhost\n  User alice\n"

USER_CONFIGS: dict[str, UserConfig] = {
    "empty": UserConfig(b"", probe="plainhost", probe_user=None),
    "missing": UserConfig(None, probe="plainhost", probe_user=None),
    "no-final-newline": UserConfig(b"Host myhost\n  User alice"),
    "crlf": UserConfig(b"Host myhost\r\n  User alice\r\n  Port 2201\r\n\r\nHost *\r\n  ServerAliveInterval 99\r\n"),
    "crlf-no-final-newline": UserConfig(b"# crlf\r\nHost myhost\r\n  User alice"),
    "match-blocks": UserConfig(b"Match host myhost\n  User alice\n\nMatch all\n  ServerAliveInterval 99\n"
                               b"  User mallory\n"),
    "key-equals-value": UserConfig(b"Host=myhost\nUser=alice\nPort = 2202\nHost = *\n  User=mallory\n"),
    "tabs": UserConfig(b"Host\tmyhost\n\tUser\talice\n\tPort\t2203\n"),
    "hash-inside-values": UserConfig(b"# my config\nHost myhost # work box\n  User alice # the usual\n"
                                     b"  IdentityFile /tmp/keys#1/id\n"),
    "global-user-first": UserConfig(b"User bob\nPort 2204\nHostKeyAlias global-alias\n\nHost myhost\n"
                                    b"  HostName real.example\n", probe_user="bob"),
    "host-star-first": UserConfig(b"Host *\n  User carol\n  Port 2205\n  ControlMaster no\n"
                                  b"  StrictHostKeyChecking no\n\nHost myhost\n  User alice\n", probe_user="carol"),
    "existing-include": UserConfig(b"Include @ROOT@/extra/*.conf\n\nHost myhost\n  User alice\n",
                                   probe="fromextra", probe_user="erin"),
    "only-comments": UserConfig(b"# nothing here yet\n# User nobody\n", probe="plainhost", probe_user=None),
    "unicode": UserConfig("# Jörg's config ✓ — ünïcödé\nHost myhost\n  User alice\n  HostName bücher.example\n"
                          .encode()),
    "leading-blank-line": UserConfig(b"\nHost myhost\n  User alice\n"),
    "very-long": UserConfig(LONG),
    "old-style-include-lookalike": UserConfig(b"# Added by rdev: something else\nHost myhost\n  User alice\n"),
}


def put_user_config(home: Path, case: UserConfig) -> bytes | None:
    """Write the case's bytes as ~/.ssh/config (mode 0644, as many users have it); return them."""
    if case.content is None:
        return None
    root = home.parent
    data = case.content.replace(b"@ROOT@", str(root).encode())
    (root / "extra").mkdir(exist_ok=True)
    (root / "extra" / "a.conf").write_bytes(b"Host fromextra\n  User erin\n")
    paths.ssh_dir().mkdir(mode=0o755, exist_ok=True)
    paths.user_ssh_config().write_bytes(data)
    paths.user_ssh_config().chmod(0o644)
    return data


@pytest.fixture(params=list(USER_CONFIGS), ids=list(USER_CONFIGS))
def user_config(request: pytest.FixtureRequest, home: Path) -> tuple[UserConfig, bytes | None]:
    case = USER_CONFIGS[request.param]
    return case, put_user_config(home, case)


def test_user_config_gets_the_include_first_and_keeps_every_byte(
        home: Path, user_config: tuple[UserConfig, bytes | None]) -> None:
    _, original = user_config
    write(GPU)
    newline = b"\r\n" if original and b"\r\n" in original else b"\n"
    assert paths.user_ssh_config().read_bytes() == include_head(home, newline) + (original or b"")


def test_second_write_leaves_user_config_unchanged(home: Path, user_config: tuple[UserConfig, bytes | None]) -> None:
    _, original = user_config
    write(GPU)
    after_first = paths.user_ssh_config().read_bytes()
    write(GPU)
    write(COLAB)
    assert paths.user_ssh_config().read_bytes() == after_first
    # The backup is of the user's own file, not of rdev's first change.
    backup = paths.user_ssh_config_backup()
    assert (backup.read_bytes() if backup.exists() else None) == original


def test_backup_holds_the_original(home: Path, user_config: tuple[UserConfig, bytes | None]) -> None:
    _, original = user_config
    write(GPU)
    backup = paths.user_ssh_config_backup()
    if original is None:
        assert not backup.exists()
    else:
        assert backup.read_bytes() == original
        assert mode(backup) == 0o600


def test_user_config_and_folders_end_up_private(home: Path, user_config: tuple[UserConfig, bytes | None]) -> None:
    write(GPU)
    assert mode(paths.user_ssh_config()) == 0o600
    assert mode(paths.ssh_dir()) == 0o700
    assert mode(paths.rdev_ssh_dir()) == 0o700


def test_rdev_host_gets_rdev_options_whatever_the_user_config_says(
        home: Path, user_config: tuple[UserConfig, bytes | None]) -> None:
    write(GPU)
    options = ssh_g("gpu", paths.user_ssh_config())
    assert options["user"] == ["alice"]
    assert options["hostname"] == ["203.0.113.7"]
    assert options["port"] == ["2222"]
    assert options["hostkeyalias"] == ["rdev-gpu"]
    assert options["stricthostkeychecking"] == ["true"]
    assert options["controlmaster"] == ["auto"]
    assert options["serveraliveinterval"] == ["15"]
    assert options["identityfile"][0] == str(home / ".ssh" / "rdev" / "id_ed25519")


def test_user_hosts_resolve_as_before(home: Path, user_config: tuple[UserConfig, bytes | None]) -> None:
    case, original = user_config
    config = paths.user_ssh_config() if original is not None else None
    before = ssh_g_raw(case.probe, config)
    write(GPU, COLAB)
    after = ssh_g_raw(case.probe, paths.user_ssh_config())
    assert after == before
    if case.probe_user is not None:
        assert f"\nuser {case.probe_user}\n" in "\n" + after


def test_global_user_does_not_beat_rdev_user(home: Path) -> None:
    put_user_config(home, USER_CONFIGS["global-user-first"])
    write(HostEntry(name="box", host="192.0.2.1", port=22, user="root"))
    assert ssh_g("box", paths.user_ssh_config())["user"] == ["root"]
    assert ssh_g("elsewhere", paths.user_ssh_config())["user"] == ["bob"]


@pytest.mark.parametrize("relative", [False, True], ids=["absolute-link", "relative-link"])
def test_symlinked_user_config_stays_a_link(home: Path, relative: bool) -> None:
    dotfiles = home.parent / "dotfiles"
    dotfiles.mkdir()
    target = dotfiles / "ssh_config"
    original = b"Host myhost\n  User alice\n"
    target.write_bytes(original)
    paths.ssh_dir().mkdir(mode=0o700)
    link = paths.user_ssh_config()
    link.symlink_to(os.path.relpath(target, link.parent) if relative else target)
    write(GPU)
    write(GPU)
    assert link.is_symlink()
    assert link.resolve() == target.resolve()
    assert target.read_bytes() == include_head(home) + original
    assert paths.user_ssh_config_backup().read_bytes() == original
    assert ssh_g("gpu", link)["hostkeyalias"] == ["rdev-gpu"]
    assert ssh_g("myhost", link)["user"] == ["alice"]


# --- paths as config values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "expected"), [
    ("/tmp/h/.ssh/rdev/known_hosts", "/tmp/h/.ssh/rdev/known_hosts"),
    ("/tmp/my home/.ssh/rdev/known_hosts", '"/tmp/my home/.ssh/rdev/known_hosts"'),
    ("/tmp/50%/.ssh/rdev/cm/gpu", "/tmp/50%%/.ssh/rdev/cm/gpu"),
    ("/tmp/a b%c/cm/gpu", '"/tmp/a b%%c/cm/gpu"'),
    ("/tmp/a#b/id", "/tmp/a#b/id"),
])
def test_config_path_quotes_and_escapes(path: str, expected: str) -> None:
    assert sshconfig.config_path(Path(path)) == expected


@pytest.mark.parametrize("path", ['/tmp/say "hi"/h', "/tmp/new\nline/h", "/tmp/tab\there/h"])
def test_config_path_refuses_what_a_config_cannot_hold(path: str) -> None:
    with pytest.raises(RdevError, match="cannot hold"):
        sshconfig.config_path(Path(path))


def test_home_with_a_quote_writes_nothing(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    odd = home.parent / 'say "hi"'
    odd.mkdir()
    monkeypatch.setenv("HOME", str(odd))
    with pytest.raises(RdevError):
        write(GPU)
    assert not (odd / ".ssh" / "rdev" / "config").exists()
    assert not (odd / ".ssh" / "config").exists()


@pytest.mark.parametrize("folder", [
    "plain",
    "with space",
    "hash#mark",
    "equals=sign",
    "per%cent",
])
def test_odd_home_paths_still_reach_rdev_hosts(home: Path, monkeypatch: pytest.MonkeyPatch, folder: str) -> None:
    odd_home = home.parent / folder / "h"
    odd_home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(odd_home))
    write(GPU, COLAB, GPU)  # a replace re-reads rdev's file through sshconf
    include = paths.user_ssh_config().read_text().splitlines()[1]
    assert include == sshconfig.include_line()
    assert (include == f'Include "{odd_home}/.ssh/rdev/config"') == (" " in folder)
    text = paths.rdev_ssh_config().read_text()
    assert text.count("\nHost ") == 2 and text.count("UserKnownHostsFile") == 2
    for entry in (GPU, COLAB):
        options = ssh_g(entry.name, paths.user_ssh_config())
        assert options.get("hostkeyalias") == [f"rdev-{entry.name}"]
        assert options.get("user") == [entry.user]
        assert options.get("userknownhostsfile") == [str(odd_home / ".ssh" / "rdev" / "known_hosts")]
        assert Path(options["controlpath"][0]).parent == odd_home / ".ssh" / "rdev" / "cm"


# --- ControlMaster and the socket path limit -----------------------------------------------------------------


def home_with_control_dir_of(length: int, base: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point HOME at a folder under `base` whose ~/.ssh/rdev/cm path is exactly `length` characters."""
    room = length - len("/.ssh/rdev/cm") - len(str(base)) - 1
    assert room > 0
    # Folders of 100 characters joined by "/" (a single name may not exceed 255), cut to the exact length.
    tail = ("d" * 100 + "/") * (room // 101 + 1)
    tail = tail[:room - 1] + "e"
    deep = base / tail
    deep.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HOME", str(deep))
    assert len(str(paths.control_dir())) == length
    return deep


def test_no_controlmaster_when_the_socket_path_cannot_fit(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deep = home_with_control_dir_of(250, home.parent, monkeypatch)
    write(GPU)
    text = paths.rdev_ssh_config().read_text()
    assert text == sshconfig.HEADER + "\n\n" + block(GPU, deep, multiplexing=False)
    assert "ControlPersist" not in text
    assert not paths.control_dir().exists()
    options = ssh_g("gpu", paths.user_ssh_config())
    assert options["controlmaster"] == ["false"]
    assert "controlpath" not in options
    assert options["hostkeyalias"] == ["rdev-gpu"]


@pytest.mark.parametrize("length", [
    40,
    45,
    46,
    47,
    60,
])
def test_controlpath_is_written_only_when_the_bind_path_fits(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                             length: int) -> None:
    home_with_control_dir_of(length, home.parent, monkeypatch)
    write(GPU)
    options = ssh_g("gpu", paths.user_ssh_config())
    if "controlpath" in options:
        [control_path] = options["controlpath"]
        assert Path(control_path).parent == paths.control_dir()
        # ssh binds "<ControlPath>.<16 random characters>" first; with its NUL it must fit in sun_path.
        assert len(control_path.encode()) + BIND_SUFFIX_LEN + 1 <= SMALLEST_SUN_PATH
    else:
        assert options["controlmaster"] == ["false"]
        # Left out only when not even the name ("gpu") would have fitted.
        assert length + 1 + len("gpu") + BIND_SUFFIX_LEN + 1 > SMALLEST_SUN_PATH


def test_fixture_home_is_short_enough_for_controlmaster(home: Path) -> None:
    write(GPU)
    assert "ControlMaster auto" in paths.rdev_ssh_config().read_text()


# --------------------------------------------------------------------------- ProxyCommand rendering

@pytest.mark.parametrize(("binary", "windows", "expected"), [
    ("/usr/local/bin/cloudflared", False, "/usr/local/bin/cloudflared access ssh --hostname %h"),
    ("/home/a b/bin/cloudflared", False, '"/home/a b/bin/cloudflared" access ssh --hostname %h'),
    ("/opt/100%/cloudflared", False, "/opt/100%%/cloudflared access ssh --hostname %h"),
    (r"C:\Users\ann\cloudflared.exe", True, "C:/Users/ann/cloudflared.exe access ssh --hostname %h"),
    (r"C:\Program Files\cloudflared\cloudflared.exe", True,
     '"C:/Program Files/cloudflared/cloudflared.exe" access ssh --hostname %h'),
    (r"C:\50%\cloudflared.exe", True, "C:/50%%/cloudflared.exe access ssh --hostname %h"),
])
def test_proxy_command_rendering(binary: str, windows: bool, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "WINDOWS", windows)
    assert sshconfig.proxy_command(binary) == expected


@pytest.mark.parametrize(("binary", "windows"), [
    ('/opt/"q"/cloudflared', False), ("/opt/$HOME/cloudflared", False), ("/opt/`x`/cloudflared", False),
    ("/opt/a\\b/cloudflared", False), ("/opt/new\nline", False), ('C:\\"q"\\cloudflared.exe', True),
    ("cloudflared", False), ("bin/cloudflared", False), ("cloudflared.exe", True), (r"bin\cloudflared.exe", True),
])
def test_proxy_command_refuses_shell_specials(binary: str, windows: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "WINDOWS", windows)
    with pytest.raises(RdevError):
        sshconfig.proxy_command(binary)


def test_cloudflared_host_block_has_proxy_command(home: Path) -> None:
    entry = HostEntry(name="colab", host="a-b-c-d.trycloudflare.com", port=22, user="root", tunnel="cloudflared",
                      cloudflared="/usr/bin/cloudflared")
    store.put(entry)
    shown = ssh_g_raw("colab", home / ".ssh" / "config").splitlines()
    assert "proxycommand /usr/bin/cloudflared access ssh --hostname %h" in shown
    assert "hostname a-b-c-d.trycloudflare.com" in shown


@pytest.mark.parametrize("binary", ["/opt/a&b/cloudflared", "/opt/a;b/cloudflared", "/opt/a|b/cloudflared",
                                    "/opt/it's/cloudflared", "/opt/a>b/cloudflared"])
def test_proxy_command_refuses_shell_operators(binary: str) -> None:
    with pytest.raises(RdevError):
        sshconfig.proxy_command(binary)


@pytest.mark.parametrize("folder", ["o'brien", "back\\slash", "glob[1]", "star*"])
def test_home_that_would_break_the_include_writes_nothing(home: Path, monkeypatch: pytest.MonkeyPatch, folder: str) -> None:
    odd = home.parent / folder
    odd.mkdir()
    monkeypatch.setenv("HOME", str(odd))
    with pytest.raises(RdevError):
        store.put(HostEntry(name="gpu", host="10.0.0.1", port=22, user="u"))
    assert not (odd / ".ssh" / "config").exists()


def test_user_wildcard_cannot_forward_agent_to_rdev_hosts(home: Path) -> None:
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    (ssh_dir / "config").write_text("Host *\n  ForwardAgent yes\n")
    store.put(HostEntry(name="gpu", host="10.0.0.1", port=22, user="u"))
    assert "forwardagent no" in ssh_g_raw("gpu", ssh_dir / "config").splitlines()
    assert "forwardagent yes" in ssh_g_raw("other", ssh_dir / "config").splitlines()


# --- each host reached only the way rdev means -----------------------------------------------------------------


def test_two_names_on_one_endpoint_get_their_own_master_socket(home: Path) -> None:
    write(GPU, HostEntry(name="gpu-b", host=GPU.host, port=GPU.port, user=GPU.user))
    first = ssh_g("gpu", paths.user_ssh_config())["controlpath"]
    second = ssh_g("gpu-b", paths.user_ssh_config())["controlpath"]
    assert first == [str(paths.control_dir() / "gpu")] and second == [str(paths.control_dir() / "gpu-b")]


def test_a_long_name_gets_a_short_socket_that_fits(home: Path) -> None:
    long_name = "n" * 63
    write(HostEntry(name=long_name, host="10.0.0.1", port=22, user="u"))
    [control_path] = ssh_g(long_name, paths.user_ssh_config())["controlpath"]
    assert Path(control_path).parent == paths.control_dir()
    assert len(control_path.encode()) + BIND_SUFFIX_LEN + 1 <= SMALLEST_SUN_PATH


USER_PROXIES = (b"Host * !bastion\n  ProxyJump bastion\n  ControlMaster no\n  ControlPath /tmp/theirs-%C\n"
                b"  RemoteCommand tmux new -A -s main\n  UpdateHostKeys yes\n"
                b"Host gpu colab jumped\n  ProxyCommand nc -X connect %h %p\n")


@pytest.mark.parametrize(("entry", "proxy"), [
    (GPU, {}),
    (HostEntry(name="colab", host="x.trycloudflare.com", port=22, user="root", tunnel="cloudflared",
               cloudflared="/usr/bin/cloudflared"), {"proxycommand": ["/usr/bin/cloudflared access ssh --hostname %h"]}),
    (HostEntry(name="jumped", host="10.0.0.2", port=22, user="u", login=True, jump="gate"), {"proxyjump": ["gate"]}),
], ids=["direct", "cloudflared", "jump"])
def test_user_proxies_and_masters_do_not_reach_rdev_hosts(home: Path, entry: HostEntry, proxy: dict) -> None:
    """A user's `Host *` ProxyJump, a `Host NAME` ProxyCommand of their own, their ControlPath: rdev's
    block names its own (or none), and OpenSSH takes the first value it obtains."""
    put_user_config(home, UserConfig(USER_PROXIES))
    write(entry)
    options = ssh_g(entry.name, paths.user_ssh_config())
    assert {key: options[key] for key in ("proxycommand", "proxyjump") if key in options} == proxy
    assert options["controlpath"] == [str(paths.control_dir() / entry.name)]
    assert options["controlmaster"] == ["auto"]
    assert "remotecommand" not in options and options["updatehostkeys"] == ["false"]
    # The user's own hosts keep their proxy.
    assert ssh_g("elsewhere", paths.user_ssh_config())["proxyjump"] == ["bastion"]


# --- a Windows laptop --------------------------------------------------------------------------------------------

WINDOWS_HOME = PureWindowsPath(r"C:\Users\Jane Doe")


@pytest.fixture
def windows(home: Path, monkeypatch: pytest.MonkeyPatch) -> PureWindowsPath:
    """Render as rdev does on Windows, for a home with a space in it."""
    monkeypatch.setattr(paths, "WINDOWS", True)
    monkeypatch.setattr(paths, "home", lambda: WINDOWS_HOME)
    return WINDOWS_HOME


def test_windows_paths_are_forward_slashed_and_quoted(windows: PureWindowsPath) -> None:
    entry = HostEntry(name="colab", host="x.trycloudflare.com", port=22, user="root", tunnel="cloudflared",
                      cloudflared=r"C:\Program Files\cloudflared\cloudflared.exe")
    options = sshconfig.host_options(entry)
    assert options["IdentityFile"] == '"C:/Users/Jane Doe/.ssh/rdev/id_ed25519"'
    assert options["UserKnownHostsFile"] == '"C:/Users/Jane Doe/.ssh/rdev/known_hosts"'
    assert options["ProxyCommand"] == '"C:/Program Files/cloudflared/cloudflared.exe" access ssh --hostname %h'
    assert (options["ControlMaster"], options["ControlPath"]) == ("no", "none")
    assert "ControlPersist" not in options
    assert sshconfig.include_line() == 'Include "C:/Users/Jane Doe/.ssh/rdev/config"'


def test_windows_rendering_means_the_intended_paths_to_openssh(windows: PureWindowsPath, tmp_path: Path) -> None:
    """OpenSSH's own parser (`ssh -G`) reads every path of the Windows rendering as one whole path."""
    entry = HostEntry(name="colab", host="x.trycloudflare.com", port=22, user="root", tunnel="cloudflared",
                      cloudflared=r"C:\Program Files\cloudflared\cloudflared.exe")
    config = tmp_path / "config"
    config.write_bytes(sshconfig.with_entry(entry))
    options = ssh_g("colab", config)
    assert options["identityfile"] == ["C:/Users/Jane Doe/.ssh/rdev/id_ed25519"]
    assert options["userknownhostsfile"] == ["C:/Users/Jane Doe/.ssh/rdev/known_hosts"]
    assert options["proxycommand"] == ['"C:/Program Files/cloudflared/cloudflared.exe" access ssh --hostname %h']
    assert options["controlmaster"] == ["false"] and "controlpath" not in options
    # Include: a path that does not exist here, so ask ssh's debug log which single path it looked for.
    config.write_text(sshconfig.include_line() + "\n")
    debug = subprocess.run(["ssh", "-G", "-vvv", "-F", str(config), "colab"], check=False, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=30).stderr
    assert "C:/Users/Jane Doe/.ssh/rdev/config matched no files" in debug


# --- a ~/.ssh/config that is not a file ----------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["/dev/null", "folder"])
def test_user_config_linked_to_a_non_file_is_refused_and_nothing_written(home: Path, target: str) -> None:
    paths.ssh_dir().mkdir(mode=0o700)
    if target == "folder":
        target = str(home / "somewhere")
        Path(target).mkdir()
    paths.user_ssh_config().symlink_to(target)
    with pytest.raises(RdevError, match="not a regular file") as caught:
        write(GPU)
    assert caught.value.exit_code == 2
    assert paths.user_ssh_config().is_symlink() and os.readlink(paths.user_ssh_config()) == target
    assert not paths.rdev_ssh_config().exists() and not paths.registry().exists()


def test_a_bare_include_of_the_users_own_is_not_doubled(home: Path) -> None:
    """A user who wrote rdev's Include first themselves (or whose config is read-only with it) is left alone."""
    paths.ssh_dir().mkdir(mode=0o700)
    original = f"Include {paths.rdev_ssh_config()}\nHost foo\n  User bob\n".encode()
    paths.user_ssh_config().write_bytes(original)
    write(GPU)
    assert paths.user_ssh_config().read_bytes() == original
    assert not paths.user_ssh_config_backup().exists()
    assert ssh_g("gpu", paths.user_ssh_config())["hostkeyalias"] == ["rdev-gpu"]


def test_a_non_text_rdev_config_is_one_sentence(home: Path) -> None:
    write(GPU)
    paths.rdev_ssh_config().write_bytes(b"Host gpu\n  User \xff\xfe\n")
    with pytest.raises(RdevError, match="not text rdev wrote"):
        write(COLAB)


# --- a Colab runtime behind Google's colab CLI ---------------------------------------------------------------

CLI_HOST = HostEntry(name="colab", host="colab-runtime", port=22, user="root", tunnel="colab-cli", workdir="/content",
                     runtime="colab", colab_session="gpu", colab_endpoint="gpu-t4-s-3kq9", colab="/opt/colab/bin/colab",
                     gpu="T4")


def test_colab_cli_host_renders_exactly(home: Path) -> None:
    write(CLI_HOST)
    guard = f"{sys.executable} -I -m client_side.colab_proxy colab gpu-t4-s-3kq9"
    proxy = f"{guard} -- /opt/colab/bin/colab ssh --proxy-mode -s gpu -i {home}/.ssh/rdev/id_ed25519"
    assert paths.rdev_ssh_config().read_text() == expected_file(home, CLI_HOST).replace("ProxyCommand none", f"ProxyCommand {proxy}")


def test_colab_cli_host_means_to_ssh_what_rdev_meant(home: Path) -> None:
    write(CLI_HOST)
    options = ssh_g("colab", paths.user_ssh_config())
    [proxy] = options["proxycommand"]
    assert proxy.endswith(f"-- /opt/colab/bin/colab ssh --proxy-mode -s gpu -i {home}/.ssh/rdev/id_ed25519")
    assert options["user"] == ["root"]
    assert options["identityfile"] == [f"{home}/.ssh/rdev/id_ed25519"]
    assert options["hostkeyalias"] == ["rdev-colab"]
    assert options["stricthostkeychecking"] == ["true"]
    assert options["controlmaster"] == ["auto"]


def test_colab_cli_paths_that_a_proxy_command_cannot_hold_are_refused(home: Path) -> None:
    for colab in ("/opt/a;b/colab", "/opt/$(x)/colab", "colab", "/opt/it's/colab"):
        with pytest.raises(RdevError) as caught:
            store.put(replace(CLI_HOST, colab=colab))
        assert caught.value.exit_code == 2
    assert not paths.rdev_ssh_config().exists()

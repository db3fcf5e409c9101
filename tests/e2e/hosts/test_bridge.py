"""Jump hosts that refuse TCP forwarding (`AllowTcpForwarding no`, as on many HPC login nodes): rdev notices the
refusal, reaches the host through its byte bridge over an ordinary session on the jump host, says so once and
keeps the choice; the editor's connections still share one master.

The hosts are far hosts of the zoo: a gateway in a network namespace of its own, reached through a portal on
loopback, and an inner host in another namespace that only the gateway can reach."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ssh_through
from tests.stand_ins.login_host import BRIDGE_MARK, PASSWORD, PasswordHost, login_host
from tests.stand_ins.zoo import zoo


@dataclass
class Behind:
    gateway: PasswordHost
    inner: PasswordHost
    gateway_link: str  # the gateway's end of its link to the inner host


@pytest.fixture
def behind(home: Path, rdev) -> Iterator[Behind]:
    """`gw`, a gateway that refuses forwarding (connected already), and `inner` added behind it."""
    with zoo() as hosts:
        gateway_ns, inner_ns = hosts.namespace("gw"), hosts.namespace("inner")
        gateway_link, inner_address = hosts.link(gateway_ns, inner_ns)
        with login_host(home, netns=gateway_ns, folder="gw", extra="AllowTcpForwarding no\n") as gateway, \
                login_host(home, netns=inner_ns, address=inner_address, folder="inner") as inner:
            port = hosts.portal(gateway_ns, "127.0.0.1", 22)
            assert rdev("add", "gw", "--host", "127.0.0.1", "--port", str(port), "--user", gateway.user).returncode == 0
            connected = rdev("connect", "gw", "--password-stdin", "--no-open", input=PASSWORD + "\n")
            assert connected.returncode == 0, connected.stderr
            added = rdev("add", "inner", "--host", inner_address, "--user", inner.user, "--jump", "gw")
            assert added.returncode == 0, added.stderr
            yield Behind(gateway, inner, gateway_link)


def test_a_gateway_without_forwarding_is_crossed_by_the_bridge_and_that_is_kept(home: Path, rdev,
                                                                                   behind: Behind) -> None:
    first = rdev("connect", "inner", "--password-stdin", "--no-open", input=PASSWORD + "\n")
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("gw does not allow TCP forwarding") == 1, first.stdout
    assert ssh_through(home, "inner", "id -un").stdout.strip() == behind.inner.user
    assert behind.inner.authorized_keys().strip() == rdev("key").stdout.strip()
    # The inner host saw every login come from the gateway's end of their link: there is no other way in.
    sources = {line.split(" from ")[1].split()[0] for line in (behind.inner.root / "sshd.log").read_text().splitlines()
               if "Accepted " in line}
    assert sources == {behind.gateway_link}
    proxy = ssh_through(home, "-G", "inner").stdout
    assert "proxyjump" not in proxy and BRIDGE_MARK in proxy
    assert "bridge = true" in (home.parent / "cfg" / "rdev" / "hosts.toml").read_text()

    assert "via gw (bridge)" in rdev("list").stdout
    again = rdev("connect", "inner", "--no-open")  # the choice is kept: no refusal to notice any more
    assert again.returncode == 0, again.stderr
    assert "forwarding" not in again.stdout


def test_the_editors_connections_share_one_master_and_one_bridge(home: Path, rdev, behind: Behind) -> None:
    assert rdev("connect", "inner", "--password-stdin", "--no-open", input=PASSWORD + "\n").returncode == 0
    with ThreadPoolExecutor(5) as pool:
        results = list(pool.map(lambda _: ssh_through(home, "inner", "true"), range(5)))
    assert [r.returncode for r in results] == [0] * 5, [r.stderr for r in results]
    assert ssh_through(home, "-O", "check", "inner").returncode == 0
    assert behind.gateway.bridges() == 1


def test_rdev_ssh_and_a_password_check_go_through_the_bridge(home: Path, rdev, behind: Behind,
                                                            secret_service: dict[str, str]) -> None:
    assert rdev("connect", "inner", "--password-stdin", "--no-open", input=PASSWORD + "\n").returncode == 0
    assert rdev("ssh", "inner", "--", "echo", "inside").stdout.strip() == "inside"
    # `rdev password` checks the password with paramiko, through the kept bridge, before it keeps it.
    env = {**os.environ, **secret_service}
    assert rdev("password", "inner", "--stdin", input="wrong\n", env=env).stderr.count("was refused") == 1
    kept = rdev("password", "inner", "--stdin", input=PASSWORD + "\n", env=env)
    assert kept.returncode == 0, kept.stderr

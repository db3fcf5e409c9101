"""What the probe reads from a login: the remote home, marked, among what login scripts print."""

from __future__ import annotations

import pytest

from client_side.ssh import probe


@pytest.mark.parametrize(("stdout", "home"), [
    ("rdev-home:/home/ana\n", "/home/ana"),
    ("Welcome to the cluster\nQuota: 12 GB\nrdev-home:/home/ana\n", "/home/ana"),
    ("rdev-home:/home/ana\nbye from .logout\n", "/home/ana"),
    ("a banner without a newline rdev-home:/home/ana\n", "/home/ana"),
    ("/not/marked\n", ""),
    ("rdev-home:relative\n", ""),
    ("", ""),
])
def test_the_home_is_the_marked_line(stdout: str, home: str) -> None:
    assert probe.home_in(stdout) == home

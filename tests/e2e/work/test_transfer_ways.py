"""`rdev pull` / `rdev push` along the ways in that are more than a port: a ticket host behind a cloudflared tunnel
(the stand-in's `access ssh` as the ProxyCommand), and a Slurm job's node reached through the login node. Each copies
a tree with a 50 MB file and a name with spaces both ways, a second copy sends nothing, and a link cut mid-file (the
tunnel's process, the jump through the login node) resumes from the part already here."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from bootstrap import ticket as tickets
from tests.conftest import ssh_through
from tests.e2e.slurm.test_slurm import add, connect as connect_slurm, login_node, queue
from tests.e2e.work.test_transfer import (
    cut_and_resume,
    laptop_folder,
    make_tree,
    pull_and_push_twice,
    run_rdev,
)
from tests.slurm_cluster import SlurmCluster
from tests.stand_ins.login_host import PasswordHost


def pids_of(*argv_parts: bytes) -> list[int]:
    """The processes whose command line holds each of `argv_parts` (NUL-separated words)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if all(part in cmdline.read_bytes() for part in argv_parts):
                found.append(int(cmdline.parent.name))
        except OSError:  # ended meanwhile
            continue
    return found


def kill(pids: list[int]) -> None:
    assert pids, "nothing to cut"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


def test_through_a_cloudflared_tunnel(home: Path, rdev, server, cloudflared_standin: Path) -> None:
    here = laptop_folder(home)
    line = server("--tunnel", "cloudflared", "--cloudflared", str(cloudflared_standin))
    hostname = tickets.parse(line).host
    connected = rdev("connect", "colab", "--ticket", line, "--no-open", "--cloudflared", str(cloudflared_standin))
    assert connected.returncode == 0, connected.stderr
    far = home.parent / "far files"
    source = make_tree(far / "results")
    pull_and_push_twice("colab", str(source), source, here, make_tree(home.parent / "mine"), str(far / "in"),
                        far / "in")

    shutil.rmtree(here / "results")
    # The tunnel goes: the laptop's end of it (the ProxyCommand under the master connection) is killed.
    tunnel = f"access\0ssh\0--hostname\0{hostname}".encode()
    cut_and_resume("colab", str(source), source, here, home, lambda: kill(pids_of(tunnel)))


@pytest.mark.skipif(os.geteuid() != 0, reason="a private Slurm and a test user need root")
def test_through_the_login_node_to_a_slurm_job(home: Path, rdev, slurm: SlurmCluster) -> None:
    here = laptop_folder(home)
    with login_node(home, slurm) as login:
        add(rdev, login)
        connected = connect_slurm(rdev)
        assert connected.returncode == 0, connected.stderr
        [job] = queue(slurm, login)
        source = users_tree(login, "results")
        # Remote paths relative to the home there; the job's sessions run as the cluster's user.
        pull_and_push_twice("hpc", "results", source, here, make_tree(home.parent / "mine"), "pushed",
                            login.home / "pushed")
        assert ssh_through(home, "hpc", "stat -c %U pushed/mine/big.bin").stdout.strip() == login.user

        shutil.rmtree(here / "results")
        # The link to the login node goes: the jump under the job's master connection (`ssh -W`, with this test's
        # config) is killed.
        jump = (b"\0-W\0", f"\0{home}/.ssh/config\0".encode())
        cut_and_resume("hpc", "results", source, here, home, lambda: kill(pids_of(*jump)))

        # `rdev stop --pull` copies first, then ends the job.
        (source / "sub dir" / "nested.txt").write_text("the last result\n")
        stopped = run_rdev("stop", "hpc", "--pull", "results/sub dir", cwd=here)
        assert stopped.returncode == 0, stopped.stderr
        assert (here / "sub dir" / "nested.txt").read_text() == "the last result\n"
        assert f"Cancelled Slurm job {job}" in stopped.stdout


def users_tree(login: PasswordHost, name: str) -> Path:
    """make_tree in the cluster user's home, owned by that user."""
    source = make_tree(login.home / name)
    shutil.chown(source, login.user, login.user)
    for path in source.rglob("*"):
        shutil.chown(path, login.user, login.user)
    return source

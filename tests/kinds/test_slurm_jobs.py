"""The sbatch options rdev passes through the login node's shell, and how squeue's lines are read."""

from __future__ import annotations

import pytest

from client_side.errors import BadInput
from client_side.kinds import slurm_jobs


@pytest.mark.parametrize(("given", "kept"), [
    ("--partition=gpu --gres=gpu:1 --time=04:00:00", "--partition=gpu --gres=gpu:1 --time=04:00:00"),
    ("-p gpu  -G 1", "-p gpu -G 1"), ("", ""), ("--mem=32G --constraint=a100,h100", "--mem=32G --constraint=a100,h100"),
    ("--mail-user=me@uni.example.edu", "--mail-user=me@uni.example.edu"),
])
def test_options_sbatch_takes_are_kept(given: str, kept: str) -> None:
    assert slurm_jobs.flags(given) == kept


@pytest.mark.parametrize("given", ["--partition=gpu;id", "--x=$(id)", "--x=`id`", "a|b", "--x='a b'", "--x=\"a\nb\"",
                                   "--x=a>b", "--x=~/f", "--x=*", "'unclosed"])
def test_options_with_shell_characters_are_refused(given: str) -> None:
    with pytest.raises(BadInput) as caught:
        slurm_jobs.flags(given)
    assert caught.value.fix


@pytest.mark.parametrize("given", ["--job-name=x", "--output=/tmp/o", "--wrap=ls", "--array=1-3", "--export=ALL",
                                   "--chdir=/", "--parsable",
                                   # sbatch takes any unambiguous start of a long option
                                   "--job=x", "--out=o", "--expor=ALL", "--chd=/", "--wai", "--hol", "--test", "--pars"])
def test_options_rdev_sets_itself_are_refused(given: str) -> None:
    with pytest.raises(BadInput) as caught:
        slurm_jobs.flags(given)
    assert "rdev sets" in caught.value.problem


@pytest.mark.parametrize("given", ["-J x", "-Jfoo", "-ofoo", "-D/tmp", "-a1-3", "-o /tmp/o", "-pgpu", "--Partition=gpu",
                                   "--partition gpu", "-p", "-p -G"])
def test_short_options_beyond_the_common_ones_and_loose_values_are_refused(given: str) -> None:
    with pytest.raises(BadInput):
        slurm_jobs.flags(given)


def test_squeue_lines_are_read_as_jobs() -> None:
    assert slurm_jobs._job("42|PENDING|Resources|(null)|4:00:00|gpu\n") == slurm_jobs.Job("42", "PENDING", "Resources", "(null)",
                                                                                "4:00:00", "gpu")
    assert slurm_jobs._job("garbage") is None
    # An id goes back into commands on the login node: only a plain number is one.
    assert slurm_jobs._job("77;touch${IFS}/tmp/x;#|RUNNING|None|n1|1:00|gpu") is None
    assert slurm_jobs._job("12_3|RUNNING|None|n1|1:00|gpu") is None


def test_the_runtime_on_the_cluster_is_named_by_its_content() -> None:
    assert slurm_jobs.runtime_path(b"a") == slurm_jobs.runtime_path(b"a") != slurm_jobs.runtime_path(b"b")
    assert slurm_jobs.runtime_path(b"a").startswith("$HOME/.rdev/runtime/rdev-")


@pytest.mark.parametrize(("left", "seconds"), [
    ("59", 59), ("19:58", 1198), ("3:59:58", 14398), ("1-02:03:04", 93784), ("UNLIMITED", None), ("NOT_SET", None),
    ("INVALID", None), ("", None), ("1-", None), ("a:b", None),
])
def test_time_left_as_squeue_prints_it(left: str, seconds: int | None) -> None:
    assert slurm_jobs.Job("1", "RUNNING", "None", "n1", left, "gpu").seconds_left() == seconds

"""Unit tests for colab_side/runtime.py: which kind of runtime serves, and what follows from it.

The kind goes into the ticket and decides the folder the editor opens, when the ticket says the
runtime expires, and which note about the provider's rules is shown (once per process, so a
re-run notebook cell stays quiet).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bootstrap.ticket import RUNTIMES
from colab_side import runtime, server
from colab_side.errors import ServeError
from colab_side.server import _address
from colab_side.state import StateFolder
from colab_side.tunnels import make_tunnel

STARTED = datetime(2026, 11, 22, 1, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("environ", "kind"), [
    ({"COLAB_RELEASE_TAG": "release-colab_20260101-060000_RC00"}, "colab"),
    ({"COLAB_GPU": "1"}, "colab"),
    ({"COLAB_GPU": ""}, "colab"),
    ({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, "kaggle"),
    ({"KAGGLE_URL_BASE": "https://www.kaggle.com"}, "kaggle"),
    ({}, "generic"),
    ({"PATH": "/usr/bin", "HOME": "/root", "CUDA_HOME": "/usr/local/cuda"}, "generic"),
    ({"colab_gpu": "1", "KAGGLE": "1", "MY_COLAB_GPU": "1"}, "generic"),
])
def test_detect(environ: dict[str, str], kind: str) -> None:
    """Each service is told by the variables its runtimes set; anything else is a generic box."""
    assert runtime.detect(environ) == kind


def test_detect_prefers_colab_when_both_look_present() -> None:
    """An environment with both services' markers is reported as one kind, checked Colab first."""
    assert runtime.detect({"COLAB_GPU": "1", "KAGGLE_URL_BASE": "https://www.kaggle.com"}) == "colab"


def test_detect_reads_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an argument, detect() looks at os.environ."""
    for name in ("COLAB_RELEASE_TAG", "COLAB_GPU", "KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_URL_BASE"):
        monkeypatch.delenv(name, raising=False)
    assert runtime.detect() == "generic"
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    assert runtime.detect() == "kaggle"


def test_detected_kinds_are_ticket_runtimes() -> None:
    """Whatever detect() answers must be accepted by the ticket parser on the laptop."""
    for environ in ({"COLAB_GPU": "1"}, {"KAGGLE_URL_BASE": "x"}, {}):
        assert runtime.detect(environ) in RUNTIMES


@pytest.mark.parametrize(("kind", "folder"), [("colab", "/content"), ("kaggle", "/kaggle/working"),
                                              ("generic", "/home/someone")])
def test_default_workdir(kind: str, folder: str) -> None:
    """Colab and Kaggle open their working folders; a generic box opens the served account's home."""
    assert runtime.default_workdir(kind, Path("/home/someone")) == folder


@pytest.mark.parametrize("kind", ["colab", "kaggle"])
def test_notebook_runtimes_expire_after_12_hours(kind: str) -> None:
    """The ticket's expiry for a notebook runtime is 12 hours after its start, in the same time zone."""
    ends = runtime.expires(kind, STARTED)
    assert ends == STARTED + timedelta(hours=12)
    assert ends is not None and ends.tzinfo == timezone.utc


def test_generic_never_expires() -> None:
    """A generic box has no lifetime, so its ticket says none."""
    assert runtime.expires("generic", STARTED) is None


@pytest.mark.parametrize(("kind", "words"), [("colab", "Colab"), ("kaggle", "Kaggle")])
def test_policy_note_for_notebook_services(kind: str, words: str) -> None:
    """Colab and Kaggle each have a one-line note about running SSH there, naming the service."""
    note = runtime.policy_note(kind)
    assert note and words in note and "SSH" in note and "\n" not in note


def test_no_policy_note_for_generic() -> None:
    """A box of one's own gets no warning."""
    assert runtime.policy_note("generic") is None


def test_note_policy_once_per_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    """The note is printed the first time a kind serves in this process, and never again for that kind."""
    monkeypatch.setattr(server, "_NOTED", set())
    printed: list[str] = []
    server._note_policy("colab", printed.append)
    server._note_policy("colab", printed.append)
    assert printed == [runtime.policy_note("colab")]
    server._note_policy("kaggle", printed.append)
    server._note_policy("kaggle", printed.append)
    server._note_policy("colab", printed.append)
    assert printed == [runtime.policy_note("colab"), runtime.policy_note("kaggle")]


def test_note_policy_silent_for_generic(monkeypatch: pytest.MonkeyPatch) -> None:
    """A generic runtime prints nothing, however often it serves."""
    monkeypatch.setattr(server, "_NOTED", set())
    printed: list[str] = []
    for _ in range(2):
        server._note_policy("generic", printed.append)
    assert printed == []


def test_a_listen_name_is_served_on_one_address() -> None:
    """--listen localhost: the busy-port check, readiness and sshd all use the one address it names."""
    assert _address("localhost") in ("127.0.0.1", "::1")
    assert _address("127.0.0.1") == "127.0.0.1"
    with pytest.raises(ServeError, match="does not resolve") as caught:
        _address("no-such-host.invalid")
    assert caught.value.exit_code == 2


def test_the_colab_note_quotes_both_lists_of_the_faq_and_names_googles_route() -> None:
    note = runtime.policy_note("colab")
    assert '"remote control such as SSH shells, remote desktops"' in note
    assert '"connecting to remote proxies"' in note and "colab ssh --proxy-mode" in note


def test_a_tunnel_that_fails_on_kaggle_names_the_internet_setting(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    tunnel = make_tunnel("cloudflared", listen="127.0.0.1", state=StateFolder(tmp_path), binary="/bin/true")
    assert "Internet setting" not in tunnel._failure()
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    assert "Internet setting on (Settings > Internet)" in tunnel._failure()

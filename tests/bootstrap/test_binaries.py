"""Unit tests for bootstrap/binaries.py: which cloudflared or ngrok binary both sides run.

The explicit path wins, then RDEV_CLOUDFLARED / RDEV_NGROK, then the PATH, then the copy
pycloudflared or pyngrok keeps. The result goes into an SSH ProxyCommand and into process
launches from other folders, so it must be absolute. Nothing here downloads: every fallback
finds an executable made in tmp_path, and the download functions fail the test if called.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pycloudflared.util
import pytest
from pyngrok import conf, installer
from pyngrok.exception import PyngrokError

from bootstrap import binaries
from bootstrap.binaries import BinaryUnavailable

# (finder, the binary's name, its environment variable)
FINDERS = [(binaries.cloudflared, "cloudflared", "RDEV_CLOUDFLARED"), (binaries.ngrok, "ngrok", "RDEV_NGROK")]
IDS = ["cloudflared", "ngrok"]


def executable(path: Path) -> Path:
    """A small shell script at `path`, executable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An empty PATH and no variables; the download functions fail the test if reached."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("RDEV_CLOUDFLARED", raising=False)
    monkeypatch.delenv("RDEV_NGROK", raising=False)

    def refuse(*args: object, **kwargs: object) -> str:
        pytest.fail("a download was attempted")
    monkeypatch.setattr(pycloudflared.util, "download", refuse)
    monkeypatch.setattr(installer, "install_ngrok", refuse)


@pytest.mark.parametrize(("find", "name", "variable"), FINDERS, ids=IDS)
def test_explicit_beats_variable_beats_path(find: Callable[[str | None], str], name: str, variable: str,
                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each source is used only when the ones before it are absent."""
    given = executable(tmp_path / "given" / name)
    from_variable = executable(tmp_path / "variable" / name)
    on_path = executable(tmp_path / "on-path" / name)
    monkeypatch.setenv("PATH", str(on_path.parent))
    monkeypatch.setenv(variable, str(from_variable))
    assert find(str(given)) == str(given)
    assert find(None) == str(from_variable)
    monkeypatch.delenv(variable)
    assert find(None) == str(on_path)


@pytest.mark.parametrize(("find", "name", "variable"), FINDERS, ids=IDS)
def test_empty_variable_counts_as_unset(find: Callable[[str | None], str], name: str, variable: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`RDEV_X=` (set but empty) does not stop the PATH from being searched."""
    on_path = executable(tmp_path / "on-path" / name)
    monkeypatch.setenv("PATH", str(on_path.parent))
    monkeypatch.setenv(variable, "")
    assert find(None) == str(on_path)


@pytest.mark.parametrize(("find", "name", "variable"), FINDERS, ids=IDS)
def test_results_are_absolute(find: Callable[[str | None], str], name: str, variable: str, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative explicit path, a bare name in the variable and a relative PATH entry all come back
    absolute, pointing at the same file."""
    target = executable(tmp_path / "bin" / name)
    monkeypatch.chdir(tmp_path)
    relative = os.path.join("bin", name)

    assert find(relative) == str(target)
    monkeypatch.setenv("PATH", "bin")
    monkeypatch.setenv(variable, name)
    assert find(None) == str(target)
    monkeypatch.delenv(variable)
    assert find(None) == str(target)
    assert os.path.isabs(find(None))


@pytest.mark.parametrize(("find", "name", "variable"), FINDERS, ids=IDS)
@pytest.mark.parametrize("kind", ["not executable", "missing", "a folder"])
def test_explicit_unusable_is_refused_by_name(find: Callable[[str | None], str], name: str, variable: str, kind: str,
                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A given path that cannot run is an error naming it, not a silent fall back to another binary."""
    bad = tmp_path / "given" / name
    if kind == "not executable":
        bad.parent.mkdir()
        bad.write_text("#!/bin/sh\nexit 0\n")
        bad.chmod(0o644)
    elif kind == "a folder":
        bad.mkdir(parents=True)
    executable(tmp_path / "on-path" / name)
    monkeypatch.setenv("PATH", str(tmp_path / "on-path"))
    with pytest.raises(BinaryUnavailable) as caught:
        find(str(bad))
    assert repr(str(bad)) in str(caught.value)
    assert "not an executable" in str(caught.value)


@pytest.mark.parametrize(("find", "name", "variable"), FINDERS, ids=IDS)
def test_variable_unusable_is_refused_by_name(find: Callable[[str | None], str], name: str, variable: str,
                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A variable naming nothing runnable is an error too, even with a good binary on the PATH."""
    executable(tmp_path / "on-path" / name)
    monkeypatch.setenv("PATH", str(tmp_path / "on-path"))
    monkeypatch.setenv(variable, "/nonexistent/" + name)
    with pytest.raises(BinaryUnavailable, match=f"'/nonexistent/{name}'"):
        find(None)


def test_ngrok_falls_back_to_pyngrok_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing given and nothing on the PATH, pyngrok's installed copy is used as it is."""
    kept = executable(tmp_path / "pyngrok" / "ngrok")
    monkeypatch.setattr(conf.get_default(), "ngrok_path", str(kept))
    assert binaries.ngrok(None) == str(kept)


def test_ngrok_fallback_failure_is_binary_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pyngrok failing to install ngrok (no network, unsupported machine) becomes one sentence with its reason."""
    monkeypatch.setattr(conf.get_default(), "ngrok_path", str(tmp_path / "pyngrok" / "ngrok"))

    def fail(path: str, *args: object, **kwargs: object) -> None:
        raise PyngrokError("no network here")
    monkeypatch.setattr(installer, "install_ngrok", fail)
    with pytest.raises(BinaryUnavailable, match="no network here") as caught:
        binaries.ngrok(None)
    assert "--ngrok" in str(caught.value)


def test_cloudflared_falls_back_to_pycloudflared_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing given and nothing on the PATH, pycloudflared's downloaded copy is used as it is."""
    kept = executable(tmp_path / "pycloudflared" / "cloudflared-linux-amd64")
    monkeypatch.setattr(pycloudflared.util, "get_info", lambda: SimpleNamespace(executable=str(kept)))
    assert binaries.cloudflared(None) == str(kept)


def test_cloudflared_fallback_failures_are_binary_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unsupported machine and a failed download each become one sentence pointing at --cloudflared."""
    def unsupported() -> object:
        raise RuntimeError("no build for this machine")
    monkeypatch.setattr(pycloudflared.util, "get_info", unsupported)
    with pytest.raises(BinaryUnavailable, match="no build for this machine"):
        binaries.cloudflared(None)

    monkeypatch.setattr(pycloudflared.util, "get_info",
                        lambda: SimpleNamespace(executable=str(tmp_path / "not-there" / "cloudflared")))

    def failed_download(info: object = None) -> str:
        raise OSError("network unreachable")
    monkeypatch.setattr(pycloudflared.util, "download", failed_download)
    with pytest.raises(BinaryUnavailable, match="network unreachable") as caught:
        binaries.cloudflared(None)
    assert "--cloudflared" in str(caught.value)


def test_path_binary_beats_fallbacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A binary on the PATH is preferred to the library copies, which are only the last resort."""
    on_path = tmp_path / "on-path"
    executable(on_path / "ngrok")
    executable(on_path / "cloudflared")
    monkeypatch.setenv("PATH", str(on_path))
    monkeypatch.setattr(conf.get_default(), "ngrok_path", str(executable(tmp_path / "pyngrok" / "ngrok")))
    monkeypatch.setattr(pycloudflared.util, "get_info",
                        lambda: SimpleNamespace(executable=str(executable(tmp_path / "pycf" / "cloudflared"))))
    assert binaries.ngrok(None) == str(on_path / "ngrok")
    assert binaries.cloudflared(None) == str(on_path / "cloudflared")

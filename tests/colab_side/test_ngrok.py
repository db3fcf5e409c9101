"""Unit tests for colab_side/tunnels/ngrok.py: where the auth token comes from, and how ngrok's
failures are told to the user.

The token is taken from the argument, then NGROK_AUTHTOKEN, then Colab's secrets; without one,
or with one that could not be a token, serving stops with exit code 2 and a sentence saying what
to do. ngrok's error codes that users run into are turned into their fixes; anything else is
shown as one short line. No ngrok binary is run here.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest

from colab_side.errors import ServeError
from colab_side.state import StateFolder
from colab_side.tunnels import make_tunnel, ngrok
from colab_side.tunnels.ngrok import _FAILURES, TOKEN_VARIABLE, _explain, auth_token


class SecretMissing(Exception):
    """Stands in for google.colab.userdata's SecretNotFoundError / NotebookAccessError."""


def install_colab_secrets(monkeypatch: pytest.MonkeyPatch, secrets: dict[str, str],
                          error: Exception | None = None) -> list[str]:
    """A fake `google.colab.userdata` whose get() answers from `secrets` (or raises); returns the names asked."""
    asked: list[str] = []

    def get(name: str) -> str:
        asked.append(name)
        if error is not None:
            raise error
        if name not in secrets:
            raise SecretMissing(name)
        return secrets[name]

    google, colab, userdata = ModuleType("google"), ModuleType("google.colab"), ModuleType("google.colab.userdata")
    userdata.get = get  # type: ignore[attr-defined]
    colab.userdata = userdata  # type: ignore[attr-defined]
    google.colab = colab  # type: ignore[attr-defined]
    google.__path__ = []  # a package, so the submodule import works
    colab.__path__ = []  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.userdata", userdata)
    return asked


@pytest.fixture(autouse=True)
def nowhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """No token in the environment and no Colab, unless a test puts one there."""
    monkeypatch.delenv(TOKEN_VARIABLE, raising=False)
    monkeypatch.setitem(sys.modules, "google.colab", None)  # importing it raises ImportError


def test_argument_beats_environment_and_colab(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token given to serve() is used even when the environment and Colab hold others."""
    monkeypatch.setenv(TOKEN_VARIABLE, "from-env")
    asked = install_colab_secrets(monkeypatch, {TOKEN_VARIABLE: "from-colab"})
    assert auth_token("from-argument") == "from-argument"
    assert asked == [], "Colab's secrets were read although a token was given"


def test_environment_beats_colab(monkeypatch: pytest.MonkeyPatch) -> None:
    """NGROK_AUTHTOKEN is used before Colab's secrets are asked."""
    monkeypatch.setenv(TOKEN_VARIABLE, "from-env")
    asked = install_colab_secrets(monkeypatch, {TOKEN_VARIABLE: "from-colab"})
    assert auth_token(None) == "from-env"
    assert asked == []


@pytest.mark.parametrize("empty_variable", [False, True])
def test_colab_secret_is_last(monkeypatch: pytest.MonkeyPatch, empty_variable: bool) -> None:
    """With no argument and no (or an empty) variable, the Colab secret named NGROK_AUTHTOKEN is used."""
    if empty_variable:
        monkeypatch.setenv(TOKEN_VARIABLE, "")
    asked = install_colab_secrets(monkeypatch, {TOKEN_VARIABLE: "from-colab"})
    assert auth_token() == "from-colab"
    assert asked == [TOKEN_VARIABLE]


def test_surrounding_white_space_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token pasted with a trailing newline or spaces is still the token."""
    assert auth_token("  tok123\n") == "tok123"
    monkeypatch.setenv(TOKEN_VARIABLE, "tok456\n")
    assert auth_token() == "tok456"


def no_token_error() -> ServeError:
    with pytest.raises(ServeError) as caught:
        auth_token(None)
    return caught.value


def test_no_token_anywhere_is_exit_2_naming_the_variable() -> None:
    """Without Colab and without the variable, the error says to set NGROK_AUTHTOKEN (bad input: exit 2)."""
    error = no_token_error()
    assert error.exit_code == 2
    assert TOKEN_VARIABLE in str(error) and "cloudflared" in str(error)


@pytest.mark.parametrize("error", [SecretMissing("no such secret"), PermissionError("notebook has no access"),
                                   RuntimeError("not in a notebook")])
def test_colab_secret_unavailable_is_no_token(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    """A missing secret or a denied access is not a crash: it is the same 'no token' sentence."""
    asked = install_colab_secrets(monkeypatch, {}, error=error)
    failure = no_token_error()
    assert asked == [TOKEN_VARIABLE]
    assert failure.exit_code == 2 and TOKEN_VARIABLE in str(failure)


def test_colab_without_the_secret_is_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Colab present, but no secret of that name: exit 2 naming the variable."""
    install_colab_secrets(monkeypatch, {"OTHER": "x"})
    assert no_token_error().exit_code == 2


@pytest.mark.parametrize("token", ["two words", "line\nbreak", "tab\there", "nul\x00byte", "esc\x1b[0m"])
def test_token_that_is_not_one_word_is_refused(monkeypatch: pytest.MonkeyPatch, token: str) -> None:
    """Inner white space or control characters mean a bad copy; the message must not repeat the token."""
    for source in ("argument", "environment"):
        if source == "environment":
            if "\x00" in token:
                continue  # an environment value cannot hold a NUL byte
            monkeypatch.setenv(TOKEN_VARIABLE, token)
        with pytest.raises(ServeError) as caught:
            auth_token(token if source == "argument" else None)
        assert caught.value.exit_code == 2
        assert "one word" in str(caught.value)
        assert token not in str(caught.value)


def test_whitespace_only_argument_is_no_token() -> None:
    """An argument of only spaces is no token at all."""
    with pytest.raises(ServeError) as caught:
        auth_token("   ")
    assert caught.value.exit_code == 2 and TOKEN_VARIABLE in str(caught.value)


@pytest.mark.parametrize(("code", "sentence"), _FAILURES, ids=[code for code, _ in _FAILURES])
def test_explain_known_codes(code: str, sentence: str) -> None:
    """Each documented ngrok code, inside ngrok's own wording, becomes its fix sentence."""
    error = f"failed to start tunnel: authentication failed: something went wrong.\n\n{code}\n"
    assert _explain(error) == sentence
    assert _explain(code) == sentence


def test_explain_known_codes_are_distinct() -> None:
    """No two codes share a sentence by mistake, and the missing-token code says the same as the no-token error."""
    sentences = [sentence for _, sentence in _FAILURES]
    assert len(set(sentences)) == len(sentences)
    assert _explain("ERR_NGROK_4018") == ngrok.NO_TOKEN


def test_explain_unknown_error_is_one_short_line() -> None:
    """Anything else is shown as `ngrok failed: ...`, on one line, cut to 300 characters of the error."""
    error = "tunnel session failed:\n  the remote\tend hung up\n" + "x" * 1000
    explained = _explain(error)
    assert explained.startswith("ngrok failed: tunnel session failed: the remote end hung up x")
    assert "\n" not in explained and "\t" not in explained
    assert len(explained) == len("ngrok failed: ") + 300


def test_explain_short_unknown_error_is_kept_whole() -> None:
    """A short error is not cut, and an unknown ERR_NGROK code is shown as it is."""
    assert _explain("ERR_NGROK_3200 endpoint offline") == "ngrok failed: ERR_NGROK_3200 endpoint offline"


@pytest.mark.parametrize(("argument", "variable"), [("tok123", None), (None, "tok123"), (None, None)])
def test_ngrok_with_hostname_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argument: str | None,
                                        variable: str | None) -> None:
    """--hostname is for named cloudflared tunnels; with ngrok it is bad input (exit 2), said whether or
    not a token is there, so the user learns the real mistake first."""
    if variable:
        monkeypatch.setenv(TOKEN_VARIABLE, variable)
    with pytest.raises(ServeError, match="hostname") as caught:
        make_tunnel("ngrok", listen="127.0.0.1", state=StateFolder(tmp_path), hostname="x.example.com", token=argument)
    assert caught.value.exit_code == 2


def test_make_tunnel_ngrok_takes_the_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a hostname, make_tunnel gives an ngrok tunnel holding the token, and no binary is looked up yet."""
    monkeypatch.setenv(TOKEN_VARIABLE, "tok-from-env")
    tunnel = make_tunnel("ngrok", listen="127.0.0.1", state=StateFolder(tmp_path), binary="/opt/ngrok")
    assert isinstance(tunnel, ngrok.NgrokTunnel)
    assert tunnel.token == "tok-from-env" and tunnel.explicit_binary == "/opt/ngrok" and tunnel.binary == ""


def test_make_tunnel_ngrok_without_token_is_exit_2(tmp_path: Path) -> None:
    """Choosing ngrok with no token anywhere stops before anything starts, as bad input."""
    with pytest.raises(ServeError, match=TOKEN_VARIABLE) as caught:
        make_tunnel("ngrok", listen="127.0.0.1", state=StateFolder(tmp_path))
    assert caught.value.exit_code == 2

"""The one notebook cell: valid Python for every tunnel and runtime, values as literals, the ngrok
token read where the cell runs (and never written into it), and keys that are not public keys refused."""

from __future__ import annotations

import ast
import getpass
import sys
import types

import pytest

from bootstrap import cell
from bootstrap.validate import InvalidValue
from colab_side.tunnels.ngrok import TOKEN_VARIABLE

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA rdev@laptop"
PIP_LINE = 'subprocess.run([sys.executable, "-m", "pip", "install", "-q", '


def serve_call(text: str) -> ast.Call:
    """The one `colab_side.serve(...)` call in the cell."""
    calls = [node for node in ast.walk(ast.parse(text))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "serve"]
    assert len(calls) == 1
    return calls[0]


def argument(call: ast.Call, name: str) -> ast.expr:
    return next(k.value for k in call.keywords if k.arg == name)


@pytest.mark.parametrize("runtime", cell.RUNTIMES)
@pytest.mark.parametrize("tunnel", cell.TUNNELS)
def test_every_cell_is_python_with_the_key_once_as_a_literal(tunnel: str, runtime: str) -> None:
    text = cell.render(KEY, tunnel, runtime, "rdev==0.1.0")
    call = serve_call(text)
    assert ast.literal_eval(argument(call, "tunnel")) == tunnel
    assert ast.literal_eval(argument(call, "authorized_keys")) == [KEY]
    strings = [n.value for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert strings.count(KEY) == 1 and text.count(KEY) == 1
    assert text.startswith("# ") and f"rdev connect {runtime}" in text.splitlines()[0]
    assert [line for line in text.splitlines() if line.startswith(PIP_LINE)] == [PIP_LINE + "'rdev==0.1.0'], check=True)"]
    assert ("token" in {k.arg for k in call.keywords}) == (tunnel == "ngrok")
    assert "!pip" not in text
    assert ("getpass.getpass(" in text) == (tunnel == "ngrok")


@pytest.mark.parametrize("runtime, api, other", [
    ("colab", 'userdata.get("NGROK_AUTHTOKEN")', "kaggle_secrets"),
    ("kaggle", 'UserSecretsClient().get_secret("NGROK_AUTHTOKEN")', "google.colab"),
])
def test_ngrok_cell_reads_the_token_from_the_runtime_secrets(monkeypatch: pytest.MonkeyPatch, runtime: str, api: str,
                                                             other: str) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, "2abcLaptopToken_123")
    text = cell.render(KEY, "ngrok", runtime, "rdev==0.1.0")
    assert api in text and other not in text and "getpass.getpass(" in text
    assert "2abcLaptopToken_123" not in text
    assert f'"{TOKEN_VARIABLE}"' in text  # the name the runtime side also reads


def test_rendered_cloudflared_cell_for_colab() -> None:
    assert cell.render(KEY, "cloudflared", "colab", "rdev @ git+https://github.com/o/r.git@v1") == (
        "# rdev: serve this runtime over SSH (tunnel: cloudflared) and print a ticket; then on your laptop run: "
        "rdev connect colab\n"
        "import subprocess, sys\n"
        "subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", 'rdev @ git+https://github.com/o/r.git@v1'], "
        "check=True)\n"
        "import colab_side\n"
        f"server = colab_side.serve(tunnel='cloudflared', authorized_keys=['{KEY}'])\n"
    )


def test_the_editor_server_starts_downloading_before_the_tunnel_package_installs() -> None:
    spec = "code:stable:" + "a" * 40
    lines = cell.render(KEY, "cloudflared", "colab", runtime_zip=b"zip", editor_server=spec).splitlines()
    ahead = lines.index(f"colab_side.fetch_editor_server({spec!r})  # your editor's server downloads while the rest "
                        "installs")
    pip = next(i for i, line in enumerate(lines) if line.startswith(PIP_LINE))
    assert lines.index("import colab_side") < ahead < pip
    assert lines[-1].endswith(f", editor_server={spec!r})")  # serve reports that fetch


def test_rendered_ngrok_cell_for_kaggle() -> None:
    assert cell.render(KEY, "ngrok", "kaggle", "/kaggle/input/rdev") == (
        "# rdev: serve this runtime over SSH (tunnel: ngrok) and print a ticket; then on your laptop run: "
        "rdev connect kaggle\n"
        "import subprocess, sys\n"
        "subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", '/kaggle/input/rdev'], check=True)\n"
        "import colab_side\n"
        "import getpass, os\n"
        "try:  # your ngrok auth token, from Kaggle's secrets (Add-ons > Secrets)\n"
        "    from kaggle_secrets import UserSecretsClient\n"
        "    token = UserSecretsClient().get_secret(\"NGROK_AUTHTOKEN\")\n"
        "except Exception:  # no such secret, or no access to it: the environment's, else asked for\n"
        "    token = None\n"
        "token = token or os.environ.get(\"NGROK_AUTHTOKEN\") or "
        "getpass.getpass(\"ngrok auth token (https://dashboard.ngrok.com/get-started/your-authtoken): \")\n"
        f"server = colab_side.serve(tunnel='ngrok', authorized_keys=['{KEY}'], token=token)\n"
    )


def runtime_module(monkeypatch: pytest.MonkeyPatch, runtime: str, secret: str | None) -> None:
    """Stand-ins for Colab's `google.colab.userdata` and Kaggle's `kaggle_secrets`, which exist only there;
    like the real ones, they raise when the secret is missing."""
    def lookup(name: str) -> str:
        if secret is None or name != TOKEN_VARIABLE:
            raise RuntimeError(f"Secret {name} does not exist.")
        return secret

    if runtime == "colab":
        colab = types.ModuleType("google.colab")
        colab.userdata = types.SimpleNamespace(get=lookup)
        monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
        monkeypatch.setitem(sys.modules, "google.colab", colab)
    else:
        kaggle = types.ModuleType("kaggle_secrets")
        kaggle.UserSecretsClient = lambda: types.SimpleNamespace(get_secret=lookup)
        monkeypatch.setitem(sys.modules, "kaggle_secrets", kaggle)


@pytest.mark.parametrize("runtime", cell.RUNTIMES)
@pytest.mark.parametrize("secret, environment, expected", [
    ("from-secrets", "from-env", "from-secrets"),
    (None, "from-env", "from-env"),
    (None, None, "typed-in"),
])
def test_ngrok_cell_token_falls_through_secrets_environment_then_prompt(
        monkeypatch: pytest.MonkeyPatch, runtime: str, secret: str | None, environment: str | None,
        expected: str) -> None:
    runtime_module(monkeypatch, runtime, secret)
    if environment:
        monkeypatch.setenv(TOKEN_VARIABLE, environment)
    else:
        monkeypatch.delenv(TOKEN_VARIABLE, raising=False)
    prompts: list[str] = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt: prompts.append(prompt) or "typed-in")
    served: list[dict] = []
    monkeypatch.setitem(sys.modules, "colab_side", types.SimpleNamespace(serve=lambda **kw: served.append(kw)))

    text = cell.render(KEY, "ngrok", runtime, "rdev==0.1.0")
    code = "".join(line for line in text.splitlines(True) if not line.startswith(PIP_LINE))
    exec(compile(code, "cell", "exec"), {})  # noqa: S102 - running the cell is the point; its imports are stand-ins

    assert served == [{"tunnel": "ngrok", "authorized_keys": [KEY], "token": expected}]
    assert len(prompts) == (expected == "typed-in")


def test_a_quote_in_the_key_comment_stays_inside_the_literal() -> None:
    key = KEY.replace("rdev@laptop", "it's \"me\" ']) ; import os #")
    text = cell.render(key, "cloudflared", "colab", "rdev==0.1.0")
    assert ast.literal_eval(argument(serve_call(text), "authorized_keys")) == [key]
    assert not any(isinstance(node, ast.Import) and node.names[0].name == "os" for node in ast.walk(ast.parse(text)))


@pytest.mark.parametrize("key", [
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
     "-----END OPENSSH PRIVATE KEY-----"),
    "hello",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJTdnlNi8B altered",
    "",
])
def test_a_key_that_is_not_a_public_key_is_refused_without_echo(key: str) -> None:
    with pytest.raises(InvalidValue, match="rdev key") as caught:
        cell.render(key, "cloudflared", "colab", "rdev==0.1.0")
    assert "b3BlbnNzaC1rZXktdjEA" not in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("tunnel, runtime, named", [("tailscale", "colab", "tunnel"), ("ngrok", "generic", "runtime"),
                                                    ("NGROK", "colab", "tunnel"), ("ngrok", "", "runtime")])
def test_unknown_tunnel_or_runtime_is_refused(tunnel: str, runtime: str, named: str) -> None:
    with pytest.raises(InvalidValue, match=f"^The {named} "):
        cell.render(KEY, tunnel, runtime, "rdev==0.1.0")

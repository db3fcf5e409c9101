"""What the laptop asks the remote to fetch for its editor: VS Code's and Insiders' commit from
`--version`; VSCodium's download made from its product.json as open-remote-ssh makes it, and nothing
for a build whose layout rdev does not know."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from client_side.editors import editor, server
from tests.conftest import editor_standin, vscodium_standin

COMMIT = "c" * 40  # the stand-in download server's VSCodium commit


def test_vs_code_and_insiders_send_their_commit(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RDEV_STANDIN_COMMIT", COMMIT)
    for name, quality in (("code", "stable"), ("code-insiders", "insider")):
        launcher, _ = editor_standin(home, monkeypatch, name=name)
        assert server.spec(editor.Editor(editor.BY_NAME[name], str(launcher))) == f"code:{quality}:{COMMIT}"


def test_vscodium_sends_the_url_open_remote_ssh_would_use(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The stand-in launcher's --version says 1.99.0; the release is product.json's.
    assert server.spec(vscodium_standin(home, monkeypatch)) == (
        f"codium:stable:{COMMIT}:https://github.com/VSCodium/vscodium/releases/download/1.99.0.25017/"
        "vscodium-reh-${os}-${arch}-1.99.0.25017.tar.gz")


def test_vscodium_takes_the_template_of_its_product_json(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    template = "https://mirror.example.org/${quality}/${commit}/codium-${os}-${arch}-${version}${release}.tgz"
    assert server.spec(vscodium_standin(home, monkeypatch, serverDownloadUrlTemplate=template)) == (
        f"codium:stable:{COMMIT}:https://mirror.example.org/stable/{COMMIT}/codium-${{os}}-${{arch}}-1.99.025017.tgz")


@pytest.mark.parametrize("product", [{"serverDataFolderName": ".vscode-oss-server"},
                                     {"serverApplicationName": "code-oss-server"},
                                     {"commit": "d" * 40}, {"quality": "insider"}, {"release": None},
                                     {"serverDownloadUrlTemplate": "https://x.org/${arch}.tar.gz?token=1"}])
def test_a_vscodium_rdev_cannot_place_gets_nothing_fetched(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                           product: dict) -> None:
    assert server.spec(vscodium_standin(home, monkeypatch, **product)) is None


def test_a_vscodium_without_product_json_gets_nothing_fetched(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = vscodium_standin(home, monkeypatch)
    (Path(found.path).parent.parent / "resources" / "app" / "product.json").unlink()
    assert server.spec(found) is None


def test_cursor_and_windsurf_get_nothing_fetched(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("cursor", "windsurf"):
        launcher, _ = editor_standin(home, monkeypatch, name=name)
        assert server.spec(editor.Editor(editor.BY_NAME[name], str(launcher))) is None


def test_vscodium_on_macos_and_through_a_symlinked_launcher(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = vscodium_standin(home, monkeypatch)
    app = Path(found.path).parent.parent
    expected = server.spec(found)
    assert expected is not None
    # /usr/bin/codium -> /usr/share/codium/bin/codium, as Linux packages install it
    link = home.parent / "usr-bin" / "codium"
    link.parent.mkdir()
    link.symlink_to(found.path)
    assert server.spec(editor.Editor(found.kind, str(link))) == expected
    # VSCodium.app/Contents/Resources/app/bin/codium beside .../Resources/app/product.json
    (app / "resources" / "app" / "product.json").rename(app / "product.json")
    assert server.spec(found) == expected


@pytest.mark.parametrize("insecure", ["1", None])
def test_the_users_opt_in_to_a_plain_http_mirror_reaches_the_host(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  insecure: str | None) -> None:
    """Without it, an http mirror the laptop accepts would still be refused there, by a sentence telling the user to
    set what they set."""
    monkeypatch.setenv("RDEV_STANDIN_COMMIT", COMMIT)
    launcher, _ = editor_standin(home, monkeypatch, name="code")
    monkeypatch.setenv("RDEV_EDITOR_DOWNLOADS", "http://mirror.lab.example")
    if insecure:
        monkeypatch.setenv("RDEV_EDITOR_DOWNLOADS_INSECURE", insecure)
    asked: list[tuple[str, ...]] = []

    def run(name: str, *args: str, **kwargs: object) -> subprocess.CompletedProcess:
        asked.append(args)
        return subprocess.CompletedProcess(args, 0, b"Editor server: ready.\n", b"")

    monkeypatch.setattr(server.shipped, "run", run)
    server.fetch_on("box", editor.Editor(editor.BY_NAME["code"], str(launcher)))
    flags = ["--insecure-mirror"] if insecure else []
    assert asked == [("prefetch", "--offer", *flags, f"code:stable:{COMMIT}", "http://mirror.lab.example")]

"""Presets are data: rdev's own file, plus the user's presets.toml that adds or replaces by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from client_side.errors import BadInput, RdevError
from client_side.local import paths, presets


def test_shipped_presets(home: Path) -> None:
    found = presets.load()
    assert found["clusteria"].ephemeral_host_keys and not found["school"].ephemeral_host_keys
    assert any("/storage" in r for r in found["clusteria"].reminders)
    assert "tailnet" in found["clusteria"].unreachable and "VPN" in found["school"].unreachable
    assert any("tmux" in r for r in found["school"].reminders)


def test_user_presets_add_and_replace(home: Path) -> None:
    paths.user_presets().parent.mkdir(parents=True)
    paths.user_presets().write_text('[school]\nunreachable = "Start the campus VPN."\n\n'
                                    '[lab]\nephemeral_host_keys = true\nworkdir = "/scratch"\nreminders = ["Quota: 50 GB."]\n')
    found = presets.load()
    assert found["school"].unreachable == "Start the campus VPN." and found["school"].reminders == ()
    assert found["lab"] == presets.Preset("lab", True, "/scratch", "Check your network and VPN.", ("Quota: 50 GB.",))
    assert "clusteria" in found


@pytest.mark.parametrize("text", ["[x]\nephemeral_host_keys = 'yes'\n", "[x]\ncolour = 'red'\n", "[x\n",
                                  "[x]\nreminders = [1]\n"])
def test_a_broken_user_file_names_itself(home: Path, text: str) -> None:
    paths.user_presets().parent.mkdir(parents=True)
    paths.user_presets().write_text(text)
    with pytest.raises(RdevError, match="presets.toml"):
        presets.load()


def test_unknown_preset_lists_the_known_ones(home: Path) -> None:
    with pytest.raises(BadInput, match="clusteria, school"):
        presets.get("nope")

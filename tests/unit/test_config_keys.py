"""Key remapping by binding id: the documented ids are real, a typo stops the start."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from tui.app.app import DashboardApp, binding_ids
from tui.commands.dashboard import run

ROOT = Path(__file__).resolve().parents[2]


def test_every_id_in_the_example_config_is_a_binding_id() -> None:
    keys_section = (ROOT / "config.example.toml").read_text().split("[keys]", 1)[1]
    keys_section = keys_section.split("\n[", 1)[0]
    documented = set(re.findall(r'"([a-z0-9_.]+)"\s*(?:=|/)', keys_section))
    assert documented, "the example documents the ids"
    known = set(binding_ids())
    assert documented - {"focus.1", "focus.9"} <= known
    # ... and every binding can be found in the example, so none is undocumented.
    undocumented = {i for i in known if i not in keys_section and not i.startswith("focus.")}
    assert not undocumented


def test_an_unknown_binding_id_exits_2_naming_key_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANYREACH_API_KEY", "ak_test")
    config = tmp_path / "config.toml"
    config.write_text('api_url = "http://127.0.0.1:9"\n\n[keys]\n"audio.toggel" = "space"\n')
    config.chmod(0o600)
    stderr = io.StringIO()
    assert run(["--config", str(config)], stderr) == 2
    message = stderr.getvalue()
    assert 'keys."audio.toggel"' in message and "line 4" in message and str(config) in message
    assert "ak_test" not in message


async def test_a_remapped_key_does_the_action_and_the_old_key_no_longer_does() -> None:
    from tests.fixtures.app import scripted_dashboard

    dashboard = scripted_dashboard(2)
    app = DashboardApp(dashboard, None, keymap={"audio.toggle": "L"})
    async with app.run_test(size=(100, 30)) as pilot:
        assert not dashboard.listening
        await pilot.press("space")
        await pilot.pause()
        assert not dashboard.listening, "space no longer toggles once remapped"
        await pilot.press("L")
        await pilot.pause()
        assert dashboard.listening
        await pilot.press("q")


def test_an_unknown_theme_exits_2_naming_key_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANYREACH_API_KEY", "ak_test")
    config = tmp_path / "config.toml"
    config.write_text('[ui]\nwallboard = false\ntheme = "solarised"\n')
    config.chmod(0o600)
    stderr = io.StringIO()
    assert run(["--config", str(config)], stderr) == 2
    message = stderr.getvalue()
    assert "ui.theme" in message and "line 3" in message and "ansi-dark" in message


def test_keys_and_theme_are_checked_once_by_the_loader_wherever_they_come_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tui.config import ConfigError, load_settings

    config = tmp_path / "config.toml"
    config.write_text('[keys]\n"audio.toggle" = "L"\n')
    known = {"ids": ["audio.toggle", "audio.mute"], "themes": ["ansi-dark", "textual-dark"]}
    settings = load_settings(config, binding_ids=known["ids"], themes=known["themes"])
    assert settings.keys == {"audio.toggle": "L"}
    # Without the names (tail, export) nothing is checked: those commands have no keys.
    assert load_settings(config, {"ui.theme": "solarised"}).ui.theme == "solarised"
    with pytest.raises(ConfigError) as caught:
        load_settings(
            config, {"ui.theme": "solarised"}, binding_ids=known["ids"], themes=known["themes"]
        )
    assert "ui.theme (command-line flag --theme): unknown theme 'solarised'" in str(caught.value)
    monkeypatch.setenv("ANYREACH_KEYS__AUDIO.MUTT", "M")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, binding_ids=known["ids"], themes=known["themes"])
    message = str(caught.value)
    assert 'keys."audio.mutt" (environment variable ANYREACH_KEYS__AUDIO.MUTT)' in message
    assert "did you mean 'audio.mute'?" in message

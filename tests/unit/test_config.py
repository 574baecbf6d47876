"""Configuration: file < environment < flags, and errors that point at the exact line."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from tests.fixtures.config import ConfigHome
from tui.config import (
    ConfigError,
    Settings,
    add_config_arguments,
    load_settings,
    settings_from_args,
)
from tui.config.loader import find_key_line

ROOT = Path(__file__).resolve().parents[2]
SECRET = "ak_TOPSECRET_1234567890"


def _error(path: Path | None, overrides: dict | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, overrides or {})
    return str(caught.value)


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_wrong_type_names_key_file_and_line(config_home: ConfigHome) -> None:
    text = 'api_url = "https://example.test"\n\n[discovery]\n# poll often\ninterval_s = "fast"\n'
    path = config_home.write_config(text)
    message = _error(path)
    assert "discovery.interval_s" in message
    assert str(path) in message
    assert f"line {_line_of(text, 'interval_s')}" in message
    assert "'fast'" in message


def test_unknown_key_names_key_file_and_line(config_home: ConfigHome) -> None:
    text = '[audio]\nno_audio = true\ndevcie = "pulse"\n\n[colours]\nred = 1\n'
    path = config_home.write_config(text)
    message = _error(path)
    assert f"audio.devcie ({path}, line 3): unknown key (did you mean 'device'?)" in message
    assert f"colours ({path}, line 5): unknown key" in message


def test_key_line_found_for_dotted_and_quoted_keys() -> None:
    text = 'api_url = "x"\naudio.device = "a"\n[ "ui" ]\n"wallboard" = 1\n[keys]\nzoom = ["z"]\n'
    assert find_key_line(text, ("audio", "device")) == 2
    assert find_key_line(text, ("ui", "wallboard")) == 4
    assert find_key_line(text, ("keys", "zoom")) == 6


def test_bad_environment_value_names_the_variable(
    config_home: ConfigHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANYREACH_DISCOVERY__MAX_PANES", "lots")
    monkeypatch.setenv("ANYREACH_AUDIO__VOLUME", "11")
    message = _error(None)
    assert "discovery.max_panes (environment variable ANYREACH_DISCOVERY__MAX_PANES)" in message
    assert "audio.volume (environment variable ANYREACH_AUDIO__VOLUME): unknown key" in message


def test_bad_flag_value_names_the_flag(config_home: ConfigHome) -> None:
    message = _error(None, {"discovery": {"max_panes": "0"}})
    assert "discovery.max_panes (command-line flag --max-panes)" in message


def test_toml_syntax_error_names_file_and_line(config_home: ConfigHome) -> None:
    path = config_home.write_config('api_url = "https://x"\n[audio\n')
    assert f"TOML syntax ({path}, line 2)" in _error(path)


def test_missing_explicit_file_is_an_error_missing_default_is_not(config_home: ConfigHome) -> None:
    assert "does not exist" in _error(config_home.root / "nope.toml")
    assert load_settings(None, {}).config_path is None


def test_default_path_follows_xdg_config_home(config_home: ConfigHome) -> None:
    config_home.config_dir.mkdir(parents=True)
    config_home.default_config.write_text("[discovery]\nmax_panes = 4\n")
    settings = load_settings(None, {})
    assert settings.discovery.max_panes == 4
    assert settings.config_path == config_home.default_config
    assert settings.transcripts.dir == config_home.data_dir / "transcripts"
    assert settings.log.file.parent == config_home.state_dir


def test_personal_token_without_org_is_refused(
    config_home: ConfigHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = 'api_url = "https://x"\napi_key = "pat_abcdef"\n'
    path = config_home.write_config(text)
    message = _error(path)
    assert f"api_key ({path}, line 2)" in message and "org_id" in message
    assert "pat_abcdef" not in message

    monkeypatch.setenv("ANYREACH_ORG_ID", "org_42")
    settings = load_settings(path, {})
    assert settings.org_id == "org_42"
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "pat_abcdef"


def test_personal_token_from_env_without_org_names_the_variable(
    config_home: ConfigHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANYREACH_API_KEY", "pat_fromenv")
    message = _error(None)
    assert "api_key (environment variable ANYREACH_API_KEY)" in message
    assert "pat_fromenv" not in message


def test_env_overrides_file_and_flags_override_env(
    config_home: ConfigHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config_home.write_config(
        'api_url = "https://file.test"\n[audio]\ndevice = "file-device"\n'
        "[discovery]\nmax_panes = 3\ninterval_s = 5\n"
    )
    parser = add_config_arguments(argparse.ArgumentParser())

    from_file = settings_from_args(parser.parse_args(["--config", str(path)]))
    assert from_file.audio.device == "file-device"
    assert from_file.api_url == "https://file.test"

    monkeypatch.setenv("ANYREACH_AUDIO__DEVICE", "env-device")
    monkeypatch.setenv("ANYREACH_API_URL", "https://env.test/")
    monkeypatch.setenv("ANYREACH_DISCOVERY__MAX_PANES", "6")
    from_env = settings_from_args(parser.parse_args(["--config", str(path)]))
    assert from_env.audio.device == "env-device"
    assert from_env.api_url == "https://env.test"
    assert from_env.discovery.max_panes == 6
    assert from_env.discovery.interval_s == 5  # a file key no one overrides survives

    from_flags = settings_from_args(
        parser.parse_args(
            [
                "--config",
                str(path),
                "--device",
                "flag-device",
                "--max-panes",
                "2",
                "--no-audio",
                "--wallboard",
                "--no-transcripts",
            ]
        )
    )
    assert from_flags.audio.device == "flag-device"
    assert from_flags.audio.no_audio is True
    assert from_flags.discovery.max_panes == 2
    assert from_flags.ui.wallboard is True
    assert from_flags.transcripts.enabled is False
    assert from_flags.api_url == "https://env.test"
    assert from_flags.discovery.interval_s == 5


def test_environment_lists_accept_json_or_commas(
    config_home: ConfigHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANYREACH_PINNED", "conv_1, conv_2")
    monkeypatch.setenv("ANYREACH_ALERTS__KEYWORDS", '["refund", "/cancel\\\\w*/"]')
    settings = load_settings(None, {})
    assert settings.pinned == ["conv_1", "conv_2"]
    assert settings.alerts.keywords == ["refund", "/cancel\\w*/"]


def test_bad_alert_regex_is_a_config_error(config_home: ConfigHome) -> None:
    path = config_home.write_config('[alerts]\nkeywords = ["ok", "/(unclosed/"]\n')
    message = _error(path)
    assert f"alerts.keywords ({path}, line 2)" in message


def test_key_remapping_by_binding_id(config_home: ConfigHome) -> None:
    path = config_home.write_config('[keys]\nzoom = ["z", "f"]\nquit = "ctrl+q"\n')
    assert load_settings(path, {}).keys == {"zoom": ["z", "f"], "quit": "ctrl+q"}
    bad = config_home.write_config('[keys]\nquit = ""\n', name="bad.toml")
    assert f"keys.quit ({bad}, line 2)" in _error(bad)


def test_world_readable_config_holding_a_key_warns(config_home: ConfigHome) -> None:
    text = f'api_key = "{SECRET}"\n'
    open_file = config_home.write_config(text, name="open.toml", mode=0o644)
    warnings = load_settings(open_file, {}).warnings
    assert len(warnings) == 1 and str(open_file) in warnings[0] and "chmod 600" in warnings[0]
    assert SECRET not in warnings[0]

    private = config_home.write_config(text, name="private.toml", mode=0o600)
    assert load_settings(private, {}).warnings == []
    keyless = config_home.write_config("[ui]\nwallboard = true\n", name="keyless.toml", mode=0o644)
    assert load_settings(keyless, {}).warnings == []


def test_api_key_never_shown(config_home: ConfigHome, monkeypatch: pytest.MonkeyPatch) -> None:
    path = config_home.write_config(f'api_key = "{SECRET}"\n')
    settings = load_settings(path, {})
    for shown in (
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        repr(settings.api_key),
        str(settings.api_key),
        f"{settings}",
    ):
        assert SECRET not in shown
    assert settings.api_key is not None and settings.api_key.get_secret_value() == SECRET

    # Nor in the error for a key of the wrong type.
    bad = config_home.write_config("api_key = 98765432123\n", name="bad.toml")
    message = _error(bad)
    assert "api_key" in message and "98765432123" not in message


def test_example_config_is_valid_and_documents_every_key(config_home: ConfigHome) -> None:
    example = ROOT / "config.example.toml"
    settings = load_settings(example, {})
    assert settings.model_dump() == Settings().model_dump()  # the example shows the defaults

    text = example.read_text()
    uncommented = text.replace("\n# ", "\n")  # commented-out keys count as documented
    tomllib.loads(text)

    def keys_of(model: type[BaseModel], prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
        found = []
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                found += keys_of(annotation, (*prefix, name))
            else:
                found.append((*prefix, name))
        return found

    missing = [
        key
        for key in keys_of(Settings, ())
        if key != ("keys",) and find_key_line(uncommented, key) is None
    ]
    assert missing == []
    assert find_key_line(uncommented, ("keys",)) is not None


@pytest.mark.timeout(60)
def test_cli_exits_2_naming_key_and_line(config_home: ConfigHome) -> None:
    path = config_home.write_config('[discovery]\nmax_panes = "many"\n')
    result = subprocess.run(
        [sys.executable, "-m", "tui.commands.main", "export", "conv_1", "--config", str(path)],
        capture_output=True,
        text=True,
        env=config_home.env(),
        cwd=ROOT,
        timeout=50,
    )
    assert result.returncode == 2
    assert f"discovery.max_panes ({path}, line 2)" in result.stderr
    assert result.stdout == ""

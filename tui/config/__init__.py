"""Configuration: TOML file < environment variables < command-line flags."""

from tui.config.errors import ConfigError, ConfigProblem
from tui.config.loader import (
    add_config_arguments,
    cli_overrides_from_args,
    load_settings,
    settings_from_args,
    settings_or_report,
)
from tui.config.settings import Settings

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "Settings",
    "add_config_arguments",
    "cli_overrides_from_args",
    "load_settings",
    "settings_from_args",
    "settings_or_report",
]

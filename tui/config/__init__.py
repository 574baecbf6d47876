"""Configuration: TOML file < environment variables < command-line flags."""

from tui.config.errors import ConfigError, ConfigProblem
from tui.config.loader import (
    EXIT_BAD_CONFIG,
    add_config_arguments,
    cli_overrides_from_args,
    load_settings,
    settings_from_args,
    settings_or_report,
)
from tui.config.settings import Settings

__all__ = [
    "EXIT_BAD_CONFIG",
    "ConfigError",
    "ConfigProblem",
    "Settings",
    "add_config_arguments",
    "cli_overrides_from_args",
    "load_settings",
    "settings_from_args",
    "settings_or_report",
]

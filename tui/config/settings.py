"""The settings model: every key of the config file, its type, default and meaning.

Sources, lowest precedence first: the TOML file, environment variables
(``ANYREACH_API_KEY``, ``ANYREACH_AUDIO__DEVICE``...), command-line flags.
``tui.config.loader`` reads the file and turns validation errors into
messages that name the key and where it came from.
"""

from __future__ import annotations

import json
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from tui.core import paths
from tui.monitor.alerts import DEFAULT_KEYWORDS, AlertPatternError, compile_keyword
from tui.monitor.health import (
    DEFAULT_DEAD_AIR_S,
    DEFAULT_LOOP_REPEATS,
    DEFAULT_RESPONSE_S,
    DEFAULT_TALK_OVER_S,
    HealthThresholds,
)

DEFAULT_API_URL = "https://api.anyreach.ai"
ENV_PREFIX = "ANYREACH_"
ENV_NESTED_DELIMITER = "__"
PAT_WITHOUT_ORG = "pat_without_org"  # error type the loader attributes to api_key


def _split_list(value: Any) -> Any:
    """Let an environment variable give a list as JSON or as comma-separated words."""
    if not isinstance(value, str):
        return value
    if value.lstrip().startswith("["):
        try:
            return json.loads(value)
        except ValueError:
            return value  # pydantic reports "not a valid list" with the key
    return [item.strip() for item in value.split(",") if item.strip()]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AudioSettings(_Section):
    device: str | int | None = Field(
        default=None, description="output device name or index; unset = system default"
    )
    no_audio: bool = Field(default=False, description="never open an audio device")

    @field_validator("device", mode="before")
    @classmethod
    def _index_from_digits(cls, value: Any) -> Any:
        # ANYREACH_AUDIO__DEVICE=3 arrives as the string "3" but means index 3.
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        if isinstance(value, str) and not value.strip():
            return None
        return value


class DiscoverySettings(_Section):
    enabled: bool = True
    interval_s: float = Field(default=2.0, ge=0.2, le=3600)
    max_panes: int = Field(default=9, ge=1, le=36)
    retire_after_s: float = Field(default=30.0, ge=0)


class TranscriptSettings(_Section):
    enabled: bool = True
    dir: Path = Field(default_factory=paths.transcripts_dir)
    # os.write already puts each line in the kernel at once, so kill -9 of the
    # app loses nothing; fsync additionally survives a power cut but may stall
    # the UI for milliseconds per line on slow disks.
    fsync: bool = False

    @field_validator("dir", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()


class AlertSettings(_Section):
    keywords: Annotated[list[str], NoDecode] = Field(default_factory=lambda: [*DEFAULT_KEYWORDS])
    focus_on_alert: bool = False
    bell: bool = True

    @field_validator("keywords", mode="before")
    @classmethod
    def _keyword_list(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("keywords", mode="after")
    @classmethod
    def _compiles(cls, keywords: list[str]) -> list[str]:
        for keyword in keywords:
            try:
                compile_keyword(keyword)
            except AlertPatternError as error:
                raise ValueError(str(error)) from None
        return keywords


class HealthSettings(_Section):
    """Agent-health thresholds (tui.monitor.health)."""

    response_s: float = Field(default=DEFAULT_RESPONSE_S, gt=0)
    dead_air_s: float = Field(default=DEFAULT_DEAD_AIR_S, gt=0)
    talk_over_s: float = Field(default=DEFAULT_TALK_OVER_S, gt=0)
    loop_repeats: int = Field(default=DEFAULT_LOOP_REPEATS, ge=2)

    def thresholds(self) -> HealthThresholds:
        return HealthThresholds(
            response_s=self.response_s,
            dead_air_s=self.dead_air_s,
            talk_over_s=self.talk_over_s,
            loop_repeats=self.loop_repeats,
        )


class UiSettings(_Section):
    theme: str = "textual-dark"
    wallboard: bool = False


# Anyreach documents no public URL for a conversation in its web app; this is the
# app host with the conversations path, and [links] conversation_url changes it.
CONVERSATION_ID_PLACEHOLDER = "{conversation_id}"
DEFAULT_CONVERSATION_URL = f"https://app.anyreach.ai/conversations/{CONVERSATION_ID_PLACEHOLDER}"


class LinkSettings(_Section):
    conversation_url: str = Field(
        default=DEFAULT_CONVERSATION_URL,
        description="a conversation in the web app; {conversation_id} is replaced (encoded)",
    )

    @field_validator("conversation_url", mode="after")
    @classmethod
    def _url_template(cls, value: str) -> str:
        value = value.strip()
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        if any(not char.isprintable() or char.isspace() for char in value):
            raise ValueError("must not contain spaces or control characters")
        if CONVERSATION_ID_PLACEHOLDER not in value:
            raise ValueError(f"must contain {CONVERSATION_ID_PLACEHOLDER}")
        rest = value.replace(CONVERSATION_ID_PLACEHOLDER, "")
        if "{" in rest or "}" in rest:
            raise ValueError(f"the only placeholder is {CONVERSATION_ID_PLACEHOLDER}")
        return value


class AuditSettings(_Section):
    # One line when hearing a call starts and one when it stops (who, which call,
    # when, why it stopped), written before the call's audio plays.
    enabled: bool = True
    file: Path = Field(default_factory=paths.audit_file)

    @field_validator("file", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    file: Path = Field(default_factory=paths.log_file)

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("file", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()


def _at_least_one_key(chosen: str | list[str]) -> str | list[str]:
    keys = [chosen] if isinstance(chosen, str) else chosen
    if not keys or any(not key.strip() for key in keys):
        raise ValueError("needs at least one non-empty key")
    return chosen


# Binding ids are lower_case_words, as Textual's Binding(id=...) in the app;
# environment variable names arrive lower-cased, so the two always agree.
BindingId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.]*$")]
KeySpec = Annotated[str | list[str], AfterValidator(_at_least_one_key)]
KeyBindings = dict[BindingId, KeySpec]

# Values read from the TOML file for the Settings being built.  A context
# variable (not a class attribute) so concurrent loads never see each other's file.
_file_values: ContextVar[dict[str, Any] | None] = ContextVar("_file_values", default=None)


class _TomlValues(PydanticBaseSettingsSource):
    """The lowest-precedence source: the already-parsed config file."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        values = _file_values.get() or {}
        return values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_file_values.get() or {})


class Settings(BaseSettings):
    """All of anyreach-tui's configuration.  ``repr`` never shows the API key."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        case_sensitive=False,
        validate_default=True,
    )

    api_url: str = DEFAULT_API_URL
    api_key: SecretStr | None = None
    org_id: str | None = None
    pinned: Annotated[list[str], NoDecode] = Field(default_factory=list)
    audio: AudioSettings = Field(default_factory=AudioSettings)
    discovery: DiscoverySettings = Field(default_factory=DiscoverySettings)
    transcripts: TranscriptSettings = Field(default_factory=TranscriptSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    ui: UiSettings = Field(default_factory=UiSettings)
    links: LinkSettings = Field(default_factory=LinkSettings)
    keys: KeyBindings = Field(default_factory=dict)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    # Set by the loader: which file was read, and what the user should be told.
    _config_path: Path | None = PrivateAttr(default=None)
    _warnings: list[str] = PrivateAttr(default_factory=list)

    @property
    def config_path(self) -> Path | None:
        return self._config_path

    @property
    def warnings(self) -> list[str]:
        return self._warnings

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Highest precedence first: flags (passed as init values), environment, file.
        return init_settings, env_settings, _TomlValues(settings_cls)

    @field_validator("api_url", mode="after")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("api_key", mode="after")
    @classmethod
    def _trimmed_key(cls, value: SecretStr | None) -> SecretStr | None:
        # A pasted key often carries a trailing newline; a blank one means "not set".
        if value is None or not value.get_secret_value().strip():
            return None
        return SecretStr(value.get_secret_value().strip())

    @field_validator("org_id", mode="after")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("pinned", mode="before")
    @classmethod
    def _pinned_list(cls, value: Any) -> Any:
        return _split_list(value)

    @model_validator(mode="after")
    def _pat_needs_org(self) -> Settings:
        if self.api_key is not None and self.api_key.get_secret_value().startswith("pat_"):
            if not self.org_id:
                raise PydanticCustomError(
                    PAT_WITHOUT_ORG,
                    "a personal access token (pat_...) needs org_id (sent as X-Anyreach-Org); "
                    "set org_id in the file, ANYREACH_ORG_ID or --org-id",
                )
        return self

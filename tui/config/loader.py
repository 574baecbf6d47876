"""Build Settings from the TOML file, the environment and command-line flags.

Every problem becomes a ``ConfigError`` naming the key and where its value
came from: ``file, line N`` for the config file (tomllib gives no positions,
so the line is found by scanning the text), the variable name for the
environment, the flag for the command line.  Secret values are never echoed.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import stat
import sys
import tomllib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, get_origin

from pydantic import BaseModel, ValidationError

from tui.config.errors import ConfigError, ConfigProblem
from tui.config.settings import (
    ENV_NESTED_DELIMITER,
    ENV_PREFIX,
    PAT_WITHOUT_ORG,
    Settings,
    _file_values,
)
from tui.core import paths

SECRET_KEYS = frozenset({("api_key",)})


@dataclass(frozen=True)
class ConfigFlag:
    """A command-line flag that overrides one setting."""

    flag: str
    key: tuple[str, ...]
    help: str
    metavar: str | None = None
    const: bool | None = None  # set for switches: the value the switch stores

    @property
    def dest(self) -> str:
        return "config_" + self.flag.removeprefix("--").replace("-", "_")


# There is deliberately no --api-key flag: a key typed on the command line
# lands in shell history and in every user's `ps` listing.  Use the file
# (chmod 600) or ANYREACH_API_KEY.
CONFIG_FLAGS: tuple[ConfigFlag, ...] = (
    ConfigFlag("--api-url", ("api_url",), "Anyreach API base URL", "URL"),
    ConfigFlag("--org-id", ("org_id",), "organization id, needed with a pat_ key", "ID"),
    ConfigFlag("--device", ("audio", "device"), "audio output device name or index", "DEVICE"),
    ConfigFlag("--no-audio", ("audio", "no_audio"), "never open an audio device", const=True),
    ConfigFlag(
        "--wallboard", ("ui", "wallboard"), "wallboard mode: big panes, no chrome", const=True
    ),
    ConfigFlag("--theme", ("ui", "theme"), "Textual theme name", "NAME"),
    ConfigFlag("--max-panes", ("discovery", "max_panes"), "most calls shown at once", "N"),
    ConfigFlag("--transcripts-dir", ("transcripts", "dir"), "where transcripts are saved", "DIR"),
    ConfigFlag("--no-transcripts", ("transcripts", "enabled"), "save no transcripts", const=False),
    ConfigFlag("--log-level", ("log", "level"), "DEBUG, INFO, WARNING or ERROR", "LEVEL"),
)


def add_config_arguments(
    parser: argparse.ArgumentParser, flags: Collection[str] | None = None
) -> argparse.ArgumentParser:
    """Add --config and the shared setting flags (all, or only those named in ``flags``)."""
    group = parser.add_argument_group("configuration (flags override env, env overrides file)")
    group.add_argument(
        "--config",
        dest="config_path",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"config file (default: {paths.config_file()})",
    )
    for flag in CONFIG_FLAGS:
        if flags is not None and flag.flag not in flags:
            continue
        if flag.const is None:
            group.add_argument(
                flag.flag, dest=flag.dest, default=None, metavar=flag.metavar, help=flag.help
            )
        else:
            group.add_argument(
                flag.flag,
                dest=flag.dest,
                action="store_const",
                const=flag.const,
                default=None,
                help=flag.help,
            )
    return parser


def cli_overrides_from_args(namespace: argparse.Namespace) -> dict[str, Any]:
    """The nested overrides dict for ``load_settings`` from the flags actually given."""
    overrides: dict[str, Any] = {}
    for flag in CONFIG_FLAGS:
        value = getattr(namespace, flag.dest, None)
        if value is not None:
            _set_nested(overrides, flag.key, value)
    return overrides


def settings_from_args(
    namespace: argparse.Namespace,
    *,
    binding_ids: Collection[str] | None = None,
    themes: Collection[str] | None = None,
) -> Settings:
    config_path = getattr(namespace, "config_path", None)
    return load_settings(
        config_path,
        cli_overrides_from_args(namespace),
        binding_ids=binding_ids,
        themes=themes,
    )


def settings_or_report(
    namespace: argparse.Namespace,
    stderr: TextIO | None = None,
    *,
    binding_ids: Collection[str] | None = None,
    themes: Collection[str] | None = None,
) -> Settings | None:
    """Load settings for a command; print warnings, or the error and return None.

    ``binding_ids`` and ``themes``, when given, are the names ``[keys]`` and
    ``ui.theme`` may use (the UI knows them, this layer does not).
    """
    stderr = stderr or sys.stderr
    try:
        settings = settings_from_args(namespace, binding_ids=binding_ids, themes=themes)
    except ConfigError as error:
        print(f"anyreach-tui: {error}", file=stderr)
        return None
    for warning in settings.warnings:
        print(f"anyreach-tui: warning: {warning}", file=stderr)
    return settings


def load_settings(
    config_path: Path | None,
    cli_overrides: Mapping[str, Any] | None = None,
    *,
    binding_ids: Collection[str] | None = None,
    themes: Collection[str] | None = None,
) -> Settings:
    """Settings from the file (``config_path`` or the default path), env and ``cli_overrides``.

    ``cli_overrides`` is nested (``{"audio": {"device": "x"}}``) or dotted
    (``{"audio.device": "x"}``).  A missing default file is fine; a missing
    explicit one is an error.  With ``binding_ids`` (``themes``), a ``[keys]``
    entry (``ui.theme``) naming none of them is an error too, with its key and
    line like any other.  Raises ``ConfigError``.
    """
    explicit = config_path is not None
    path = Path(config_path).expanduser() if config_path is not None else paths.config_file()
    text, file_data = _read_config_file(path, explicit=explicit)
    overrides = _nested(cli_overrides or {})
    token = _file_values.set(file_data)
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        raise ConfigError(_problems(error, path, text, file_data, overrides)) from None
    finally:
        _file_values.reset(token)
    unknown = _unknown_names(settings, binding_ids, themes)
    if unknown:
        problems = []
        for name, key, problem in unknown:
            source, line = _where(key, path, text, file_data, overrides)
            problems.append(ConfigProblem(name, source, problem, line))
        raise ConfigError(problems)
    settings._config_path = path if text is not None else None
    settings._warnings = permission_warnings(path, file_data) if text is not None else []
    return settings


def _unknown_names(
    settings: Settings, binding_ids: Collection[str] | None, themes: Collection[str] | None
) -> list[tuple[str, tuple[str, ...], str]]:
    """(shown key, key path, problem) for each binding id and theme the UI does not know."""
    found: list[tuple[str, tuple[str, ...], str]] = []
    if binding_ids is not None:
        known = sorted(set(binding_ids))
        for binding_id in settings.keys:
            if binding_id not in known:
                close = difflib.get_close_matches(binding_id, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problem = f"unknown binding id{hint}; known ids: {', '.join(known)}"
                found.append((f'keys."{binding_id}"', ("keys", binding_id), problem))
    theme = settings.ui.theme
    if themes is not None and theme and theme not in themes:
        problem = f"unknown theme {theme!r}; one of: {', '.join(sorted(themes))}"
        found.append(("ui.theme", ("ui", "theme"), problem))
    return found


def permission_warnings(path: Path, file_data: Mapping[str, Any]) -> list[str]:
    """A warning when a file holding the API key can be read by group or others."""
    if "api_key" not in file_data:
        return []
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o044:
        return [
            f"{path} holds api_key and is readable by other users (mode {mode:03o}); "
            f"run: chmod 600 {path}"
        ]
    return []


def find_key_line(text: str, key: Sequence[str]) -> int | None:
    """The 1-based line where ``key`` (a path such as ``("audio", "device")``) is set.

    Understands ``[section]`` headers, dotted keys and quoted keys.  If the exact
    key is not written out (e.g. it sits inside an inline table or a multi-line
    array), the line of the closest enclosing key or header is returned.
    """
    target = tuple(key)
    table: tuple[str, ...] = ()
    closest: tuple[int, int] | None = None  # (matched depth, line)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        header = _HEADER.match(line)
        if header:
            table = _split_dotted(header.group(1))
            written = table
        else:
            assignment = _ASSIGNMENT.match(line)
            if not assignment:
                continue
            written = table + _split_dotted(assignment.group(1))
        if written == target:
            return number
        if target[: len(written)] == written and (closest is None or len(written) > closest[0]):
            closest = (len(written), number)
    return closest[1] if closest else None


_BARE_OR_QUOTED = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_DOTTED = rf"{_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*"
_HEADER = re.compile(rf"^\[\[?\s*({_DOTTED})\s*\]\]?")
_ASSIGNMENT = re.compile(rf"^({_DOTTED})\s*=")
_KEY_PART = re.compile(_BARE_OR_QUOTED)


def _split_dotted(dotted: str) -> tuple[str, ...]:
    return tuple(part.strip("\"'") for part in _KEY_PART.findall(dotted))


def _read_config_file(path: Path, *, explicit: bool) -> tuple[str | None, dict[str, Any]]:
    if not path.exists():
        if explicit:
            raise ConfigError(f"config file {path} does not exist")
        return None, {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # tomllib's message ends with "(at line N, column M)".
        found = re.search(r"line (\d+)", str(error))
        line = int(found.group(1)) if found else None
        problem = re.sub(r"\s*\(at line \d+, column \d+\)$", "", str(error))
        raise ConfigError([ConfigProblem("TOML syntax", str(path), problem, line)]) from None


def _problems(
    error: ValidationError,
    path: Path,
    text: str | None,
    file_data: Mapping[str, Any],
    overrides: Mapping[str, Any],
) -> list[ConfigProblem]:
    by_key: dict[tuple[str, ...], list[str]] = {}
    inputs: dict[tuple[str, ...], str] = {}
    for detail in error.errors(include_url=False):
        key = ("api_key",) if detail["type"] == PAT_WITHOUT_ORG else _key_path(detail["loc"])
        message = _describe(detail, key)
        messages = by_key.setdefault(key, [])
        if message not in messages:  # a union reports once per member type
            messages.append(message)
        shown = _shown_input(detail, key)
        if shown:
            inputs[key] = shown
    problems = []
    for key, messages in by_key.items():
        source, line = _where(key, path, text, file_data, overrides)
        problem = "; ".join(messages) + (f" (got {inputs[key]})" if key in inputs else "")
        problems.append(ConfigProblem(".".join(key) or "settings", source, problem, line))
    return problems


def _key_path(loc: tuple[int | str, ...]) -> tuple[str, ...]:
    """The setting a pydantic error location points at, without union member names."""
    model: type[BaseModel] | None = Settings
    path: list[str] = []
    for index, part in enumerate(loc):
        if not isinstance(part, str) or model is None:
            break
        field = model.model_fields.get(part)
        path.append(part)
        if field is None:  # an unknown key (extra="forbid")
            break
        annotation = field.annotation
        if get_origin(annotation) is dict:
            # One more part, the dict's own key (a binding id), then stop.
            if index + 1 < len(loc) and isinstance(loc[index + 1], str):
                path.append(str(loc[index + 1]))
            break
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    return tuple(path)


def _describe(detail: Mapping[str, Any], key: tuple[str, ...]) -> str:
    if detail["type"] == "extra_forbidden":
        parent = _model_at(key[:-1])
        known = list(parent.model_fields) if parent else []
        close = difflib.get_close_matches(key[-1], known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown key{hint}"
    return str(detail["msg"]).removeprefix("Value error, ")


def _shown_input(detail: Mapping[str, Any], key: tuple[str, ...]) -> str | None:
    """The offending value, short, for plain values only and never for a secret."""
    value = detail.get("input")
    if detail["type"] == "extra_forbidden" or key in SECRET_KEYS:
        return None
    if not isinstance(value, str | int | float | bool) or value == "":
        return None
    shown = repr(value)
    return shown[:57] + "..." if len(shown) > 60 else shown


def _model_at(key: tuple[str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Settings
    for part in key:
        field = model.model_fields.get(part)
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _where(
    key: tuple[str, ...],
    path: Path,
    text: str | None,
    file_data: Mapping[str, Any],
    overrides: Mapping[str, Any],
) -> tuple[str, int | None]:
    """Which source gave the bad value, highest precedence first: flag, env, file."""
    for depth in range(len(key), 0, -1):
        if _has_nested(overrides, key[:depth]):
            flags = [f.flag for f in CONFIG_FLAGS if f.key == key[:depth]]
            return (f"command-line flag {flags[0]}" if flags else "command line"), None
    environment = {name.upper() for name in os.environ}
    for depth in range(len(key), 0, -1):
        name = ENV_PREFIX + ENV_NESTED_DELIMITER.join(key[:depth]).upper()
        if name in environment:
            return f"environment variable {name}", None
    if text is not None and any(_has_nested(file_data, key[:d]) for d in range(1, len(key) + 1)):
        return str(path), find_key_line(text, key)
    return "settings", None


def _has_nested(data: Mapping[str, Any], key: Sequence[str]) -> bool:
    current: Any = data
    for part in key:
        if not isinstance(current, Mapping) or part not in current:
            return False
        current = current[part]
    return True


def _set_nested(data: dict[str, Any], key: Sequence[str], value: Any) -> None:
    for part in key[:-1]:
        data = data.setdefault(part, {})
    data[key[-1]] = value


def _nested(overrides: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in overrides.items():
        if isinstance(value, Mapping):
            for inner, inner_value in _nested(value).items():
                _set_nested(result, (name, inner), inner_value)
        else:
            _set_nested(result, tuple(name.split(".")), value)
    return result

"""Scripted conversations for simulated calls, shipped as TOML package data.

A scenario is a list of lines, each spoken by the ``agent`` or the ``caller``
after a short pause.  Validation keeps every scenario realistic enough for the
dashboard to be tested against: someone speaks soon after the call starts and
no pause is long enough to look like a dead call.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Literal

Role = Literal["agent", "caller"]
ROLES: tuple[Role, ...] = ("agent", "caller")

DEFAULT_PAUSE = 0.7
# Longest pause a line may ask for: speech never takes < 0.5 s to start again, and
# the contract is "no silence over 4 s" with some margin for scheduling.
MAX_PAUSE = 3.0
# The first line must start early: "someone speaks within 5 s of the call starting".
MAX_FIRST_PAUSE = 2.0

# The TOML files live in tui/demo/scenarios/ (package data of tui.demo; this module
# shadows the folder as an import name, so it is reached through the parent package).
_PACKAGE = "tui.demo"
_FOLDER = "scenarios"


class ScenarioError(ValueError):
    """A scenario file is missing or does not follow the schema."""


@dataclass(frozen=True)
class Line:
    role: Role
    text: str
    pause_before: float = DEFAULT_PAUSE


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    lines: tuple[Line, ...]
    description: str = ""
    # Only run when asked for by name (never picked by "run every scenario").
    on_demand: bool = False
    # The agent drops out of the room after this many lines (None: it stays to the end).
    agent_leaves_after: int | None = None


def _folder() -> Traversable:
    return resources.files(_PACKAGE).joinpath(_FOLDER)


def scenario_names(*, include_on_demand: bool = False) -> list[str]:
    """Names of the shipped scenarios, sorted; on-demand ones only when asked."""
    names = sorted(
        entry.name.removesuffix(".toml")
        for entry in _folder().iterdir()
        if entry.name.endswith(".toml")
    )
    if include_on_demand:
        return names
    return [name for name in names if not load_scenario(name).on_demand]


def load_scenario(name: str) -> Scenario:
    """Load and validate the shipped scenario ``name`` (e.g. ``"support"``)."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ScenarioError(f"invalid scenario name: {name!r}")
    resource = _folder().joinpath(f"{name}.toml")
    if not resource.is_file():
        raise ScenarioError(f"unknown scenario: {name!r} (have: {', '.join(scenario_names())})")
    try:
        data = tomllib.loads(resource.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"scenario {name!r} is not valid TOML: {exc}") from exc
    return parse_scenario(name, data)


def parse_scenario(name: str, data: dict[str, object]) -> Scenario:
    """Validate a decoded TOML document and build the :class:`Scenario`."""
    title = data.get("title", name)
    description = data.get("description", "")
    on_demand = data.get("on_demand", False)
    leaves_after = data.get("agent_leaves_after")
    raw_lines = data.get("lines")
    if not isinstance(title, str) or not isinstance(description, str):
        raise ScenarioError(f"{name}: title and description must be strings")
    if not isinstance(on_demand, bool):
        raise ScenarioError(f"{name}: on_demand must be true or false")
    if not isinstance(raw_lines, list) or not raw_lines:
        raise ScenarioError(f"{name}: needs at least one [[lines]] entry")
    lines = tuple(_parse_line(name, index, raw) for index, raw in enumerate(raw_lines))
    if lines[0].pause_before > MAX_FIRST_PAUSE:
        raise ScenarioError(f"{name}: the first line must start within {MAX_FIRST_PAUSE} s")
    if leaves_after is not None and (
        not isinstance(leaves_after, int) or not 0 < leaves_after < len(lines)
    ):
        raise ScenarioError(f"{name}: agent_leaves_after must be a line count inside the script")
    return Scenario(
        name=name,
        title=title,
        description=description,
        lines=lines,
        on_demand=on_demand,
        agent_leaves_after=leaves_after,
    )


def _parse_line(name: str, index: int, raw: object) -> Line:
    where = f"{name}: line {index + 1}"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: must be a table")
    unknown = set(raw) - {"role", "text", "pause_before"}
    if unknown:
        raise ScenarioError(f"{where}: unknown keys {sorted(unknown)}")
    role, text = raw.get("role"), raw.get("text")
    pause = raw.get("pause_before", DEFAULT_PAUSE)
    if role not in ROLES:
        raise ScenarioError(f"{where}: role must be one of {ROLES}")
    if not isinstance(text, str) or not text.strip():
        raise ScenarioError(f"{where}: text must be a non-empty string")
    if not isinstance(pause, int | float) or isinstance(pause, bool) or not 0 <= pause <= MAX_PAUSE:
        raise ScenarioError(f"{where}: pause_before must be between 0 and {MAX_PAUSE} seconds")
    return Line(role=role, text=" ".join(text.split()), pause_before=float(pause))

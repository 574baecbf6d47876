"""Scripted conversations for simulated calls, shipped as TOML package data.

A scenario is a list of lines, each spoken by the ``agent`` or the ``caller``
after a short pause.  Validation keeps every scenario realistic enough for the
dashboard to be tested against: someone speaks soon after the call starts and
no pause is long enough to look like a dead call.

A scenario may instead declare that it misbehaves on purpose (``misbehaves``, with
the agent-health flag it is meant to raise: tui/monitor/health.py) and run only
on demand; then, and only then, it may break the rules that flag is about:

- ``slow`` (the agent answers late) and ``dead_air`` (nobody speaks): a line's
  ``pause_before`` may be up to MAX_MISBEHAVING_PAUSE;
- ``talk_over``: a line may have ``overlap`` (seconds): it starts that long before
  the previous line, said by the other role, ends, and both are said at once;
- ``loop`` (the agent repeats itself) needs no relaxed rule: it is only declared.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Literal, TypeGuard

from tui.demo.tts import estimated_duration

Role = Literal["agent", "caller"]
ROLES: tuple[Role, ...] = ("agent", "caller")

DEFAULT_PAUSE = 0.7
# Longest pause a line may ask for: speech never takes < 0.5 s to start again, and
# the contract is "no silence over 4 s" with some margin for scheduling.
MAX_PAUSE = 3.0
# The first line must start early: "someone speaks within 5 s of the call starting".
MAX_FIRST_PAUSE = 2.0
# What a scenario may declare it does wrong (the names of the health flags it raises).
MISBEHAVIOURS = ("slow", "dead_air", "talk_over", "loop")
# The misbehaviours a long pause is part of, and how long it may be: past the dead-air
# threshold (8 s) with room to spare, short enough that a test waiting for it stays short.
LONG_PAUSE_MISBEHAVIOURS = ("slow", "dead_air")
MAX_MISBEHAVING_PAUSE = 20.0

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
    # > 0: starts this many seconds before the previous line ends (talk-over scenarios).
    overlap: float = 0.0


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
    # The health flags this scenario raises on purpose (MISBEHAVIOURS); () behaves.
    misbehaves: tuple[str, ...] = ()


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
    misbehaves = _parse_misbehaves(name, data.get("misbehaves", []), on_demand=on_demand)
    if not isinstance(raw_lines, list) or not raw_lines:
        raise ScenarioError(f"{name}: needs at least one [[lines]] entry")
    lines = tuple(_parse_line(name, index, raw, misbehaves) for index, raw in enumerate(raw_lines))
    if lines[0].pause_before > MAX_FIRST_PAUSE:
        raise ScenarioError(f"{name}: the first line must start within {MAX_FIRST_PAUSE} s")
    if leaves_after is not None and (
        not isinstance(leaves_after, int) or not 0 < leaves_after < len(lines)
    ):
        raise ScenarioError(f"{name}: agent_leaves_after must be a line count inside the script")
    _check_overlaps(name, lines, leaves_after)
    return Scenario(
        name=name,
        title=title,
        description=description,
        lines=lines,
        on_demand=on_demand,
        agent_leaves_after=leaves_after,
        misbehaves=misbehaves,
    )


def _parse_misbehaves(name: str, raw: object, *, on_demand: bool) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(kind, str) for kind in raw):
        raise ScenarioError(
            f"{name}: misbehaves must be a list of names (known: {', '.join(MISBEHAVIOURS)})"
        )
    unknown = sorted(set(raw) - set(MISBEHAVIOURS))
    if unknown:
        raise ScenarioError(
            f"{name}: misbehaves has unknown names {unknown} (known: {', '.join(MISBEHAVIOURS)})"
        )
    if raw and not on_demand:
        # The demo plays every regular scenario: it must not raise flags nobody asked for.
        raise ScenarioError(f"{name}: a scenario that misbehaves must be on_demand = true")
    return tuple(dict.fromkeys(raw))


def _parse_line(name: str, index: int, raw: object, misbehaves: tuple[str, ...]) -> Line:
    where = f"{name}: line {index + 1}"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: must be a table")
    unknown = set(raw) - {"role", "text", "pause_before", "overlap"}
    if unknown:
        raise ScenarioError(f"{where}: unknown keys {sorted(unknown)}")
    role, text = raw.get("role"), raw.get("text")
    pause = raw.get("pause_before", DEFAULT_PAUSE)
    overlap = raw.get("overlap", 0.0)
    if role not in ROLES:
        raise ScenarioError(f"{where}: role must be one of {ROLES}")
    if not isinstance(text, str) or not text.strip():
        raise ScenarioError(f"{where}: text must be a non-empty string")
    long_pauses = any(kind in LONG_PAUSE_MISBEHAVIOURS for kind in misbehaves)
    max_pause = MAX_MISBEHAVING_PAUSE if long_pauses else MAX_PAUSE
    if not _is_number(pause) or not 0 <= pause <= max_pause:
        hint = (
            ""
            if long_pauses
            else f" (up to {MAX_MISBEHAVING_PAUSE:g} s only in an on-demand scenario with"
            f' misbehaves = ["slow"] or ["dead_air"])'
        )
        raise ScenarioError(
            f"{where}: pause_before must be between 0 and {max_pause} seconds{hint}"
        )
    if "overlap" in raw:
        if "talk_over" not in misbehaves:
            raise ScenarioError(
                f"{where}: overlap is only for an on-demand scenario with"
                ' misbehaves = ["talk_over"]'
            )
        if not _is_number(overlap) or not overlap > 0:
            raise ScenarioError(f"{where}: overlap must be a number of seconds above 0")
        if "pause_before" in raw:
            raise ScenarioError(
                f"{where}: overlap and pause_before exclude each other (an overlapping line"
                " starts before the previous one ends)"
            )
        pause = 0.0
    return Line(
        role=role,
        text=" ".join(text.split()),
        pause_before=float(pause),
        overlap=float(overlap),
    )


def _check_overlaps(name: str, lines: tuple[Line, ...], leaves_after: object) -> None:
    """An overlapping line needs a previous line, of the other role, long enough to overlap."""
    for index, line in enumerate(lines):
        if not line.overlap:
            continue
        where = f"{name}: line {index + 1}"
        if index == 0:
            raise ScenarioError(f"{where}: the first line has nothing to overlap")
        previous = lines[index - 1]
        if previous.role == line.role:
            # one bot, one microphone: a role cannot talk over itself
            raise ScenarioError(f"{where}: overlap needs the previous line to be the other role's")
        length = estimated_duration(previous.text)
        if line.overlap >= length:
            raise ScenarioError(
                f"{where}: overlap ({line.overlap:g} s) must be shorter than the previous line"
                f" (about {length:.1f} s said)"
            )
        if index == leaves_after:
            raise ScenarioError(f"{where}: the agent leaves before this line: nothing to overlap")


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)

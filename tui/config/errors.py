"""The one error the configuration layer raises: a message a user can act on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConfigProblem:
    """One bad setting: which key, where it came from, and what is wrong with it.

    ``source`` is a file path, an environment variable name or a command-line
    flag; ``line`` is set only for a file.  Never holds a secret value.
    """

    key: str
    source: str
    problem: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}, line {self.line}"
        return f"{self.key} ({where}): {self.problem}"


class ConfigError(Exception):
    """The configuration cannot be used; the caller prints it and exits with status 2."""

    def __init__(self, problems: list[ConfigProblem] | str) -> None:
        self.problems: list[ConfigProblem] = [] if isinstance(problems, str) else list(problems)
        lines = [problems] if isinstance(problems, str) else [str(p) for p in self.problems]
        if len(lines) == 1:
            super().__init__(f"bad configuration: {lines[0]}")
        else:
            super().__init__("bad configuration:\n" + "\n".join(f"  {line}" for line in lines))

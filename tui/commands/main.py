"""``anyreach-tui``: a thin dispatcher to each command's module.

Commands are imported lazily so ``anyreach-tui --help`` stays fast and a command
never pays for another's imports (Textual, PortAudio, livekit).  Each module
exposes ``main(argv) -> int``; with no command, the dashboard runs.
Run it as ``anyreach-tui`` or ``python -m tui.commands.main``.
"""

from __future__ import annotations

import importlib
import sys

# name -> (module, one-line help).
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("tui.commands.demo", "run the dashboard on a local stack (no account needed)"),
    "simulate": (
        "tui.commands.simulate",
        "run livekit-server, the API emulator and simulated calls",
    ),
    "tail": ("tui.commands.tail", "print a call's events as JSON lines, no UI"),
    "export": ("tui.commands.export", "write a saved transcript as Markdown or JSON lines"),
    "devices": ("tui.commands.devices", "list audio output devices"),
    "audit": ("tui.commands.audit", "print who heard which call, when (the audit trail)"),
    "doctor": ("tui.commands.doctor", "check configuration, API, key, room, audio, terminal"),
}
DASHBOARD_MODULE = "tui.commands.dashboard"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in SUBCOMMANDS:
        module = importlib.import_module(SUBCOMMANDS[args[0]][0])
        return int(module.main(args[1:]) or 0)
    if args and args[0] in ("-h", "--help"):
        print(_subcommand_help(), end="\n\n", flush=True)
    module = importlib.import_module(DASHBOARD_MODULE)
    return int(module.main(args) or 0)


def _subcommand_help() -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    lines = ["anyreach-tui [SUBCOMMAND] ... (each takes --help):"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in SUBCOMMANDS.items()]
    lines.append(f"  {'(none)':<{width}}  the dashboard, options below")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

"""``anyreach-tui simulate``: livekit-server, the API emulator and simulated calls, until Ctrl-C.

Prints ``api_url:`` and ``api_key:`` first (see ``tui.demo.simulate``).  Ctrl-C,
SIGTERM or SIGHUP stop the calls, the emulator and livekit-server in order; it
takes the time that needs, so this command does not use the 3.2 s deadline of
``tui.commands.ending`` (the demo, its parent, bounds it and kills it after that).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from datetime import timedelta

from tui.commands.ending import leave
from tui.commands.exit_codes import ExitCode, exit_codes_help
from tui.core.logs import LOG_FORMAT
from tui.demo.scenarios import scenario_names
from tui.demo.simulate import simulate

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="anyreach-tui simulate",
        description="Run a local livekit-server, the Anyreach API emulator and simulated "
        "calls that keep coming and going until interrupted (Ctrl-C).",
        epilog=exit_codes_help([ExitCode.OK, ExitCode.BAD_CONFIG]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--calls",
        type=int,
        default=4,
        metavar="N",
        help="calls running at the same time (default: 4)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        dest="scenarios",
        metavar="NAME",
        choices=scenario_names(include_on_demand=True),
        help="scenario to play (repeatable; default: every regular scenario)",
    )
    parser.add_argument(
        "--token-ttl",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="lifetime of listener tokens minted by the emulator (default: 600)",
    )
    parser.add_argument(
        "--tone",
        action="store_true",
        help="agents play a pure tone instead of speech (audio checks)",
    )
    return parser


async def run(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    try:
        await simulate(
            stop,
            calls=args.calls,
            scenarios=args.scenarios,
            tone=args.tone,
            token_ttl=timedelta(seconds=args.token_ttl),
        )
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.calls < 0:
        print("--calls must be 0 or more", file=sys.stderr)
        return ExitCode.BAD_CONFIG
    # A headless command: its warnings go to stderr (the demo sends that to demo-stack.log).
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format=LOG_FORMAT)
    # Once the calls, emulator and livekit-server are stopped, leave without the
    # interpreter's teardown: with 32 calls LiveKit's native threads kept a stopped
    # simulator alive (main thread gone, one native thread spinning) for 20 minutes.
    leave(asyncio.run(run(args)))


if __name__ == "__main__":
    sys.exit(main())

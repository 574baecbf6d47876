"""``anyreach-tui devices``: list the output devices ``--device NAME|INDEX`` can pick."""

from __future__ import annotations

import argparse
import sys

from tui.audio.device import list_output_devices
from tui.commands.exit_codes import ExitCode, exit_codes_help
from tui.core.logs import configure_logging


def build_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog="anyreach-tui devices",
        description="List audio output devices. Pass an index or part of a name to --device.",
        epilog=exit_codes_help([ExitCode.OK, ExitCode.FAILURE]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    configure_logging()
    devices = list_output_devices()
    if not devices:
        print("No audio output devices found (the dashboard will run with --no-audio).")
        return ExitCode.FAILURE
    print(f"{'INDEX':>5}  {'CH':>3}  {'RATE':>6}  NAME")
    for device in devices:
        mark = "  (default)" if device.is_default else ""
        print(
            f"{device.index:>5}  {device.max_output_channels:>3}  "
            f"{device.default_sample_rate:>6.0f}  {device.name}{mark}"
        )
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())

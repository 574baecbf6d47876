"""``anyreach-tui [CONVERSATION_ID ...]``: start the dashboard on conversations by id.

For now the API is given by ``--api-url``/``--api-key`` or ``ANYREACH_API_URL`` /
``ANYREACH_API_KEY``; configuration files and discovery build on `build_app`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from tui.monitor.controller import Monitor
from tui.monitor.model import Dashboard

DEFAULT_API_URL = "https://api.anyreach.ai"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="anyreach-tui",
        description="Silently monitor live Anyreach calls. Listening is off until you press space.",
    )
    parser.add_argument("conversation_ids", nargs="*", metavar="CONVERSATION_ID")
    parser.add_argument("--api-url", default=os.environ.get("ANYREACH_API_URL", DEFAULT_API_URL))
    parser.add_argument(
        "--api-key",
        default=None,
        help="API key (prefer the ANYREACH_API_KEY environment variable: flags are visible "
        "to other users in the process list)",
    )
    parser.add_argument("--org-id", default=os.environ.get("ANYREACH_ORG_ID"))
    parser.add_argument("--wallboard", action="store_true", help="read-only big-screen mode")
    parser.add_argument("--no-audio", action="store_true", help="never open an audio device")
    parser.add_argument("--device", default=None, help="audio output device (name or index)")
    parser.add_argument(
        "--theme", default=None, help="colour theme, e.g. ansi-dark for the Linux console"
    )
    return parser.parse_args(list(argv))


def build_app(
    dashboard: Dashboard,
    client: Any,
    *,
    device: str | int | None = None,
    no_audio: bool = False,
    theme: str | None = None,
) -> Any:
    """Wire model, audio router, monitor and app together (the seam live data extends)."""
    from tui.app.app import DashboardApp
    from tui.audio import AudioRouter, open_output_device

    router = AudioRouter(open_output_device(device, no_audio=no_audio or dashboard.wallboard))
    monitor = Monitor(dashboard, client, router)
    return DashboardApp(dashboard, monitor, theme=theme, notice=router.notice)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    api_key = args.api_key or os.environ.get("ANYREACH_API_KEY")
    if not api_key:
        print("anyreach-tui: set ANYREACH_API_KEY (or --api-key)", file=sys.stderr)
        return 2
    from tui.anyreach import AnyreachClient, AnyreachError

    try:
        client = AnyreachClient(args.api_url, api_key, args.org_id)
    except AnyreachError as exc:
        print(f"anyreach-tui: {exc}", file=sys.stderr)
        return 2
    dashboard = Dashboard(wallboard=args.wallboard)
    for conversation_id in args.conversation_ids:
        dashboard.add_call(conversation_id)
    app = build_app(
        dashboard, client, device=args.device, no_audio=args.no_audio, theme=args.theme
    )
    return int(app.run() or 0)


if __name__ == "__main__":
    sys.exit(main())

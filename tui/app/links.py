"""Links that cross SSH: a conversation's web-app URL, a local browser, the clipboard text.

- ``conversation_url`` fills the ``[links] conversation_url`` template with the id,
  percent-encoded, so the link is printable ASCII whatever the id holds.
- ``no_local_browser`` says why a browser started from here would not reach the user
  (over SSH it would open on the remote host; without a display there is none).
- ``open_in_browser`` runs Python's ``webbrowser`` in a child process detached from the
  terminal: no controlling terminal, stdio on /dev/null and no ``TERM`` (so no console
  browser is tried), because a browser's chatter on the inherited terminal would be
  drawn into the dashboard, and a text browser would take the terminal over.  Awaited,
  never blocking the UI.
- ``clipboard_text`` is what ``y`` copies: ``"ID URL"`` on one line, without a newline,
  so pasting it into a shell runs nothing.  An id that holds control characters,
  spaces or other invisible characters is left out (the link alone is copied): the
  OSC 52 sequence is base64 either way, but the clipboard must paste as plain text.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from subprocess import DEVNULL
from urllib.parse import quote

from tui.config.settings import CONVERSATION_ID_PLACEHOLDER, DEFAULT_CONVERSATION_URL

__all__ = [
    "DEFAULT_CONVERSATION_URL",
    "OPEN_TIMEOUT_S",
    "clipboard_text",
    "conversation_url",
    "no_local_browser",
    "open_in_browser",
    "plain_id",
]

OPEN_TIMEOUT_S = 10.0  # the child only hands the URL over (xdg-open, open, a remote call)
MAX_PLAIN_ID_CHARS = 200

# Run with -I (isolated: no PYTHON* variables, no current directory on sys.path).
_OPEN_IN_CHILD = "import sys, webbrowser; sys.exit(0 if webbrowser.open(sys.argv[1], new=2) else 1)"


def conversation_url(template: str, conversation_id: str) -> str:
    """The link to ``conversation_id``: every character but letters, digits and ``-._~``
    percent-encoded (``/`` too, so an id never changes the path)."""
    if CONVERSATION_ID_PLACEHOLDER not in template:
        raise ValueError(f"a conversation URL template needs {CONVERSATION_ID_PLACEHOLDER}")
    return template.replace(CONVERSATION_ID_PLACEHOLDER, quote(conversation_id, safe=""))


def plain_id(conversation_id: str) -> bool:
    """Whether the id can be pasted as text: printable, no spaces, not absurdly long."""
    return 0 < len(conversation_id) <= MAX_PLAIN_ID_CHARS and all(
        char.isprintable() and not char.isspace() for char in conversation_id
    )


def clipboard_text(conversation_id: str, url: str) -> str:
    """``"ID URL"`` (one line, no newline); the URL alone when the id is not plain text."""
    return f"{conversation_id} {url}" if plain_id(conversation_id) else url


def no_local_browser(
    environ: Mapping[str, str] | None = None, platform: str | None = None
) -> str | None:
    """Why no browser would open where the user sits, in words; ``None`` when one would."""
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if any(env.get(name) for name in ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY")):
        return "over SSH it would open on the remote host"
    if platform == "darwin" or platform.startswith(("win", "cygwin")):
        return None
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    return "no graphical display here (DISPLAY, WAYLAND_DISPLAY)"


async def open_in_browser(url: str) -> bool:
    """Open ``url`` with ``webbrowser`` in a detached child; whether a browser took it."""
    env = {name: value for name, value in os.environ.items() if name != "TERM"}
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-c",
            _OPEN_IN_CHILD,
            url,
            stdin=DEVNULL,
            stdout=DEVNULL,
            stderr=DEVNULL,
            env=env,
            start_new_session=True,
        )
    except OSError:
        return False
    try:
        async with asyncio.timeout(OPEN_TIMEOUT_S):
            return await process.wait() == 0
    except TimeoutError:
        process.kill()  # our child only; a browser it started lives in its own session
        await process.wait()
        return False

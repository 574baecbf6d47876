"""The project's one JSON-lines encoding: transcripts on disk and ``tail``'s output.

One object per line, UTF-8 (``ensure_ascii=False``: transcripts in any language stay
readable), with every control character escaped: ``json`` escapes C0 controls
itself but leaves DEL and the C1 range (U+007F-U+009F) raw, and some terminals act
on C1 codes as escape sequences when a file is ``cat``-ed or a pipe is watched.
The decoded text is exactly what was said.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

_C1_CONTROLS = re.compile("[\u007f-\u009f]")


def json_line(record: dict[str, Any]) -> str:
    """``record`` as one line of JSON (no newline), safe to show on a terminal."""
    line = json.dumps(record, ensure_ascii=False)
    return _C1_CONTROLS.sub(lambda m: f"\\u{ord(m.group(0)):04x}", line)


def utc_timestamp(moment: datetime | None = None) -> str:
    """ISO 8601 UTC with milliseconds and a ``Z``: ``2025-01-31T12:00:00.123Z``."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

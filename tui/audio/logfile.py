"""Moved to ``tui.core.logs`` (the one logging set-up).

TODO: delete this alias once tui/tail.py and tests/integration/test_audio_no_device.py
import ``configure_logging`` from ``tui.core.logs`` (their owners are changing them).
"""

from tui.core.logs import configure_logging as configure_logging
from tui.core.logs import configured_log_file as configured_log_file
from tui.core.logs import log_path as log_path

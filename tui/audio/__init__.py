"""Audio layer: the one output device and the router that mixes into it (no UI imports).

``open_output_device`` picks a PortAudio device (or a null one, with a notice);
``AudioRouter`` hands each listen session an output and plays the sessions it is
told to hear (``set_heard``), each at its gain and place between left and right.
"""

import logging

from tui.audio.device import (
    FRAME_BYTES,
    DeviceInfo,
    NullDevice,
    OutputDevice,
    PyAudioDevice,
    list_output_devices,
    open_output_device,
)
from tui.audio.router import AudioRouter, SessionOutput, channel_gains

# A library never prints logs itself: without the app's log file configured,
# records are dropped rather than reaching the terminal via logging's last resort.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "FRAME_BYTES",
    "AudioRouter",
    "DeviceInfo",
    "NullDevice",
    "OutputDevice",
    "PyAudioDevice",
    "SessionOutput",
    "channel_gains",
    "list_output_devices",
    "open_output_device",
]

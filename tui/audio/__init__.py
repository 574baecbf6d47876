"""Audio layer: the one output device and the focus router (no UI imports).

``open_output_device`` picks a PortAudio device (or a null one, with a notice);
``AudioRouter`` hands each listen session an output and decides what is heard.
"""

from tui.audio.device import (
    DeviceInfo,
    NullDevice,
    OutputDevice,
    PyAudioDevice,
    list_output_devices,
    open_output_device,
)
from tui.audio.router import AudioRouter, SessionOutput

__all__ = [
    "AudioRouter",
    "DeviceInfo",
    "NullDevice",
    "OutputDevice",
    "PyAudioDevice",
    "SessionOutput",
    "list_output_devices",
    "open_output_device",
]

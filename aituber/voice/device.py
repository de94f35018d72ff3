"""Playing speech on a local audio device (`--audio-device`), for people who capture desktop audio.

`sounddevice` (PortAudio) is imported only when a device is asked for; it plays from PortAudio's own
thread. Opening a stream can take a moment, so `play` and `stop` are called from a worker thread.
"""

from __future__ import annotations

import logging
from typing import Any

from aituber.errors import ConfigError
from aituber.voice.wav import decode_wav

log = logging.getLogger(__name__)

DEFAULT_DEVICE = "default"


def _import_sounddevice() -> Any:
    try:
        import sounddevice
    except ImportError as exc:
        raise ConfigError("--audio-device needs the sounddevice package: pip install 'aituber[audio]' "
                          "(on Debian/Ubuntu also: apt-get install libportaudio2)") from exc
    except OSError as exc:  # the package is there, PortAudio is not
        raise ConfigError(f"--audio-device: PortAudio is missing ({exc}); apt-get install libportaudio2") from exc
    return sounddevice


def parse_device(value: str) -> str | int | None:
    """"default" -> None (the system's default output), digits -> a device index, else a name."""
    value = value.strip()
    if not value or value == DEFAULT_DEVICE:
        return None
    return int(value) if value.isdigit() else value


class AudioDevice:
    """One output device; `open` checks it exists (a ConfigError listing the outputs if not)."""

    def __init__(self, device: str) -> None:
        self.spec = device
        self.device = parse_device(device)
        self._sd: Any = None

    def open(self) -> None:
        sd = _import_sounddevice()
        try:
            info = sd.query_devices(self.device, "output")
        except (ValueError, sd.PortAudioError) as exc:
            outputs = [f"{i}: {d['name']}" for i, d in enumerate(sd.query_devices()) if d["max_output_channels"] > 0]
            raise ConfigError(f"--audio-device {self.spec!r}: {exc}; output devices: "
                              f"{'; '.join(outputs) or 'none found'}") from exc
        self._sd = sd
        log.info("voice: also playing on the audio device %s", info["name"])

    def play(self, wav: bytes) -> None:
        """Start playing (returns at once; stops what was playing)."""
        if self._sd is None:
            return
        samples, rate, channels = decode_wav(wav)
        data = samples.reshape(-1, channels) if channels > 1 else samples
        self._sd.play(data, rate, device=self.device)

    def stop(self) -> None:
        if self._sd is not None:
            self._sd.stop()

    def wait(self) -> None:
        """Block until playing ends (`aituber say`)."""
        if self._sd is not None:
            self._sd.wait()

"""A run's settings (from the command line), built once at the entry point. No I/O here.

The character's own settings are in aituber.config (the character file) and are turned into each
stage's settings by aituber.config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aituber.engine.base import EngineSettings


@dataclass(frozen=True, slots=True)
class OverlaySettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8765
    """0 = any free port."""
    token: str | None = None
    """The token pages must give (?token=); None: none on loopback, a random one elsewhere."""
    control_token: str | None = None
    """The control panel's token (control.html?token=); None: a random one. Always required."""


@dataclass(frozen=True, slots=True)
class MqttSettings:
    host: str | None = None
    """Broker host name or address; None turns MQTT off."""
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    """Connect with TLS (the system's CA certificates unless `ca_file` is set)."""
    ca_file: Path | None = None
    """CA certificate(s) for the broker's TLS certificate; setting it implies `tls`."""
    topic_prefix: str = "aituber"
    client_id: str | None = None
    """MQTT client id; None lets the client pick a random one."""

    @property
    def enabled(self) -> bool:
        return bool(self.host)


@dataclass(frozen=True, slots=True)
class ObsSettings:
    """OBS control through obs-websocket 5 (scenes and sources: the character's `[obs]` table)."""

    url: str | None = None
    """ws://HOST:PORT of OBS's WebSocket server; None turns OBS control off."""
    password: str | None = field(default=None, repr=False)
    """The WebSocket server password ($AITUBER_OBS_PASSWORD); None when OBS asks for none."""
    timeout_s: float = 5.0
    """For connecting and for each request."""
    retry_min_s: float = 1.0
    retry_max_s: float = 30.0
    """Reconnect backoff (doubling) while OBS is away."""

    @property
    def enabled(self) -> bool:
        return bool(self.url)


@dataclass(frozen=True, slots=True)
class VoiceRunSettings:
    """The command line's say over the character's `[voice]`."""

    engine: str | None = None
    """Overrides `[voice] engine` ("openjtalk", "voicevox", "none"); None = the character's."""
    url: str | None = None
    """Overrides `[voice] url`."""
    audio_device: str | None = None
    """Also play the voice on this local audio device ("default", a name or an index); None = only
    through the overlay pages."""


@dataclass(frozen=True, slots=True)
class SessionSettings:
    engine: EngineSettings = field(default_factory=EngineSettings)
    overlay: OverlaySettings = field(default_factory=OverlaySettings)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    obs: ObsSettings = field(default_factory=ObsSettings)
    voice: VoiceRunSettings = field(default_factory=VoiceRunSettings)
    transcript: Path | None = None
    """One JSON line per event; None = no transcript."""
    console: bool = True
    """Print each answered comment and its reply."""
    close_timeout_s: float = 5.0
    """How long each output may take to finish at the end of the run."""

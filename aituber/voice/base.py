"""The voice seam: what a speech engine is, the audio it returns, the settings it is built from.

An engine turns a reading (aituber.voice.reading) into a WAV. It must never block the event loop (a
worker thread, or HTTP with timeouts). `start` raises `VoiceUnavailable` when the engine cannot be
reached now (the voice output goes on text-only and retries), `ConfigError` for the user's mistake
(a speaker the engine does not have), `VoiceError` for anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from aituber.errors import AituberError

__all__ = ["Audio", "VoiceEngine", "VoiceError", "VoiceSettings", "VoiceUnavailable"]


class VoiceError(AituberError):
    """A synthesis failed (the engine answered with an error, or gave no audio)."""


class VoiceUnavailable(VoiceError):
    """The engine cannot be reached (not running, went away); retried in the background."""


@dataclass(frozen=True, slots=True)
class Audio:
    """One synthesised clause: a WAV file (16-bit PCM) and what it holds."""

    wav: bytes
    sample_rate: int
    duration_s: float


@dataclass(frozen=True, slots=True)
class VoiceSettings:
    """How to build a speech engine; the character's `[voice]` table (see aituber.config.VoiceConfig)."""

    engine: str = "openjtalk"
    url: str = "http://127.0.0.1:50021"
    """VOICEVOX-compatible engines: where it listens (VOICEVOX 50021, AivisSpeech 10101)."""
    speaker: str | int | None = None
    """VOICEVOX-compatible: speaker name, or a style id; None = the engine's first speaker."""
    style: str | None = None
    """VOICEVOX-compatible: the speaker's style by name; None = its first style."""
    speed: float = 1.0
    pitch: float = 0.0
    """In VOICEVOX's pitchScale units (log F0: 0.0578 is a semitone)."""
    intonation: float = 1.0
    volume: float = 1.0
    pre_silence_s: float | None = None
    """Silence before each clause; None = the engine's own (0.1 s for VOICEVOX, none for OpenJTalk)."""
    post_silence_s: float | None = None
    timeout_s: float = 5.0
    """The longest a clause's synthesis may take before it is given up (that clause is shown unspoken)."""


@runtime_checkable
class VoiceEngine(Protocol):
    @property
    def name(self) -> str:
        """Its registry name ("openjtalk", "voicevox")."""

    @property
    def label(self) -> str:
        """For people: what speaks, and where."""

    async def start(self) -> None:
        """Get ready (load, reach the server, find the speaker); may be called again after a failure."""

    async def synthesize(self, text: str) -> Audio:
        """Speak `text` (a reading: see aituber.voice.reading). Cancelling the caller abandons it."""

    async def close(self) -> None:
        """Free what it holds; it is not used afterwards."""

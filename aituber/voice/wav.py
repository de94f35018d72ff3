"""WAV in and out (16-bit PCM), with the standard library's `wave` and numpy. No I/O beyond bytes."""

from __future__ import annotations

import io
import wave
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from aituber.voice.base import Audio, VoiceError


def encode_wav(samples: npt.NDArray[np.int16], sample_rate: int, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(np.ascontiguousarray(samples, dtype="<i2").tobytes())
    return buffer.getvalue()


def decode_wav(data: bytes) -> tuple[npt.NDArray[np.int16], int, int]:
    """(samples, interleaved when stereo; sample rate; channels). Only 16-bit PCM."""
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            if w.getsampwidth() != 2:
                raise VoiceError(f"WAV with {8 * w.getsampwidth()}-bit samples; expected 16-bit PCM")
            frames = w.readframes(w.getnframes())
            return np.frombuffer(frames, dtype="<i2").astype(np.int16), w.getframerate(), w.getnchannels()
    except (wave.Error, EOFError) as exc:
        raise VoiceError(f"not a WAV file: {exc}") from exc


def audio_from_wav(data: bytes) -> Audio:
    """An `Audio` for WAV bytes (its duration from the header)."""
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            rate, frames = w.getframerate(), w.getnframes()
    except (wave.Error, EOFError) as exc:
        raise VoiceError(f"the engine sent something that is not a WAV file: {exc}") from exc
    if rate <= 0:
        raise VoiceError("WAV with a sample rate of 0")
    return Audio(data, rate, frames / rate)


def float_to_int16(samples: npt.NDArray[np.floating], scale: float = 1.0) -> npt.NDArray[np.int16]:
    """Samples already in the int16 range (as OpenJTalk gives them), scaled and clipped."""
    return np.clip(np.asarray(samples, dtype=np.float64) * scale, -32768, 32767).astype(np.int16)


def concat_wavs(parts: Sequence[bytes], gap_s: float = 0.0) -> bytes:
    """Join WAVs of one format (the clauses of a `say`), with `gap_s` of silence between them."""
    if not parts:
        raise VoiceError("nothing to join")
    decoded = [decode_wav(p) for p in parts]
    rate, channels = decoded[0][1], decoded[0][2]
    if any(d[1] != rate or d[2] != channels for d in decoded):
        raise VoiceError("the clauses have different sample rates or channel counts")
    gap = np.zeros(int(gap_s * rate) * channels, dtype=np.int16)
    pieces: list[npt.NDArray[np.int16]] = []
    for i, (samples, _, _) in enumerate(decoded):
        if i:
            pieces.append(gap)
        pieces.append(samples)
    return encode_wav(np.concatenate(pieces), rate, channels)


def rms(samples: npt.NDArray[np.int16]) -> float:
    """Root mean square level (0 for silence; full scale is 32767)."""
    if samples.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))

"""The embedded voice: OpenJTalk through `pyopenjtalk-plus` (a wheel that carries the dictionary and an
HTS voice, so nothing is downloaded). Synthesis runs in one worker thread of its own; the library
releases the GIL while it synthesises, so the event loop keeps its pace."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from aituber.voice.base import Audio, VoiceError, VoiceSettings, VoiceUnavailable
from aituber.voice.wav import encode_wav, float_to_int16

log = logging.getLogger(__name__)

SEMITONE = math.log(2) / 12
"""VOICEVOX's pitchScale is in log F0: this much is one semitone."""


def _import_pyopenjtalk() -> Any:
    # pyopenjtalk-plus prints a notice about an optional ONNX model at import: keep it out of our output.
    noise = io.StringIO()
    with contextlib.redirect_stdout(noise):
        import pyopenjtalk
    if noise.getvalue().strip():
        log.debug("pyopenjtalk: %s", noise.getvalue().strip())
    return pyopenjtalk


class OpenJTalkVoice:
    """`settings`: speed, pitch (as a semitone shift), volume, pre/post silence; intonation is not
    something an HTS voice can change (a warning says so when it is set)."""

    name = "openjtalk"

    def __init__(self, settings: VoiceSettings) -> None:
        self.settings = settings
        self._lib: Any = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aituber-openjtalk")
        if settings.intonation != 1.0:
            log.warning("voice: openjtalk cannot change the intonation; [voice] intonation is ignored")

    @property
    def label(self) -> str:
        return "OpenJTalk (pyopenjtalk-plus, built in, offline)"

    async def start(self) -> None:
        if self._lib is not None:
            return
        loop = asyncio.get_running_loop()
        try:
            self._lib = await loop.run_in_executor(self._executor, self._load)
        except ImportError as exc:
            raise VoiceError(f"pyopenjtalk-plus is not installed ({exc}); reinstall aituber") from exc

    def _load(self) -> Any:
        lib = _import_pyopenjtalk()
        started = time.perf_counter()
        lib.tts("あ")  # loads the dictionary and the voice now, not at the first reply
        log.debug("openjtalk ready in %.2f s", time.perf_counter() - started)
        return lib

    async def synthesize(self, text: str) -> Audio:
        if self._lib is None:
            raise VoiceUnavailable("openjtalk is not started")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.synthesize_blocking, text)

    def synthesize_blocking(self, text: str) -> Audio:
        """Synthesise in the calling thread (the worker, or `aituber say`)."""
        lib = self._lib if self._lib is not None else self._load()
        self._lib = lib
        s = self.settings
        try:
            samples, rate = lib.tts(text, speed=s.speed, half_tone=s.pitch / SEMITONE)
        except Exception as exc:  # the library raises plain RuntimeErrors
            raise VoiceError(f"openjtalk could not read {text[:40]!r}: {exc}") from exc
        pcm = float_to_int16(samples, s.volume)
        pre = np.zeros(int((s.pre_silence_s or 0.0) * rate), dtype=np.int16)
        post = np.zeros(int((s.post_silence_s or 0.0) * rate), dtype=np.int16)
        pcm = np.concatenate([pre, pcm, post])
        return Audio(encode_wav(pcm, rate), rate, len(pcm) / rate)

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def create_engine(settings: VoiceSettings) -> OpenJTalkVoice:
    return OpenJTalkVoice(settings)

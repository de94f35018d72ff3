"""The voice output: the character speaks its replies, clause by clause, as they are generated.

It takes the pipeline's reply events, which have already passed the output guard (a masked NG word
reaches it as "＊＊", read as a pause; a withdrawn reply arrives as `ReplyCancelled` and is stopped),
cuts the text into clauses (aituber.voice.clauses), turns each into a reading
(aituber.voice.reading) and has the engine synthesise it. Three tasks: synthesis (in order, one
clause ahead of playback, each within `timeout_s`), playback (the clock: a clause plays for its
duration, then the next), and a retry loop that brings the engine back after a failure.

Playing a clause is emitting `SpeechStarted` (with the WAV) through the pipeline: the overlay sends the
audio to the pages that asked for it and the subtitle to all, MQTT announces it, the transcript
records it (`SpeechEnded`); an `--audio-device` also plays it here. `holds_replies`: the pipeline
presents the next reply once `drained()` says the speech has ended, so replies never talk over each
other. A clause that cannot be spoken (engine down, too slow, nothing to read) is still "played"
without sound, so the subtitles stay whole and the stream goes on.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from aituber.core.events import (
    Event,
    ReplyCancelled,
    ReplyDelta,
    ReplyEnded,
    ReplyStarted,
    RunEnded,
    SpeechEnded,
    SpeechStarted,
    VoiceStatus,
)
from aituber.errors import ConfigError
from aituber.outputs.base import OutputBase, OutputContext
from aituber.voice.base import Audio, VoiceEngine, VoiceError, VoiceUnavailable
from aituber.voice.clauses import ClauseSplitter
from aituber.voice.device import AudioDevice
from aituber.voice.reading import ReadingRules, to_reading

log = logging.getLogger(__name__)

WITHDRAWN = ("cancelled", "filtered")
DEFAULT_RULES = ReadingRules()


@dataclass(slots=True)
class _Clause:
    reply_id: str
    index: int
    text: str
    reading: str
    clause_at: float
    audio: Audio | None = None
    synthesis_s: float | None = None
    silent_reason: str = ""


class VoiceOutput(OutputBase):
    """Speaks replies with `engine`; `emit` sends its events to every output (the pipeline's emit).

    `new_splitter`: a fresh ClauseSplitter for each reply (where clauses are cut). `timeout_s`: a
    clause whose synthesis takes longer is shown unspoken. `start_timeout_s`: the longest the engine
    may take to get ready at start. `retry_min_s`/`retry_max_s`: the engine is retried this often
    (doubling) while it is down. `device`: also play on a local audio device.
    """

    name = "voice"
    holds_replies = True

    def __init__(self, engine: VoiceEngine, emit: Callable[[Event], None], *,
                 rules: ReadingRules = DEFAULT_RULES, new_splitter: Callable[[], ClauseSplitter] = ClauseSplitter,
                 timeout_s: float = 5.0, start_timeout_s: float = 60.0, retry_min_s: float = 1.0,
                 retry_max_s: float = 15.0, device: AudioDevice | None = None, queue_size: int = 512,
                 announce: Callable[[str], None] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self._emit_to = emit
        self.rules = rules
        self._new_splitter = new_splitter
        self.timeout_s = timeout_s
        self.start_timeout_s = start_timeout_s
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self.device = device
        self._announce = announce
        self._clock = clock
        self.available = False
        self._detail = ""
        self._broken = False
        """The engine failed in a way retrying cannot fix (a missing library): text only for this run."""
        self._clauses: asyncio.Queue[_Clause] = asyncio.Queue(maxsize=queue_size)
        self._ready: asyncio.Queue[_Clause] = asyncio.Queue(maxsize=1)
        """Synthesised, waiting to play: one clause ahead of the one playing."""
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._down = asyncio.Event()
        self._stop_playing = asyncio.Event()
        self._playing: str | None = None
        self._synthesising: tuple[str, asyncio.Future[Audio]] | None = None
        self._cancelled: collections.deque[str] = collections.deque(maxlen=32)
        self._reply: str | None = None
        self._splitter = new_splitter()
        self._shown: list[str] = []
        self._index = 0
        self._quiet = False
        """After the run's end: emit nothing more."""
        self._tasks: list[asyncio.Task[None]] = []
        self._warned: set[str] = set()
        self.spoken = 0
        """Clauses played with audio, since start."""
        self.silent = 0
        """Clauses shown without audio, since start."""

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.device is not None:
            await asyncio.to_thread(self.device.open)  # a missing device is the user's mistake: ConfigError
        try:
            async with asyncio.timeout(self.start_timeout_s):
                await self.engine.start()
        except ConfigError:
            await self.engine.close()
            raise
        except (VoiceError, TimeoutError) as exc:
            reason = str(exc) or f"not ready within {self.start_timeout_s:g} s"
            self._detail = reason
            self._broken = not isinstance(exc, (VoiceUnavailable, TimeoutError))
            log.warning("voice: %s: %s; the character goes on text-only%s", self.engine.label, reason,
                        "" if self._broken else " and the voice is retried in the background")
            self._down.set()
            return
        self.available = True
        if self._announce is not None:
            self._announce(f"voice: {self.engine.label}")

    async def run(self) -> None:
        self._emit(VoiceStatus(self.engine.name, self.available, self._detail))
        self._tasks = [asyncio.create_task(self._synthesise_loop(), name="voice-synthesise"),
                       asyncio.create_task(self._play_loop(), name="voice-play"),
                       asyncio.create_task(self._keep_available(), name="voice-retry")]
        try:
            await asyncio.gather(*self._tasks)
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                raise
        finally:
            for task in self._tasks:
                task.cancel()

    async def drained(self) -> None:
        await self._idle.wait()

    async def close(self) -> None:
        """Finish speaking what is queued (the caller bounds this), then stop."""
        try:
            if not self._quiet and self._tasks:
                await self._idle.wait()
        finally:
            self._quiet = True
            self._halt()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.engine.close()

    # -- events in -------------------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        match event:
            case ReplyStarted(reply_id=reply_id):
                self._open(reply_id)
            case ReplyDelta(reply_id=reply_id, text=text):
                if reply_id in self._cancelled:
                    return
                if reply_id != self._reply:
                    self._open(reply_id)
                self._shown.append(text)
                for clause in self._splitter.feed(text):
                    self._enqueue(reply_id, clause)
            case ReplyEnded(reply_id=reply_id) if reply_id == self._reply:
                rest = self._splitter.flush()
                # A reply cut at its last sentence (length limit) does not say the part cut off.
                if event.stop_reason not in WITHDRAWN and event.text == "".join(self._shown):
                    for clause in rest:
                        self._enqueue(reply_id, clause)
                self._reply = None
            case ReplyCancelled(reply_id=reply_id):
                self.cancel(reply_id)
            case RunEnded(interrupted=True):
                self._quiet = True
                self._halt()

    def _open(self, reply_id: str) -> None:
        self._reply = reply_id
        self._splitter = self._new_splitter()
        self._shown = []
        self._index = 0

    def _enqueue(self, reply_id: str, text: str) -> None:
        clause = _Clause(reply_id, self._index, text, to_reading(text, self.rules), self._clock())
        self._index += 1
        try:
            self._clauses.put_nowait(clause)
        except asyncio.QueueFull:
            log.warning("voice: %d clauses waiting; %r is not spoken", self._clauses.maxsize, text[:30])
            return
        self._pending += 1
        self._idle.clear()

    def cancel(self, reply_id: str) -> None:
        """Stop speaking a reply: what plays stops, what waits is dropped, what synthesises is abandoned."""
        if reply_id not in self._cancelled:
            self._cancelled.append(reply_id)
        if self._reply == reply_id:
            self._reply = None
        if self._synthesising is not None and self._synthesising[0] == reply_id:
            self._synthesising[1].cancel()
        if self._playing == reply_id:
            self._stop_playing.set()

    def _halt(self) -> None:
        """Stop everything now (the run is over)."""
        for reply_id in {self._reply, self._playing, *(s[0] for s in [self._synthesising] if s)} - {None}:
            self.cancel(reply_id)  # type: ignore[arg-type]
        self._stop_playing.set()

    def _done(self) -> None:
        self._pending -= 1
        if self._pending <= 0:
            self._pending = 0
            self._idle.set()

    def _emit(self, event: Event) -> None:
        if self._quiet:
            return
        try:
            self._emit_to(event)
        except Exception:
            log.exception("voice: emitting %s failed", type(event).__name__)

    # -- synthesis -------------------------------------------------------------------------------

    async def _synthesise_loop(self) -> None:
        while True:
            clause = await self._clauses.get()
            if clause.reply_id in self._cancelled:
                self._done()
                continue
            await self._synthesise(clause)
            if clause.reply_id in self._cancelled:
                self._done()
                continue
            await self._ready.put(clause)

    async def _synthesise(self, clause: _Clause) -> None:
        if not clause.reading:
            clause.silent_reason = "empty"
            return
        if not self.available:
            clause.silent_reason = "unavailable"
            return
        started = time.perf_counter()
        job = asyncio.ensure_future(self.engine.synthesize(clause.reading))
        self._synthesising = (clause.reply_id, job)
        try:
            done, _ = await asyncio.wait((job,), timeout=self.timeout_s)
        finally:
            self._synthesising = None
            if not job.done():
                job.cancel()
        if not done:
            clause.silent_reason = "timeout"
            self._warn("timeout", "voice: a clause took over %g s to synthesise; shown without voice (%r)",
                       self.timeout_s, clause.text[:30])
            return
        if job.cancelled():
            clause.silent_reason = "stopped"
            return
        exc = job.exception()
        if exc is None:
            clause.audio = job.result()
            clause.synthesis_s = time.perf_counter() - started
            self._warned.discard("error")
            self._warned.discard("timeout")
            return
        if isinstance(exc, VoiceUnavailable):
            clause.silent_reason = "unavailable"
            self._set_available(False, str(exc))
        elif isinstance(exc, VoiceError):
            clause.silent_reason = "error"
            self._warn("error", "voice: %s; this clause is shown without voice", exc)
        else:
            clause.silent_reason = "error"
            log.error("voice: synthesis failed on %r", clause.text[:30], exc_info=exc)

    def _warn(self, kind: str, message: str, *args: object) -> None:
        """The first of a run of failures is a warning, the rest are debug lines until one succeeds."""
        if kind in self._warned:
            log.debug(message, *args)
        else:
            self._warned.add(kind)
            log.warning(message, *args)

    # -- playback --------------------------------------------------------------------------------

    async def _play_loop(self) -> None:
        while True:
            clause = await self._ready.get()
            try:
                if clause.reply_id not in self._cancelled:
                    await self._play(clause)
            finally:
                self._done()

    async def _play(self, clause: _Clause) -> None:
        audio = clause.audio
        duration = audio.duration_s if audio is not None else 0.0
        started = self._clock()
        self._playing = clause.reply_id
        self._stop_playing.clear()
        self._emit(SpeechStarted(clause.reply_id, clause.index, clause.text, duration, started, clause.clause_at,
                                 clause.synthesis_s, audio.wav if audio is not None else None, clause.silent_reason))
        if audio is not None:
            self.spoken += 1
            if self.device is not None:
                self._in_thread(self.device.play, audio.wav)
        else:
            self.silent += 1
        stopped = False
        try:
            if duration > 0:
                try:
                    async with asyncio.timeout(duration):
                        await self._stop_playing.wait()
                    stopped = True
                except TimeoutError:
                    pass
        finally:
            self._playing = None
            if stopped and self.device is not None:
                self._in_thread(self.device.stop)
        self._emit(SpeechEnded(clause.reply_id, clause.index, clause.text, clause.clause_at, clause.synthesis_s,
                               started, self._clock(), duration, audio is not None, stopped, clause.silent_reason))

    @staticmethod
    def _in_thread(function: Callable[..., None], *args: object) -> None:
        def report(future: asyncio.Future[None]) -> None:
            if not future.cancelled() and future.exception() is not None:
                log.warning("voice: the audio device failed: %s", future.exception())

        asyncio.get_running_loop().run_in_executor(None, function, *args).add_done_callback(report)

    # -- availability ----------------------------------------------------------------------------

    def _set_available(self, available: bool, detail: str = "") -> None:
        if available == self.available:
            return
        self.available = available
        self._detail = detail
        if available:
            log.info("voice: %s is back; speaking again", self.engine.label)
            self._down.clear()
        else:
            log.warning("voice: %s went away (%s); the text goes on, the voice comes back when it does",
                        self.engine.label, detail)
            self._down.set()
        self._emit(VoiceStatus(self.engine.name, available, detail))

    async def _keep_available(self) -> None:
        delay = self._retry_min_s
        while not self._broken:
            if self.available:
                await self._down.wait()
                delay = self._retry_min_s
                continue
            await asyncio.sleep(delay)
            try:
                async with asyncio.timeout(max(self.start_timeout_s, self._retry_max_s)):
                    await self.engine.start()
            except (VoiceError, ConfigError, TimeoutError) as exc:
                if isinstance(exc, ConfigError):
                    self._warn("config", "voice: %s", exc)
                else:
                    log.debug("voice: still not available: %s", exc)
                delay = min(delay * 2, self._retry_max_s)
                continue
            self._set_available(True)


def create_output(context: OutputContext) -> VoiceOutput | None:
    from aituber.config import clause_splitter, reading_rules, voice_settings
    from aituber.voice.registry import NO_VOICE, create_voice

    run = context.settings.voice
    character = context.character
    engine_name = run.engine or character.voice.engine
    if engine_name == NO_VOICE:
        return None
    settings = voice_settings(character, engine=engine_name, url=run.url)
    engine = create_voice(settings)
    device = AudioDevice(run.audio_device) if run.audio_device else None
    return VoiceOutput(engine, context.events, rules=reading_rules(character),
                       new_splitter=lambda: clause_splitter(character), timeout_s=settings.timeout_s,
                       device=device, announce=context.announce)

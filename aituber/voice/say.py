"""`aituber say`: a text in the character's voice, clause by clause as the bot speaks, into a WAV."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aituber.config import clause_splitter, load_character, reading_rules, voice_settings
from aituber.errors import AituberError
from aituber.voice.base import Audio, VoiceError, VoiceUnavailable
from aituber.voice.reading import to_reading
from aituber.voice.registry import NO_VOICE, create_voice
from aituber.voice.wav import concat_wavs

GAP_S = 0.05
"""Silence between clauses in the WAV (the bot's pages play them back to back)."""


async def _synthesise(settings, readings: list[str]) -> tuple[str, list[tuple[Audio, float]]]:
    engine = create_voice(settings)
    try:
        try:
            await engine.start()
        except VoiceUnavailable as exc:
            raise AituberError(f"voice: {exc}; is the engine running? (--voice-url or [voice] url)") from exc
        results = []
        for reading in readings:
            started = time.perf_counter()
            audio = await engine.synthesize(reading)
            results.append((audio, time.perf_counter() - started))
        return engine.label, results
    except VoiceError as exc:
        raise AituberError(f"voice: {exc}") from exc
    finally:
        await engine.close()


def say(text: str, character_dir: Path, out: Path, *, engine: str | None = None, url: str | None = None,
        device: str | None = None) -> None:
    folder = load_character(character_dir)
    character = folder.character
    name = engine or character.voice.engine
    if name == NO_VOICE:
        raise AituberError(f"{folder.path / 'character.toml'}: [voice] engine is \"none\"; "
                           "try another voice with --voice openjtalk")
    settings = voice_settings(character, engine=name, url=url)
    splitter = clause_splitter(character)
    rules = reading_rules(character)
    clauses = [(c, to_reading(c, rules)) for c in [*splitter.feed(text), *splitter.flush()]]
    spoken = [(c, r) for c, r in clauses if r]
    if not spoken:
        raise AituberError(f"nothing to say in {text!r} once it is read aloud (only symbols, emoji or URLs?)")
    player = None
    if device is not None:  # a missing device is an error before any synthesis
        from aituber.voice.device import AudioDevice

        player = AudioDevice(device)
        player.open()
    label, results = asyncio.run(_synthesise(settings, [r for _, r in spoken]))
    wav = concat_wavs([audio.wav for audio, _ in results], gap_s=GAP_S)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(wav)
    print(f"voice: {label}")
    for (clause, reading), (audio, seconds) in zip(spoken, results, strict=True):
        print(f"  {clause.strip()}  ->  {reading}  ({audio.duration_s:.2f} s, synthesised in {seconds * 1000:.0f} ms)")
    total = sum(a.duration_s for a, _ in results)
    work = sum(s for _, s in results)
    print(f"wrote {out} ({total:.2f} s of speech, synthesis real-time factor {work / total:.2f})")
    if player is not None:
        player.play(wav)
        player.wait()

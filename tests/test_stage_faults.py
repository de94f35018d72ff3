"""Fault injection, stage by stage: a stage that fails on one comment costs that comment (skipped with
the reason), never the stream. A scripted engine, no model; the transcript is the real writer."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from pathlib import Path

import pytest

from aituber.app import Pipeline, run_pipeline
from aituber.core.comment import Comment
from aituber.core.events import CommentSeen, CommentSkipped, ReplyEnded
from aituber.errors import GenerationError
from aituber.outputs.base import OutputBase
from aituber.outputs.transcript import TranscriptWriter, event_to_record
from tests.scripted_engine import ScriptedEngine
from tests.test_pipeline_behaviour import Collect, QueueSource, Speaker, comment


@pytest.fixture
def character(sample_character):
    from aituber.config import load_character

    return load_character(sample_character).character


def skipped(out: Collect) -> dict[str, str]:
    return {e.comment.id: e.reason for e in out.of(CommentSkipped)}


def answered(out: Collect) -> set[str]:
    return {e.comment_id for e in out.of(ReplyEnded) if e.stop_reason == "stop"}


class FailsOn(ScriptedEngine):
    """Fails (as a real engine can: out of memory, a CUDA error) on prompts holding `marker`."""

    def __init__(self, marker: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.marker = marker

    async def stream(self, prompt, options):
        async for chunk in super().stream(prompt, options):
            if self.marker in prompt.dynamic:
                raise GenerationError("CUDA error: out of memory")
            yield chunk


async def test_an_engine_failure_skips_that_comment_with_engine_error(character):
    engine = FailsOn("ふたつめ")
    source, out = QueueSource(comment(1), comment(2, "ふたつめ"), comment(3, "みっつめ"), None), Collect()
    stats = await Pipeline(character=character, engine=engine, source=source, outputs=[out]).run()
    assert skipped(out) == {"c2": "engine_error"} and stats.skipped["engine_error"] == 1
    assert answered(out) == {"c1", "c3"}


class FragileTokens(ScriptedEngine):
    """A tokenizer that fails on some text, as a real one does on a lone surrogate (TypeError)."""

    def count_tokens(self, text: str) -> int:
        if "☠" in text:
            raise TypeError("TextInputSequence must be str")
        return len(text)


async def test_a_prompt_that_cannot_be_built_skips_that_comment_and_the_memory_is_let_go(character):
    # The first comment is answered and remembered; the tokenizer fails on it when the next prompt
    # counts the memory: that must neither end the session nor cost every later comment.
    engine = FragileTokens()
    source, out = QueueSource(comment(1, "☠ こんにちは")), Collect()
    pipeline = Pipeline(character=character, engine=engine, source=source, outputs=[out])
    run = asyncio.create_task(pipeline.run())
    await out.wait_for(lambda: answered(out) == {"c1"})
    source.put(comment(2, "ふたつめ"))
    await out.wait_for(lambda: answered(out) == {"c1", "c2"})
    source.put(comment(3, "みっつめ"))
    source.close()
    await asyncio.wait_for(run, 10)
    assert answered(out) == {"c1", "c2", "c3"} and not skipped(out)
    assert "☠" not in engine.prompts[1].dynamic  # asked without the memory it could not count
    assert "ふたつめ" in engine.prompts[2].dynamic  # and the memory works again from there


async def test_a_prompt_that_cannot_be_built_at_all_skips_only_that_comment(character, monkeypatch):
    engine = ScriptedEngine()
    source, out = QueueSource(comment(1), comment(2, "だめなコメント"), comment(3, "みっつめ"), None), Collect()
    pipeline = Pipeline(character=character, engine=engine, source=source, outputs=[out])
    build = pipeline.conversation.builder.build

    def failing_build(text, *args, **kwargs):
        if "だめ" in text:
            raise TypeError("TextInputSequence must be str")
        return build(text, *args, **kwargs)

    monkeypatch.setattr(pipeline.conversation.builder, "build", failing_build)
    stats = await pipeline.run()
    assert skipped(out) == {"c2": "engine_error"}
    assert answered(out) == {"c1", "c3"} and stats.skipped["engine_error"] == 1


async def test_moderation_failing_on_a_comment_skips_it_with_moderation_error(character, monkeypatch):
    source, out = QueueSource(comment(1), comment(2, "変なコメント"), comment(3), None), Collect()
    pipeline = Pipeline(character=character, engine=ScriptedEngine(), source=source, outputs=[out])
    check = pipeline.moderator.check

    def failing_check(item, now):
        if item.id == "c2":
            raise RecursionError("maximum recursion depth exceeded")
        return check(item, now)

    monkeypatch.setattr(pipeline.moderator, "check", failing_check)
    await pipeline.run()
    assert skipped(out) == {"c2": "moderation_error"}
    assert [e.comment.id for e in out.of(CommentSeen)] == ["c1", "c2", "c3"]  # still seen (and transcribed)
    assert answered(out) == {"c1", "c3"}


async def test_an_output_failing_on_every_event_is_logged_once_and_counted(character, caplog):
    class Broken(OutputBase):
        name = "broken"

        def publish(self, event) -> None:
            raise OSError("the device went away")

    out = Collect()
    pipeline = Pipeline(character=character, engine=ScriptedEngine(),
                        source=QueueSource(comment(1), comment(2, "ふたつめ"), None), outputs=[Broken(), out])
    with caplog.at_level(logging.ERROR, logger="aituber.app"):
        await pipeline.run()
    assert answered(out) == {"c1", "c2"}
    assert pipeline.output_failures["broken"] == len(out.events)
    assert sum("output broken failed" in r.getMessage() for r in caplog.records) == 1


async def test_an_output_failing_only_on_one_comment_costs_that_output_only(character):
    class Picky(Collect):
        name = "picky"

        def publish(self, event) -> None:
            if isinstance(event, CommentSeen) and event.comment.id == "c2":
                raise UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates not allowed")
            super().publish(event)

    picky, out = Picky(), Collect()
    await Pipeline(character=character, engine=ScriptedEngine(), source=QueueSource(comment(1), comment(2), None),
                   outputs=[picky, out]).run()
    assert answered(out) == answered(picky) == {"c1", "c2"}
    assert len(out.of(CommentSeen)) == 2 and len(picky.of(CommentSeen)) == 1


async def test_an_output_whose_presentation_fails_is_no_longer_waited_for(character):
    class BrokenSpeaker(Speaker):
        name = "broken-speaker"

        async def drained(self) -> None:
            raise RuntimeError("the audio device is gone")

    speaker, out = BrokenSpeaker(), Collect()
    source = QueueSource(comment(1), comment(2, "ふたつめ"), comment(3, "みっつめ"), None)
    pipeline = Pipeline(character=character, engine=ScriptedEngine(), source=source, outputs=[speaker, out])
    await asyncio.wait_for(pipeline.run(), 20)
    assert answered(out) == {"c1", "c2", "c3"}
    assert speaker not in pipeline._holding


# -- the transcript ------------------------------------------------------------------------------------------


class FlakyFile(io.TextIOWrapper):
    """A real file whose writes fail with ENOSPC: the write of c2's comment line and the `failures`
    writes after it (the disk filled up, then was freed)."""

    failures = 0

    def write(self, text: str) -> int:
        if '"id": "c2"' in text and '"type": "comment"' in text:
            FlakyFile.failures = 5
        if FlakyFile.failures:
            FlakyFile.failures -= 1
            raise OSError(28, "No space left on device")
        return super().write(text)


class FlakyTranscript(TranscriptWriter):
    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = FlakyFile(self.path.open("ab", buffering=0), encoding="utf-8", line_buffering=True)


async def test_a_transcript_write_failure_loses_lines_it_says_so_and_the_stream_goes_on(character, tmp_path):
    path = tmp_path / "t.jsonl"
    transcript, out = FlakyTranscript(path), Collect()
    source = QueueSource(*(comment(i, f"コメント{i}") for i in range(1, 6)), None)
    stats = await run_pipeline(character, source, ScriptedEngine(), [out, transcript])
    assert stats.seen == 5 and len(answered(out)) == 5  # nobody saw the disk fill up
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    gaps = [r for r in records if r["type"] == "gap"]
    assert transcript.lost_lines == 5 and [g["lost"] for g in gaps] == [5]
    assert records[0]["type"] == "run_start" and records[-1]["type"] == "run_end"
    assert "c2" not in {r.get("id") for r in records}
    # What was written plus what it says it lost is everything the run produced.
    produced = sum(1 for e in out.events if event_to_record(e) is not None)
    assert len(records) - len(gaps) + transcript.lost_lines == produced


async def test_a_transcript_on_a_full_disk_never_stops_the_stream(character):
    path = Path("/dev/full")
    if not path.exists():
        pytest.skip("needs /dev/full")
    transcript, out = TranscriptWriter(path), Collect()
    stats = await run_pipeline(character, QueueSource(comment(1), comment(2, "ふたつめ"), None), ScriptedEngine(),
                               [out, transcript])
    assert stats.answered == 2
    assert transcript.lost_lines >= 2 + 2 + 2 + 2  # run start/end, two comments, two selections, two replies


async def test_the_transcript_records_a_comment_with_a_lone_surrogate(character, tmp_path):
    """A comment made elsewhere than a source (a test, a plugin) may still hold one: the line is kept."""
    bad = Comment(id="s1", author=comment(1).author, text="こんにちは\ud800")
    path = tmp_path / "t.jsonl"
    await run_pipeline(character, QueueSource(bad, None), ScriptedEngine(), [TranscriptWriter(path)])
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in lines if r["type"] == "comment"] == ["s1"]

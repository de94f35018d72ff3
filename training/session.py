"""Session evaluation: a chat log through the real pipeline, and what a viewer notices over a stream.

`run_session` replays a log (`ReplayChatSource(fast=True)`) through `aituber.app.Pipeline` with
the character's moderation, selection queue, memory, output filter and generation options, on an
engine from the registry, and collects every reply. The log is paced by the pipeline: the next
comment is let in once the last one has been dealt with (answered, thanked or skipped), so each
comment is answered as in a stream the bot keeps up with, and the run takes as long as the replies
do, not as long as the log. The pipeline's clock is the log's (`LogClock`: a comment arrives at its
offset; time runs on while a reply is generated), so the per-viewer limits, duplicate windows and
stale comments fall as they would have in the stream, however fast or slow the machine is. The pipeline's own stop strings apply (this is what viewers see).
This is the one training module that runs the bot's pipeline (`aituber.app`, the replay source): it
imports them inside the functions that run a session, so importing the evaluation loads none of it.

The session measures, over the model's replies (answers and idle talk; fixed thanks and `!say` texts
are left out), all pure functions of the replies:

- echo rate (`echo_flags`): the share of replies that share a run of `ECHO_RUN` (6) or more characters
  with one of the `ECHO_WINDOW` (5) replies before them, not counting text taken from the comment
  being answered or the viewer's name (runs of 3 or more characters found there are cut out first);
- the most common opening (`top_opening`): the share of replies that begin with the session's most
  frequent first 3 characters;
- distinct-2 (`distinct_n`): distinct character bigrams / all bigrams over the whole session
  (whitespace removed, bigrams within a reply);
- on-topic rate (`on_topic_rate`): for answered comments that match a line of the character's
  `dataset/eval.jsonl` with an `expect` list (matched by `comment_key`: NFKC, lower case, no
  whitespace), the share of replies containing one of the keywords (NFKC, lower case).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import unicodedata
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aituber.config import Character
from aituber.core.comment import Comment, SourceItem
from aituber.core.conversation import occurrence_mask, shared_mask
from aituber.core.events import CommentSkipped, Event, ReplyEnded
from aituber.core.prompt import Prompt
from aituber.engine.base import Engine, EngineInfo, EngineSettings, GenerationOptions, ReplyChunk

from training.dataset import DatasetError, json_lines

log = logging.getLogger(__name__)

ECHO_RUN = 6
ECHO_WINDOW = 5
TAKEN_RUN = 3
"""A run of this many characters that a reply shares with its comment or viewer name is "taken" from it."""
OPENING_CHARS = 3
PACE_TIMEOUT_S = 120.0
"""The longest the paced log waits for the pipeline to deal with one comment before it goes on."""

Progress = Callable[[str], None]


# --- the measures (pure) --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionReply:
    """One reply of the model in a session."""

    comment_id: str
    """The comment answered ("" for idle talk)."""
    comment: str
    """Its text as the viewer wrote it ("" for idle talk)."""
    viewer: str | None
    text: str
    """What was shown (after the output filter and the bot's stop strings)."""
    raw: str
    """What the model said (before the output filter)."""
    stop: str
    first_text_s: float | None
    total_s: float
    tokens: int
    avoid: tuple[str, ...] = ()
    """What the engine was asked to keep out of this reply."""


def _kept(text: str, taken_from: Sequence[str], names: Sequence[str] = (), taken_run: int = TAKEN_RUN) -> str:
    """`text` with the runs it shares with `taken_from` and the occurrences of `names` replaced by NUL
    (which matches nothing)."""
    mask = [a or b for a, b in zip(shared_mask(text, taken_from, taken_run), occurrence_mask(text, names),
                                   strict=True)]
    return "".join("\0" if m else ch for ch, m in zip(text, mask, strict=True))


def echoes(text: str, previous: Sequence[str], taken_from: Sequence[str] = (), run: int = ECHO_RUN,
           names: Sequence[str] = ()) -> bool:
    """Whether `text` shares a run of `run` characters with one of `previous`, not counting what it
    took from `taken_from` (the comment it answers, the viewer's name: runs of 3 characters or more)
    or an occurrence of one of `names` (the viewer's name, however short)."""
    kept = _kept(text, [t for t in taken_from if t], [n for n in names if n])
    grams = {kept[i:i + run] for i in range(len(kept) - run + 1)}
    grams = {g for g in grams if "\0" not in g}
    return any(g in p for p in previous for g in grams)


def _taken_from(reply: SessionReply) -> list[str]:
    sources = [reply.comment, unicodedata.normalize("NFKC", reply.comment), reply.viewer or ""]
    return [s.strip() for s in sources if s and s.strip()]


def echo_flags(replies: Sequence[SessionReply], window: int = ECHO_WINDOW, run: int = ECHO_RUN) -> list[bool]:
    """For each reply: whether it echoes one of the `window` replies before it."""
    texts = [r.text for r in replies]
    return [echoes(r.text, texts[max(0, i - window):i], _taken_from(r), run, [r.viewer or ""])
            for i, r in enumerate(replies)]


def echo_rate(replies: Sequence[SessionReply], window: int = ECHO_WINDOW, run: int = ECHO_RUN) -> float | None:
    flags = echo_flags(replies, window, run)
    return sum(flags) / len(flags) if flags else None


def top_opening(texts: Sequence[str], chars: int = OPENING_CHARS) -> tuple[str, float] | None:
    """(the most common opening, the share of replies that begin with it); None without replies."""
    openings = [t.strip()[:chars] for t in texts]
    if not openings:
        return None
    opening, count = Counter(openings).most_common(1)[0]
    return opening, count / len(openings)


def distinct_n(texts: Sequence[str], n: int = 2) -> float | None:
    """Distinct character n-grams / all n-grams over all texts (whitespace removed; None if none)."""
    grams: list[str] = []
    for text in texts:
        squashed = "".join(text.split())
        grams += [squashed[i:i + n] for i in range(len(squashed) - n + 1)]
    return len(set(grams)) / len(grams) if grams else None


def comment_key(text: str) -> str:
    """How comments are matched to eval lines: NFKC, lower case, whitespace removed."""
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def on_topic(text: str, expect: Sequence[str]) -> bool:
    """Whether the reply contains one of the expected keywords (NFKC, lower case)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return any(unicodedata.normalize("NFKC", k).casefold() in folded for k in expect if k)


def on_topic_rate(replies: Sequence[SessionReply], expectations: Mapping[str, Sequence[str]]) -> tuple[float | None, int]:
    """(share of the replies to comments with an `expect` list that contain a keyword, how many such)."""
    judged = [on_topic(r.text, expectations[key]) for r in replies
              if r.comment and (key := comment_key(r.comment)) in expectations]
    return (sum(judged) / len(judged) if judged else None), len(judged)


def load_expectations(path: Path) -> dict[str, tuple[str, ...]]:
    """{comment_key(instruction): expect keywords} for the eval lines that carry an `expect` list.
    A bad line is an error naming it."""
    out: dict[str, tuple[str, ...]] = {}
    problems: list[str] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError([f"{path}: unreadable: {exc}"]) from exc
    for _, where, value in json_lines(path, lines, problems):
        expect = value.get("expect") if isinstance(value, dict) else None
        if expect is None:
            continue
        if not isinstance(expect, list) or not all(isinstance(k, str) and k.strip() for k in expect) or not expect:
            problems.append(f"{where}: 'expect' must be a non-empty list of non-empty strings")
            continue
        out[comment_key(str(value.get("instruction", "")))] = tuple(expect)
    if problems:
        raise DatasetError(problems)
    return out


# --- running a session ----------------------------------------------------------------------------


class _RecordingEngine:
    """The real engine, with each reply's raw text and options kept (in order: one reply at a time)."""

    def __init__(self, engine: Engine) -> None:
        self.inner = engine
        self.calls: list[tuple[Prompt | str, GenerationOptions, str]] = []

    @property
    def info(self) -> EngineInfo:
        return self.inner.info

    async def start(self) -> None:
        await self.inner.start()

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    async def stream(self, prompt: Prompt, options: GenerationOptions) -> AsyncIterator[ReplyChunk]:
        parts: list[str] = []
        try:
            async with contextlib.aclosing(self.inner.stream(prompt, options)) as chunks:
                async for chunk in chunks:
                    parts.append(chunk.text)
                    yield chunk
        finally:
            self.calls.append((prompt, options, "".join(parts)))

    async def close(self) -> None:
        await self.inner.close()


class _Collector:
    """An output (`aituber.outputs.base.Output`) that keeps the events, and tells the paced log when a
    comment has been dealt with."""

    name = "session-eval"
    holds_replies = False

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.settled: set[str] = set()
        self._changed = asyncio.Event()

    def publish(self, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, CommentSkipped):
            self.settled.add(event.comment.id)
        elif isinstance(event, ReplyEnded):
            ids = event.comment_id.removeprefix("thanks:").split(",")
            self.settled.update(ids)
        self._changed.set()

    async def start(self) -> None:
        return None

    async def run(self) -> None:
        return None

    async def drained(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def wait_settled(self, comment_id: str, timeout_s: float) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                while comment_id not in self.settled:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            return False
        return True


class LogClock:
    """The session's wall clock (unix seconds) on the log's time: `advance_to(offset)` when a comment
    arrives; in between, time runs on in real time. Never goes back."""

    def __init__(self, start: float | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._base = time.time() if start is None else start
        self._offset = 0.0
        self._mark = monotonic()

    def __call__(self) -> float:
        return self._base + self._offset + (self._monotonic() - self._mark)

    def advance_to(self, offset_s: float) -> None:
        now = self()
        self._offset = max(offset_s, now - self._base)
        self._mark = self._monotonic()


class _PacedLog:
    """A chat log's items, each comment let in once the pipeline has dealt with the one before, at
    its offset on the log's clock."""

    def __init__(self, path: Path, collector: _Collector, clock: LogClock, timeout_s: float = PACE_TIMEOUT_S,
                 progress: Callable[[int], None] | None = None) -> None:
        from aituber.sources.replay import ReplayChatSource

        self._inner = ReplayChatSource(path, fast=True, clock=clock)
        self._clock = clock
        self.name = self._inner.name
        self._collector = collector
        self._timeout_s = timeout_s
        self._progress = progress
        self.comments: dict[str, Comment] = {}
        self.unsettled: list[str] = []

    @property
    def stats(self):  # aituber.sources.base.SourceStats
        return self._inner.stats

    async def items(self) -> AsyncIterator[SourceItem]:
        async for item in self._inner.items():
            if isinstance(item, Comment):
                if item.offset_s is not None:
                    self._clock.advance_to(item.offset_s)
                item = dataclasses.replace(item, timestamp=self._clock())  # it arrives now, on the log's clock
            yield item
            if isinstance(item, Comment):
                self.comments[item.id] = item
                if not await self._collector.wait_settled(item.id, self._timeout_s):
                    log.warning("%s: comment %s not dealt with after %g s; going on", self.name, item.id,
                                self._timeout_s)
                    self.unsettled.append(item.id)
                if self._progress is not None:
                    self._progress(len(self.comments))


@dataclass(slots=True)
class SessionRun:
    log: Path
    model_dir: Path
    label: str
    comments: int
    replies: list[SessionReply] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    thanks: int = 0
    device: str = ""
    compute_type: str = ""


def count_comments(path: Path) -> int:
    """Comments in a log (for progress): lines that are not blank."""
    try:
        return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    except (OSError, UnicodeDecodeError):
        return 0


def run_session(character: Character, log_path: str | Path, model_dir: str | Path, *, label: str = "",
                seed: int = 0, device: str = "auto", compute_type: str = "auto",
                progress: Progress | None = None) -> SessionRun:
    """Replay `log_path` through the pipeline on `model_dir` (see the module doc); every reply."""
    return asyncio.run(_run_session(character, Path(log_path), Path(model_dir), label, seed, device,
                                    compute_type, progress))


async def _run_session(character: Character, log_path: Path, model_dir: Path, label: str, seed: int,
                       device: str, compute_type: str, progress: Progress | None) -> SessionRun:
    from aituber.engine.registry import create_engine

    settings = EngineSettings(model=model_dir, device=device, compute_type=compute_type, seed=seed,
                              cache_prefix=character.prompt.static_prompt)
    engine = await asyncio.to_thread(create_engine, settings)
    try:
        await engine.start()
        return await session_on_engine(character, log_path, engine, label=label, model_dir=model_dir,
                                       progress=progress)
    finally:
        await engine.close()


async def session_on_engine(character: Character, log_path: str | Path, engine: Engine, *, label: str = "",
                            model_dir: str | Path = "", progress: Progress | None = None,
                            pace_timeout_s: float = PACE_TIMEOUT_S) -> SessionRun:
    """Replay `log_path` through the pipeline on a started `engine` (which the caller closes)."""
    from aituber.app import Pipeline

    log_path = Path(log_path)
    recording = _RecordingEngine(engine)
    total = count_comments(log_path)
    collector = _Collector()
    clock = LogClock()

    def step(done: int) -> None:
        if progress is not None and (done % 10 == 0 or done == total):
            progress(f"session {log_path.name} ({label or Path(model_dir).name}): {done}/{total} items")

    source = _PacedLog(log_path, collector, clock, pace_timeout_s, progress=step)
    stats = await Pipeline(character=character, engine=recording, source=source, outputs=[collector],
                           clock=clock).run()
    device_name, _, compute = engine.info.detail.partition(", ")
    run = SessionRun(log=log_path, model_dir=Path(model_dir), label=label, comments=len(source.comments),
                     skipped=dict(stats.skipped), device=device_name, compute_type=compute)
    calls = iter(recording.calls)
    for event in collector.events:
        if not isinstance(event, ReplyEnded):
            continue
        if event.comment_id.startswith("thanks:"):
            run.thanks += 1
        if event.comment_id.startswith(("thanks:", "say")):  # fixed texts, not the model's
            continue
        _, options, raw = next(calls, (None, None, event.text))
        comment = source.comments.get(event.comment_id)
        run.replies.append(SessionReply(
            comment_id=event.comment_id if comment is not None else "", comment=comment.text if comment else "",
            viewer=comment.author.name if comment else None, text=event.text, raw=raw, stop=event.stop_reason,
            first_text_s=event.first_token_s, total_s=event.total_s, tokens=event.tokens,
            avoid=options.avoid if options is not None else ()))
    return run

"""`aituber eval`: held-out comments through the real engine, scored, base and tuned side by side.

    aituber eval characters/NAME [--model DIR] [--baseline DIR] [--out report.md] [--limit N] [--seed N]
                                 [--session LOG ...] [--memory comments|replies] [--memory-turns N]
                                 [--avoid-recent N]

With `--session LOG` a chat log is replayed through the real pipeline instead (memory, moderation,
selection, the output filter: `training.session`), and the session is scored with the rows below
plus echo rate, the most common opening, distinct-2 and the on-topic rate (defined in
training/session.py). Without `--session`, the report holds the held-out comments and a session
over the character's `sample_chat.jsonl`. `--memory`, `--memory-turns` and `--avoid-recent` override
the character's `[prompt] memory`, `memory_turns` and `[generation] avoid_recent` for the evaluation
(to compare the mechanisms); progress goes to stderr.

Each comment of `characters/NAME/dataset/eval.jsonl` is asked as the bot asks it: the character's
prompt builder (persona, template; the viewer's name when the line's `input` gives one as
`視聴者名: NAME`; no memory, as for the first comment of a stream) and the character's generation
options (sampling, repetition controls, length limits), on the engine (`aituber.engine.base.Engine`,
built by the registry). Sampling is seeded once per model, when it loads (`--seed`): CTranslate2 seeds each
worker thread's sampler at its first use, so a whole run is reproducible (the same comments in the same
order), not each reply on its own. Replies are scored raw, before the pipeline's output filter,
so an NG word counted here is one the model said.

Stop strings: by default (`stops="model"`) the template's own stop strings (for `instruction`: `###` and
a blank line) are left out, and a reply ends where the model ends it (its end token) or at the length
limit. Those strings are the bot's safety net: they cut a model that runs on into the next
`### instruction:` turn before it is shown, which also hides exactly what this evaluation is meant to
find (template leaks and loops can then never be counted). `--bot-stops` (`stops="bot"`) applies them as
the bot does, to see the replies as a viewer would. The character's own `stop_strings` apply in both.

Both models are loaded side by side and asked in turn, comment by comment (the order alternating), so
that load on the machine falls on both alike and their latencies can be compared.

What each metric means:

- mostly Japanese: at least 50 % of the reply's letters (Unicode category L*) are kana or kanji
  (hiragana, katakana incl. half-width and `ー`, CJK ideographs, `々`); an empty reply is not.
- loop: some 4-gram of characters (whitespace removed) occurs 3 or more times (overlaps count), or a
  non-empty line is repeated.
- repeated 4-grams: per reply, 1 - distinct 4-grams / all 4-grams (0 = no 4-gram twice); the mean.
- template leak: the reply contains `###`, `instruction:`, `input:` or `output:` (any case).
- NG leak: `Moderator.ng_hits` on the raw reply finds an NG word (built-in list and the character's).
- persona marker: the reply contains the character's `first_person` or one of its `sentence_endings`.
- length: characters per reply, p50 / p95 (nearest rank); cut at length: replies that hit
  `max_new_tokens` or `max_chars`.
- latency: first text (generation start -> first decoded text) p50 / p95, full reply p50 / p95, and
  the time per token after the first text p50 (the decoding speed: (full - first) / (tokens - 1), so a
  longer reply does not look faster by spreading the prompt's prefill over more tokens). First text
  and time per token are the same computation for a base and its merged LoRA (same architecture,
  same prompt): differences of a few ms between them are noise; the full reply is where tuning shows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aituber.config import Character, generation_options, prompt_builder
from aituber.core.moderation import ModerationSettings, Moderator
from aituber.core.stats import percentile
from aituber.engine.base import Engine, EngineSettings, GenerationOptions, complete
from aituber.engine.registry import create_engine
from aituber.errors import ConfigError

from training.dataset import load_comments
from training.session import (
    SessionRun,
    distinct_n,
    echo_flags,
    load_expectations,
    on_topic_rate,
    run_session,
    top_opening,
)
from training.settings import load_training_character

EVAL_FILE = "dataset/eval.jsonl"
SAMPLE_CHAT = "sample_chat.jsonl"
TEMPLATE_MARKERS = ("###", "instruction:", "input:", "output:")
VIEWER_PREFIX = "視聴者名:"
LOOP_NGRAM = 4
LOOP_TIMES = 3


# --- the bot's prompt and options: the very functions the pipeline uses ------------------------------

bot_prompt_builder = prompt_builder
bot_generation_options = generation_options


def ng_moderator(character: Character) -> Moderator:
    m = character.moderation
    return Moderator(ModerationSettings(ng_words=tuple(m.ng_words), use_builtin_ng_words=m.use_builtin_ng_words,
                                        character_name=character.name))


# --- per-reply measures ---------------------------------------------------------------------------


def is_japanese_letter(ch: str) -> bool:
    code = ord(ch)
    return (0x3040 <= code <= 0x309F or 0x30A0 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF
            or 0xFF66 <= code <= 0xFF9F or 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF
            or 0xF900 <= code <= 0xFAFF or ch == "々")


def mostly_japanese(text: str) -> bool:
    letters = [ch for ch in text if unicodedata.category(ch).startswith("L")]
    return bool(letters) and sum(map(is_japanese_letter, letters)) * 2 >= len(letters)


def _ngrams(text: str, n: int = LOOP_NGRAM) -> list[str]:
    squashed = re.sub(r"\s+", "", text)
    return [squashed[i:i + n] for i in range(len(squashed) - n + 1)]


def has_loop(text: str) -> bool:
    counts = Counter(_ngrams(text))
    if counts and max(counts.values()) >= LOOP_TIMES:
        return True
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return len(lines) != len(set(lines))


def repeated_ngram_share(text: str) -> float:
    grams = _ngrams(text)
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def template_leak(text: str) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in TEMPLATE_MARKERS)


def persona_marker(text: str, character: Character) -> bool:
    markers = [m for m in (character.first_person, *character.sentence_endings) if m]
    return any(m in text for m in markers)


# --- running the model ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    source: str
    comment: str
    text: str
    stop: str
    first_token_s: float | None
    total_s: float
    tokens: int

    @property
    def decode_per_token_s(self) -> float | None:
        """Time per token after the first text: the decoding speed, without the prompt's prefill (which a
        short reply would otherwise carry over fewer tokens)."""
        if self.first_token_s is None or self.tokens < 2:
            return None
        return (self.total_s - self.first_token_s) / (self.tokens - 1)


@dataclass(slots=True)
class ModelReport:
    model_dir: Path
    device: str
    compute_type: str
    replies: list[Reply] = field(default_factory=list)
    ng_hits: list[tuple[str, ...]] = field(default_factory=list)

    def metrics(self, character: Character) -> dict[str, float | int | None]:
        texts = [r.text for r in self.replies]
        n = len(texts)
        lengths = [len(t) for t in texts]
        firsts = [r.first_token_s for r in self.replies if r.first_token_s is not None]
        totals = [r.total_s for r in self.replies]
        return {
            "replies": n,
            "mostly_japanese": sum(map(mostly_japanese, texts)) / n if n else 0.0,
            "loops": sum(map(has_loop, texts)),
            "repeated_4grams": sum(map(repeated_ngram_share, texts)) / n if n else 0.0,
            "template_leaks": sum(map(template_leak, texts)),
            "ng_leaks": sum(1 for hits in self.ng_hits if hits),
            "persona_markers": sum(persona_marker(t, character) for t in texts) / n if n else 0.0,
            "empty": sum(1 for t in texts if not t.strip()),
            "cut_at_length": sum(1 for r in self.replies if r.stop == "length"),
            "chars_p50": percentile(lengths, 50),
            "chars_p95": percentile(lengths, 95),
            "first_token_p50_ms": _ms(percentile(firsts, 50)),
            "first_token_p95_ms": _ms(percentile(firsts, 95)),
            "full_reply_p50_ms": _ms(percentile(totals, 50)),
            "full_reply_p95_ms": _ms(percentile(totals, 95)),
            "per_token_p50_ms": _ms(percentile([r.decode_per_token_s for r in self.replies
                                                if r.decode_per_token_s is not None], 50)),
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000)


def _viewer(input_text: str) -> str | None:
    for part in input_text.split("/"):
        part = part.strip()
        if part.startswith(VIEWER_PREFIX):
            return part[len(VIEWER_PREFIX):].strip() or None
    return None


STOPS = ("model", "bot")


def eval_generation_options(character: Character, stops: str = "model") -> GenerationOptions:
    """The bot's options; with `stops="model"` without the template's stop strings (see the module doc)."""
    if stops not in STOPS:
        raise ValueError(f"stops must be one of {STOPS}, not {stops!r}")
    options = bot_generation_options(character)
    if stops == "model":
        options = dataclasses.replace(options, stop_strings=tuple(character.stop_strings))
    return options


class _Asker:
    """One engine, started, with the character's prompt builder; asks one comment at a time."""

    def __init__(self, character: Character, engine: Engine, model_dir: str | Path,
                 options: GenerationOptions) -> None:
        self.engine = engine
        self.builder = bot_prompt_builder(character, engine.info)
        self.options = options
        self.moderator = ng_moderator(character)
        device, _, compute_type = engine.info.detail.partition(", ")
        self.report = ModelReport(model_dir=Path(model_dir), device=device, compute_type=compute_type)

    async def ask(self, source: str, comment: str, viewer: str | None) -> None:
        prompt = self.builder.build(comment, viewer, form=self.engine.info.prompt_form)
        done = await complete(self.engine, prompt, self.options)
        self.report.replies.append(Reply(source, comment, done.text, done.stop_reason, done.first_text_s,
                                         done.total_s, done.tokens))
        self.report.ng_hits.append(self.moderator.ng_hits(done.text))


def run_models(character: Character, model_dirs: Sequence[str | Path],
               comments: Sequence[tuple[str, str, str | None]], seed: int = 0, device: str = "auto",
               compute_type: str = "auto", stops: str = "model",
               progress: Callable[[int, int], None] | None = None) -> list[ModelReport]:
    """Every (source, comment, viewer) through each model, the models taking turns comment by comment."""
    return asyncio.run(_run_models(character, model_dirs, comments, seed, device, compute_type, stops, progress))


async def _run_models(character: Character, model_dirs: Sequence[str | Path],
                      comments: Sequence[tuple[str, str, str | None]], seed: int, device: str,
                      compute_type: str, stops: str,
                      progress: Callable[[int, int], None] | None) -> list[ModelReport]:
    options = eval_generation_options(character, stops)
    async with contextlib.AsyncExitStack() as stack:
        askers = []
        for model_dir in model_dirs:
            settings = EngineSettings(model=model_dir, device=device, compute_type=compute_type, seed=seed,
                                      cache_prefix=character.prompt.static_prompt)
            engine = await asyncio.to_thread(create_engine, settings)
            stack.push_async_callback(engine.close)
            await engine.start()
            askers.append(_Asker(character, engine, model_dir, options))
        for i, (source, comment, viewer) in enumerate(comments):
            for asker in (askers if i % 2 == 0 else askers[::-1]):
                await asker.ask(source, comment, viewer)
            if progress is not None:
                progress(i + 1, len(comments))
        return [asker.report for asker in askers]


@dataclass(slots=True)
class Report:
    character: Character
    character_dir: Path
    tuned: ModelReport
    base: ModelReport | None
    seed: int
    eval_file: Path
    stops: str = "model"


def evaluate_character(character_dir: str | Path, model_dir: str | Path, baseline_dir: str | Path | None = None,
                       limit: int | None = None, seed: int = 0, device: str = "auto",
                       compute_type: str = "auto", stops: str = "model",
                       progress: Callable[[int, int], None] | None = None) -> Report:
    """The held-out comments through `model_dir` (and `baseline_dir`, side by side, for comparison)."""
    character_dir = Path(character_dir)
    character, _ = load_training_character(character_dir)
    eval_file = character_dir / EVAL_FILE
    comments = [(source, ex.instruction, _viewer(ex.input)) for source, ex in load_comments(eval_file)]
    if limit is not None:
        comments = comments[:limit]
    dirs = [model_dir, baseline_dir] if baseline_dir else [model_dir]
    reports = run_models(character, dirs, comments, seed, device, compute_type, stops, progress)
    return Report(character=character, character_dir=character_dir, tuned=reports[0],
                  base=reports[1] if baseline_dir else None, seed=seed, eval_file=eval_file, stops=stops)


# --- the report -----------------------------------------------------------------------------------

#: (key, label, format, better): better is "high", "low" or "" (not compared).
ROWS = (
    ("mostly_japanese", "mostly Japanese (≥ 50 % kana/kanji letters)", "pct", "high"),
    ("loops", "loops (a 4-gram ×3, or a repeated line)", "int", "low"),
    ("repeated_4grams", "repeated 4-grams (mean share)", "pct", "low"),
    ("template_leaks", "template leaks (###, instruction:, input:, output:)", "int", "low"),
    ("ng_leaks", "NG-word leaks (raw reply)", "int", "low"),
    ("persona_markers", "persona markers (first person or sentence ending)", "pct", "high"),
    ("empty", "empty replies", "int", "low"),
    ("cut_at_length", "cut at the length limit", "int", "low"),
    ("chars_p50", "length p50 (chars)", "int", ""),
    ("chars_p95", "length p95 (chars)", "int", ""),
    ("first_token_p50_ms", "first token p50 (ms)", "int", ""),
    ("first_token_p95_ms", "first token p95 (ms)", "int", ""),
    ("full_reply_p50_ms", "full reply p50 (ms)", "int", ""),
    ("full_reply_p95_ms", "full reply p95 (ms)", "int", ""),
    ("per_token_p50_ms", "per token after the first p50 (ms)", "int", ""),
)


def _fmt(value: float | int | None, kind: str) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.1f} %" if kind == "pct" else f"{value:.0f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "⏎") or "(empty)"


STOPS_NOTE = {
    "model": ("Replies end at the model's end token or the length limit: the template's stop strings ({stops}), "
              "the bot's safety net, are left out so that the model's own template leaks and loops show "
              "(`--bot-stops` applies them)."),
    "bot": ("Replies are cut at the bot's stop strings ({stops}), as a viewer would see them: template leaks "
            "cannot show, and a model that runs on is cut short (which also makes it finish sooner)."),
}


def render_markdown(report: Report, samples: int = 15) -> str:
    c = report.character
    tuned = report.tuned.metrics(c)
    base = report.base.metrics(c) if report.base else None
    lines = [f"# Evaluation: {c.name} ({c.id})", "",
             f"{tuned['replies']} held-out comments from `{report.eval_file}`, asked with the bot's prompt and "
             f"generation options (template `{c.template}`, temperature {c.generation.temperature}, "
             f"seed {report.seed} + comment index), on {report.tuned.device} / {report.tuned.compute_type}.", "",
             STOPS_NOTE[report.stops].format(stops=", ".join(map(repr, bot_generation_options(c).stop_strings)) or "none"),
             ""]
    if base is not None:
        lines += ["| metric | base | tuned |", "| --- | ---: | ---: |"]
        for key, label, kind, _ in ROWS:
            lines.append(f"| {label} | {_fmt(base[key], kind)} | {_fmt(tuned[key], kind)} |")
        lines += ["", f"base: `{report.base.model_dir}`  ", f"tuned: `{report.tuned.model_dir}`", ""]
    else:
        lines += ["| metric | model |", "| --- | ---: |"]
        for key, label, kind, _ in ROWS:
            lines.append(f"| {label} | {_fmt(tuned[key], kind)} |")
        lines += ["", f"model: `{report.tuned.model_dir}`", ""]
    lines += ["## Sample replies", ""]
    if report.base is not None:
        lines += ["| comment | base | tuned |", "| --- | --- | --- |"]
        for b, t in list(zip(report.base.replies, report.tuned.replies))[:samples]:
            lines.append(f"| {_cell(t.comment)} | {_cell(b.text)} | {_cell(t.text)} |")
    else:
        lines += ["| comment | reply |", "| --- | --- |"]
        for t in report.tuned.replies[:samples]:
            lines.append(f"| {_cell(t.comment)} | {_cell(t.text)} |")
    flagged = [(r, hits) for r, hits in zip(report.tuned.replies, report.tuned.ng_hits)
               if hits or has_loop(r.text) or template_leak(r.text)]
    if flagged:
        lines += ["", "## Flagged tuned replies", ""]
        for r, hits in flagged:
            why = ", ".join(w for w, bad in (("loop", has_loop(r.text)), ("template", template_leak(r.text)),
                                             (f"NG {'/'.join(hits)}", bool(hits))) if bad)
            lines.append(f"- `{r.source}` ({why}): {_cell(r.text)}")
    return "\n".join(lines) + "\n"


def comparison(report: Report) -> dict[str, bool]:
    """For each compared metric, whether the tuned model is at least as good as the base."""
    if report.base is None:
        return {}
    tuned, base = report.tuned.metrics(report.character), report.base.metrics(report.character)
    out = {}
    for key, _, _, better in ROWS:
        if better and tuned[key] is not None and base[key] is not None:
            out[key] = tuned[key] >= base[key] if better == "high" else tuned[key] <= base[key]
    return out


# --- sessions -------------------------------------------------------------------------------------


def with_overrides(character: Character, memory: str | None = None, memory_turns: int | None = None,
                   avoid_recent: int | None = None) -> Character:
    """The character with its memory form, memory turns or avoided recent replies replaced (None: as is)."""
    prompt = {k: v for k, v in (("memory", memory), ("memory_turns", memory_turns)) if v is not None}
    generation = {"avoid_recent": avoid_recent} if avoid_recent is not None else {}
    return character.model_copy(update={
        "prompt": character.prompt.model_validate({**character.prompt.model_dump(), **prompt}),
        "generation": character.generation.model_validate({**character.generation.model_dump(), **generation}),
    })


def _as_model_report(run: SessionRun, character: Character) -> ModelReport:
    moderator = ng_moderator(character)
    report = ModelReport(model_dir=run.model_dir, device=run.device, compute_type=run.compute_type)
    for r in run.replies:
        report.replies.append(Reply(r.comment_id, r.comment, r.text, r.stop, r.first_text_s, r.total_s, r.tokens))
        report.ng_hits.append(moderator.ng_hits(r.raw))
    return report


def session_metrics(run: SessionRun, character: Character,
                    expectations: dict[str, tuple[str, ...]]) -> dict[str, float | int | str | None]:
    """The per-reply rows over the session's replies, and the session's own."""
    texts = [r.text for r in run.replies]
    flags = echo_flags(run.replies)
    opening = top_opening(texts)
    topic, judged = on_topic_rate(run.replies, expectations)
    return {
        **_as_model_report(run, character).metrics(character),
        "echo_rate": sum(flags) / len(flags) if flags else None,
        "top_opening": opening[1] if opening else None,
        "top_opening_text": opening[0] if opening else "",
        "distinct_2": distinct_n(texts, 2),
        "on_topic": topic,
        "on_topic_n": judged,
        "comments": run.comments,
        "thanks": run.thanks,
        "skipped": sum(run.skipped.values()),
    }


@dataclass(slots=True)
class SessionReport:
    character: Character
    log: Path
    tuned: SessionRun
    base: SessionRun | None
    expectations: dict[str, tuple[str, ...]]
    seed: int = 0


def evaluate_session(character_dir: str | Path, log: str | Path, model_dir: str | Path,
                     baseline_dir: str | Path | None = None, seed: int = 0, device: str = "auto",
                     compute_type: str = "auto", character: Character | None = None,
                     progress: Callable[[str], None] | None = None) -> SessionReport:
    """`log` through the pipeline on `model_dir` (and `baseline_dir`, one after the other)."""
    character_dir = Path(character_dir)
    if character is None:
        character, _ = load_training_character(character_dir)
    expectations = load_expectations(character_dir / EVAL_FILE)
    tuned = run_session(character, log, model_dir, label="tuned" if baseline_dir else "", seed=seed,
                        device=device, compute_type=compute_type, progress=progress)
    base = None
    if baseline_dir is not None:
        base = run_session(character, log, baseline_dir, label="base", seed=seed, device=device,
                           compute_type=compute_type, progress=progress)
    return SessionReport(character, Path(log), tuned, base, expectations, seed)


#: (key, label, format, better) for the session's own rows.
SESSION_ROWS = (
    ("echo_rate", "echo rate (a 6-char run from one of the 5 previous replies)", "pct", "low"),
    ("top_opening", "most common opening (3 chars), share of replies", "pct", "low"),
    ("distinct_2", "distinct-2 (character bigrams, whole session)", "pct", "high"),
    ("on_topic", "on-topic (an expected keyword; comments with `expect`)", "pct", "high"),
)
SESSION_COUNTS = (
    ("comments", "comments in the log"),
    ("replies", "model replies (answers and idle talk)"),
    ("thanks", "thanks said (fixed text, not scored)"),
    ("skipped", "comments skipped (moderation, queue)"),
    ("on_topic_n", "replies judged for on-topic"),
)
#: The per-reply rows that mean something in a session (the bot's stop strings apply).
SESSION_REPLY_ROWS = tuple(r for r in ROWS if r[0] not in ("cut_at_length",))


def _session_cell(key: str, kind: str, m: dict) -> str:
    text = _fmt(m[key], kind)
    if key == "top_opening" and m["top_opening_text"]:
        text += f" ({_cell(str(m['top_opening_text']))})"
    return text


def render_session(report: SessionReport, samples: int = 12) -> str:
    c = report.character
    tuned = session_metrics(report.tuned, c, report.expectations)
    base = session_metrics(report.base, c, report.expectations) if report.base else None
    memory = f"memory `{c.prompt.memory.value}` ({c.prompt.memory_turns} turns)"
    avoid = (f"the phrases of the last {c.generation.avoid_recent} replies suppressed "
             f"({c.generation.avoid_ngram_size}-token runs)" if c.generation.avoid_recent else "no suppression")
    lines = [f"## Session: `{report.log}`", "",
             f"The log replayed through the pipeline (moderation, selection, {memory}, {avoid}, the output "
             f"filter, the bot's stop strings), each comment once the last was dealt with; seed {report.seed}, "
             f"on {report.tuned.device} / {report.tuned.compute_type}.", ""]
    runs = [("base", base), ("tuned", tuned)] if base is not None else [("model", tuned)]
    lines += ["| metric | " + " | ".join(name for name, _ in runs) + " |",
              "| --- |" + " ---: |" * len(runs)]
    for key, label in SESSION_COUNTS:
        lines.append(f"| {label} | " + " | ".join(_fmt(m[key], "int") for _, m in runs) + " |")
    for key, label, kind, _ in (*SESSION_ROWS, *SESSION_REPLY_ROWS):
        if key == "first_token_p50_ms":
            label = "first text p50 (ms)"
        elif key == "first_token_p95_ms":
            label = "first text p95 (ms)"
        lines.append(f"| {label} | " + " | ".join(_session_cell(key, kind, m) for _, m in runs) + " |")
    lines += [""] + [f"{name}: `{run.model_dir}`  " for name, run in
                     ((("base", report.base), ("tuned", report.tuned)) if report.base else (("model", report.tuned),))]
    lines += ["", "Latencies are the pipeline's (selection to first text, to the end); the models ran one after "
              "the other, so load on the machine may differ between them.", ""]
    lines += ["### Sample replies", ""]
    if report.base is not None:
        by_id = {r.comment_id: r for r in report.base.replies if r.comment_id}
        lines += ["| comment | base | tuned |", "| --- | --- | --- |"]
        for r in report.tuned.replies[:samples]:
            b = by_id.get(r.comment_id)
            lines.append(f"| {_cell(r.comment)} | {_cell(b.text) if b else '-'} | {_cell(r.text)} |")
    else:
        lines += ["| comment | reply |", "| --- | --- |"]
        for r in report.tuned.replies[:samples]:
            lines.append(f"| {_cell(r.comment)} | {_cell(r.text)} |")
    echoed = [(i, r) for i, (r, bad) in enumerate(zip(report.tuned.replies, echo_flags(report.tuned.replies)))
              if bad]
    if echoed:
        lines += ["", f"### Echoes ({'tuned' if report.base else 'model'})", ""]
        for i, r in echoed:
            lines.append(f"- #{i + 1} {_cell(r.comment)} → {_cell(r.text)}")
    return "\n".join(lines) + "\n"


def session_comparison(report: SessionReport) -> dict[str, bool]:
    """For each compared session metric, whether the tuned model is at least as good as the base."""
    if report.base is None:
        return {}
    tuned = session_metrics(report.tuned, report.character, report.expectations)
    base = session_metrics(report.base, report.character, report.expectations)
    out = {}
    for key, _, _, better in (*SESSION_ROWS, *SESSION_REPLY_ROWS):
        if better and tuned[key] is not None and base[key] is not None:
            out[key] = tuned[key] >= base[key] if better == "high" else tuned[key] <= base[key]
    return out


# --- command line ---------------------------------------------------------------------------------


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("character", type=Path, metavar="DIR", help="character folder (dataset/eval.jsonl)")
    parser.add_argument("--model", type=Path, metavar="DIR", help="model to evaluate (default: the tuned model)")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="model to compare with; with `aituber eval`: 'default' = the prepared Gemma 3 270M "
                             "(the default when --model is not given: base against tuned), 'none' = no comparison")
    parser.add_argument("--out", type=Path, metavar="FILE", help="write the Markdown report here (default: print)")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N comments")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    parser.add_argument("--bot-stops", action="store_true",
                        help="cut replies at the template's stop strings as the bot does (default: the model's "
                             "own end, so template leaks and loops are counted)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--compute-type", default="auto")
    parser.add_argument("--session", type=Path, action="append", metavar="LOG",
                        help="replay this chat log through the pipeline and score the session (echo rate, "
                             "openings, distinct-2, on-topic...) instead of the held-out comments; repeatable. "
                             "Default: the held-out comments and a session over the character's sample_chat.jsonl")
    parser.add_argument("--memory", choices=["comments", "replies"],
                        help="override [prompt] memory for this evaluation: the viewers' earlier comments only, "
                             "or whole earlier exchanges")
    parser.add_argument("--memory-turns", type=int, metavar="N", help="override [prompt] memory_turns (0 = no memory)")
    parser.add_argument("--avoid-recent", type=int, metavar="N",
                        help="override [generation] avoid_recent: keep the phrases of the last N replies out of "
                             "the next (0 = off)")


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cli_eval(args: argparse.Namespace) -> Report | None:
    """`aituber eval`; `args.model` must be set (the CLI fills in the tuned model's folder). Returns the
    held-out comments' report (None when only sessions were asked for)."""
    if args.model is None:
        raise SystemExit("aituber eval: --model DIR is required here")
    if args.baseline is not None and str(args.baseline) == "none":
        args.baseline = None
    def progress(done: int, total: int) -> None:
        if done % 10 == 0 or done == total:
            _stderr(f"{args.character.name}: {done}/{total} comments")

    character, _ = load_training_character(args.character)
    character = with_overrides(character, getattr(args, "memory", None), getattr(args, "memory_turns", None),
                               getattr(args, "avoid_recent", None))
    sessions = list(getattr(args, "session", None) or [])
    for log_path in sessions:  # before any model loads
        if not log_path.is_file():
            raise ConfigError(f"--session {log_path}: chat log not found")
    report = None
    parts: list[str] = []
    if not sessions:
        report = evaluate_character(args.character, args.model, args.baseline, args.limit, args.seed, args.device,
                                    args.compute_type, "bot" if args.bot_stops else "model", progress)
        parts.append(render_markdown(report))
        sample = args.character / SAMPLE_CHAT
        if sample.is_file():
            sessions = [sample]
    for log_path in sessions:
        session = evaluate_session(args.character, log_path, args.model, args.baseline, args.seed, args.device,
                                   args.compute_type, character=character, progress=_stderr)
        parts.append(render_session(session))
    if report is None:
        parts.insert(0, f"# Session evaluation: {character.name} ({character.id})\n")
    text = "\n".join(parts)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        print(f"report: {args.out}")
    else:
        print(text)
    return report


def main(argv: list[str] | None = None) -> int:  # python -m training.evaluate ...
    from aituber.errors import AituberError

    parser = argparse.ArgumentParser(prog="python -m training.evaluate")
    add_eval_arguments(parser)
    args = parser.parse_args(argv)
    try:
        cli_eval(args)
    except AituberError as exc:
        print(f"error: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

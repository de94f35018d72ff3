"""Training data: JSONL exchanges -> validated examples -> token ids with labels on the reply only.

A line is one example, either a single exchange (the seed's format)::

    {"instruction": "視聴者のコメント", "input": "視聴者名: たぬき丸", "output": "キャラクターの返事"}

or a conversation, for memory: the turns in order, each an exchange of its own::

    {"turns": [{"instruction": "こんばんは", "output": "こんばんは！"},
               {"instruction": "今日なにしてた？", "output": "ゲームしてたよ！"}]}

`instruction` and `output` are required, non-empty strings; `input` is optional (extra context such as
`視聴者名: NAME`). A conversation of N turns trains N replies: turn k is asked with turns 1..k-1 as the
memory the bot would show (`PromptBuilder.training_example(..., history=...)`): the same form (the
builder's `memory`), the same number of turns within the same token budget, and each remembered turn
with its viewer's name (taken from the turn's `視聴者名: NAME` input), as the bot's memory has it.
Blank lines are ignored.

Everything wrong with a file is collected before any training starts and raised together as one
`DatasetError`, one `FILE:LINE: reason` per problem (bad JSON, a missing or empty field, an unknown
key, a reply over the character or token limit, a duplicate of an earlier line).

`PromptEncoder` turns an example into token ids exactly as the bot feeds them: BOS + the prompt text
(the persona prefix tokenized on its own when the character uses a static prompt, as the engine does),
then the reply and the end token. Labels are -100 on every prompt token: the loss is on the reply only.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aituber.core.prompt import PromptBuilder, Turn, select_history
from aituber.errors import AituberError

IGNORE_INDEX = -100
EXCHANGE_KEYS = frozenset({"instruction", "input", "output"})
DEFAULT_MAX_CHARS = 1000
"""Longest exchange accepted (instruction + input + output, in characters)."""
DEFAULT_MEMORY_TURNS = 2
DEFAULT_MEMORY_TOKENS = 160
"""The bot's memory limits when the character does not set them (`[prompt] memory_turns`, `memory_tokens`)."""
_VIEWER = re.compile(r"視聴者名:\s*([^/\n]+)")


def viewer_of(input_text: str) -> str | None:
    """The viewer's name in an exchange's input (`視聴者名: NAME`, up to a `/` or the line's end)."""
    match = _VIEWER.search(input_text)
    return match.group(1).strip() or None if match else None


class DatasetError(AituberError):
    """A dataset file has problems; `problems` holds every one as `FILE:LINE: reason`."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        shown = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the training data; nothing was trained:\n{shown}")


@dataclass(frozen=True, slots=True)
class Exchange:
    instruction: str
    output: str
    input: str = ""


@dataclass(frozen=True, slots=True)
class Example:
    source: str
    """`FILE:LINE`, for messages."""
    turns: tuple[Exchange, ...]


@dataclass(frozen=True, slots=True)
class EncodedExample:
    source: str
    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    """IGNORE_INDEX on the prompt, the token ids on the reply and the end token."""

    @property
    def prompt_length(self) -> int:
        return next((i for i, label in enumerate(self.labels) if label != IGNORE_INDEX), len(self.labels))

    def __len__(self) -> int:
        return len(self.input_ids)


# --- reading and validation -----------------------------------------------------------------------


def _exchange(value: Any, where: str, problems: list[str], max_chars: int) -> Exchange | None:
    if not isinstance(value, dict):
        problems.append(f"{where}: expected an object with 'instruction' and 'output', got {type(value).__name__}")
        return None
    bad = False
    for key in sorted(set(value) - EXCHANGE_KEYS):
        problems.append(f"{where}: unknown key {key!r} (expected instruction, input, output)")
        bad = True
    for key in ("instruction", "output"):
        if key not in value:
            problems.append(f"{where}: missing '{key}'")
            bad = True
        elif not isinstance(value[key], str):
            problems.append(f"{where}: '{key}' must be a string, got {type(value[key]).__name__}")
            bad = True
        elif not value[key].strip():
            problems.append(f"{where}: '{key}' is empty")
            bad = True
    if "input" in value and not isinstance(value["input"], str):
        problems.append(f"{where}: 'input' must be a string, got {type(value['input']).__name__}")
        bad = True
    if bad:
        return None
    exchange = Exchange(value["instruction"].strip(), value["output"].strip(), value.get("input", "").strip())
    chars = len(exchange.instruction) + len(exchange.input) + len(exchange.output)
    if chars > max_chars:
        problems.append(f"{where}: {chars} characters, over the limit of {max_chars} (shorten it or raise "
                        "training.max_chars)")
        return None
    return exchange


def json_lines(path: Path, lines: Sequence[str], problems: list[str]) -> Iterator[tuple[int, str, Any]]:
    """(line number, "FILE:LINE", value) for every non-blank line of the JSON Lines file `path`; a line
    that is not JSON goes into `problems` (`FILE:LINE: bad JSON: ...`) instead."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: bad JSON: {exc.msg} (column {exc.colno})")
            continue
        yield number, where, value


def read_examples(path: str | Path, max_chars: int = DEFAULT_MAX_CHARS) -> tuple[list[Example], list[str]]:
    """Every valid example in `path`, and every problem found (`FILE:LINE: reason`)."""
    path = Path(path)
    problems: list[str] = []
    examples: list[Example] = []
    seen: dict[tuple[Exchange, ...], int] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return [], [f"{path}: file not found"]
    except (OSError, UnicodeDecodeError) as exc:
        return [], [f"{path}: unreadable: {exc}"]
    for number, where, value in json_lines(path, lines, problems):
        if isinstance(value, dict) and "turns" in value:
            extra = sorted(set(value) - {"turns"})
            if extra:
                problems.append(f"{where}: unknown key {extra[0]!r} beside 'turns'")
                continue
            if not isinstance(value["turns"], list) or not value["turns"]:
                problems.append(f"{where}: 'turns' must be a non-empty list of exchanges")
                continue
            turns = [_exchange(t, f"{where}: turn {i}", problems, max_chars) for i, t in enumerate(value["turns"], 1)]
        else:
            turns = [_exchange(value, where, problems, max_chars)]
        if any(t is None for t in turns):
            continue
        key = tuple(t for t in turns if t is not None)
        if key in seen:
            problems.append(f"{where}: duplicate of line {seen[key]}")
            continue
        seen[key] = number
        examples.append(Example(where, key))
    if not examples and not problems:
        problems.append(f"{path}: no examples")
    return examples, problems


def load_dataset(path: str | Path, max_chars: int = DEFAULT_MAX_CHARS) -> list[Example]:
    """The examples in `path`, or a DatasetError listing every problem."""
    examples, problems = read_examples(path, max_chars)
    if problems:
        raise DatasetError(problems)
    return examples


def load_comments(path: str | Path) -> list[tuple[str, Exchange]]:
    """Held-out comments for evaluation: `instruction` (and `input`) per line; `output` is not needed."""
    path = Path(path)
    problems: list[str] = []
    comments: list[tuple[str, Exchange]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError([f"{path}: unreadable: {exc}"]) from exc
    for _, where, value in json_lines(path, lines, problems):
        text = value.get("instruction") if isinstance(value, dict) else None
        if not isinstance(text, str) or not text.strip():
            problems.append(f"{where}: missing or empty 'instruction'")
            continue
        extra = value.get("input", "")
        comments.append((where, Exchange(text.strip(), str(value.get("output", "")), str(extra or "").strip())))
    if problems:
        raise DatasetError(problems)
    return comments


def split_examples(examples: Sequence[Example], eval_fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """A seeded split: (train, eval). At least one eval example when the fraction is above 0 and
    there are two or more examples; the order within each part is the file's."""
    n = len(examples)
    n_eval = min(n - 1, max(1, round(n * eval_fraction))) if eval_fraction > 0 and n >= 2 else 0
    chosen = set(random.Random(seed).sample(range(n), n_eval))
    return ([e for i, e in enumerate(examples) if i not in chosen],
            [e for i, e in enumerate(examples) if i in chosen])


# --- tokenization ---------------------------------------------------------------------------------


class PromptEncoder:
    """Token ids for training, the way the bot's engine builds them.

    `encode_text(text)` is the tokenizer without special tokens; `bos_id` is put in front of every
    prompt when the model's tokenizer adds BOS (the converted model's config then names it, and the
    engine adds it too). With `static_prompt`, the persona prefix is tokenized on its own, as the
    engine does when it caches it."""

    def __init__(self, builder: PromptBuilder, encode_text: Callable[[str], list[int]], bos_id: int | None,
                 eos_id: int, static_prompt: bool = True, memory_turns: int = DEFAULT_MEMORY_TURNS,
                 memory_tokens: int = DEFAULT_MEMORY_TOKENS) -> None:
        self.builder = builder
        self.encode_text = encode_text
        self.bos_id = bos_id
        self.eos_id = eos_id
        self.static_prompt = static_prompt
        self.memory_turns = memory_turns
        self.memory_tokens = memory_tokens
        self._static = builder.build("\x00").static if static_prompt else ""

    def prompt_ids(self, prompt: str) -> list[int]:
        ids = [self.bos_id] if self.bos_id is not None else []
        if self._static and prompt.startswith(self._static):
            return ids + self.encode_text(self._static) + self.encode_text(prompt[len(self._static):])
        return ids + self.encode_text(prompt)

    def memory(self, earlier: list[Turn]) -> list[Turn]:
        """What the bot would remember of `earlier` turns: the last `memory_turns` within the budget."""
        if not self.memory_turns:
            return []
        return select_history(earlier[-self.memory_turns:], lambda text: len(self.encode_text(text)),
                              self.memory_tokens, self.builder.memory)

    def encode(self, example: Example) -> list[EncodedExample]:
        """One sequence per turn: turn k with (what the bot keeps of) turns 1..k-1 as memory."""
        out = []
        history: list[Turn] = []
        for k, turn in enumerate(example.turns):
            prompt, completion = self.builder.training_example(turn.instruction, turn.output, turn.input,
                                                               self.memory(history))
            prompt_ids = self.prompt_ids(prompt)
            completion_ids = self.encode_text(completion) + [self.eos_id]
            source = example.source if len(example.turns) == 1 else f"{example.source}: turn {k + 1}"
            out.append(EncodedExample(source, tuple(prompt_ids + completion_ids),
                                      tuple([IGNORE_INDEX] * len(prompt_ids) + completion_ids)))
            history.append(Turn(turn.instruction, turn.output, viewer_of(turn.input)))
        return out

    def encode_all(self, examples: Sequence[Example], max_length: int) -> list[EncodedExample]:
        """Every example encoded; one over `max_length` tokens is a DatasetError naming its line."""
        encoded: list[EncodedExample] = []
        problems: list[str] = []
        for example in examples:
            for item in self.encode(example):
                if len(item) > max_length:
                    problems.append(f"{item.source}: {len(item)} tokens with the prompt, over max_length "
                                    f"{max_length} (shorten it or raise training.max_length)")
                else:
                    encoded.append(item)
        if problems:
            raise DatasetError(problems)
        return encoded

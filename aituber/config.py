"""A character's settings: the character folder's `character.toml`, read and checked once at the entry
point, and each pipeline stage's settings built from its section (shared by the bot and training, which
must ask the model exactly as the bot does).

A section's keys are the fields of its stage's settings (`[moderation]` -> ModerationSettings, `[queue]`
-> QueueSettings, `[generation]` -> GenerationOptions), passed through by name: a new setting is a field
in the stage's settings and one here.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aituber.core.moderation import ModerationSettings, Moderator
from aituber.core.prompt import TEMPLATES, MemoryForm, PromptBuilder, Template
from aituber.core.selection import QueueSettings
from aituber.engine.base import EngineInfo, GenerationOptions
from aituber.errors import ConfigError

CHARACTER_FILE = "character.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GenerationSettings(_Strict):
    max_new_tokens: int = Field(64, ge=1, le=2048)
    max_chars: int = Field(120, ge=1)
    temperature: float = Field(0.7, ge=0.0)
    top_k: int = Field(40, ge=0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    repetition_penalty: float = Field(1.1, ge=1.0)
    no_repeat_ngram_size: int = Field(0, ge=0)
    cut_long_replies: bool = True
    """A reply that runs over the length limit is cut after its last complete sentence."""
    avoid_recent: int = Field(0, ge=0, le=20)
    """Keep the phrases of this many recent replies out of the next one (0 = off)."""
    avoid_ngram_size: int = Field(3, ge=2, le=16)
    """...as runs of this many tokens (where the engine can: CTranslate2's suppress_sequences)."""


class ModerationConfig(_Strict):
    max_comment_chars: int = Field(200, ge=1)
    truncate_long: bool = False
    ng_words: list[str] = []
    use_builtin_ng_words: bool = True
    output_ng_action: str = Field("mask", pattern="^(mask|drop)$")
    block_urls: bool = True
    max_answers_per_viewer: int = Field(3, ge=0)
    viewer_window_s: float = Field(300.0, gt=0)
    blocked_viewers: list[str] = []
    near_duplicate_window_s: float = Field(60.0, ge=0)
    near_duplicate_similarity: float = Field(0.8, gt=0, le=1)
    flood_threshold: int = Field(4, ge=0)
    flood_window_s: float = Field(30.0, ge=0)


class QueueConfig(_Strict):
    """Every key is a field of aituber.core.selection.QueueSettings (documented there)."""

    max_size: int = Field(20, ge=1)
    max_age_s: float = Field(60.0, gt=0)
    paid_weight: float = 100.0
    membership_weight: float = 60.0
    member_weight: float = 15.0
    owner_weight: float = 20.0
    question_weight: float = 10.0
    mention_weight: float = 10.0
    amount_weight: float = 10.0
    decay_per_s: float = Field(0.2, ge=0)
    answered_penalty: float = 15.0
    queued_penalty: float = 5.0
    fairness_window_s: float = Field(300.0, ge=0)
    paid_max_wait_s: float = Field(45.0, gt=0)
    thanks_burst_size: int = Field(3, ge=0)
    thanks_burst_window_s: float = Field(10.0, ge=0)
    thanks_settle_s: float = Field(2.0, ge=0)
    thanks_max_batch: int = Field(10, ge=1)
    yen_per_unit: dict[str, float] = {}
    """Rates added to (or replacing) the built-in ones, by currency code: {USD = 150.0}."""


class PromptConfig(_Strict):
    viewer_names: bool = True
    memory: MemoryForm = MemoryForm.COMMENTS
    """What the memory shows: "comments" (viewers' earlier comments only) or "replies" (whole exchanges)."""
    memory_turns: int = Field(2, ge=0, le=20)
    memory_tokens: int = Field(160, ge=0)
    static_prompt: bool = True


class IdleConfig(_Strict):
    after_s: float | None = Field(None, gt=0)
    """Talk from `topics` after this many seconds with nothing selected; None = never."""
    cooldown_s: float = Field(90.0, ge=0)


class ModelConfig(_Strict):
    adapter: str | None = None
    """A LoRA folder (relative to the character folder) merged into the base model for this character."""


class Character(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    name: str = Field(min_length=1)
    first_person: str = ""
    sentence_endings: list[str] = []
    persona: str = ""
    aliases: list[str] = []
    template: str = "instruction"
    topics: list[str] = []
    topic_prompt: str = "（雑談）{topic}について、視聴者に話しかけて"
    thanks: str = "{names}、スーパーチャットありがとう！"
    """What the character says to thank paid messages; {names} is the list below."""
    thanks_name: str = "{name}さん"
    """One name in the thanks list."""
    thanks_separator: str = "、"
    thanks_others: str = "ほか"
    """After `thanks_max_names` names, when there were more."""
    thanks_max_names: int = Field(5, ge=1)
    stop_strings: list[str] = []
    generation: GenerationSettings = GenerationSettings()
    prompt: PromptConfig = PromptConfig()
    moderation: ModerationConfig = ModerationConfig()
    queue: QueueConfig = QueueConfig()
    idle: IdleConfig = IdleConfig()
    model: ModelConfig = ModelConfig()
    outputs: dict[str, dict[str, Any]] = {}
    """`[outputs.NAME]` tables: settings of optional outputs (see aituber.outputs.registry)."""
    training: dict[str, int | float | bool | str] = {}
    """LoRA training settings (see training/settings.py: TrainSettings); checked by `aituber train`."""

    @property
    def prompt_template(self) -> Template:
        return TEMPLATES[self.template]

    @field_validator("topic_prompt")
    @classmethod
    def _has_topic(cls, value: str) -> str:
        return _check_format(value, "topic")

    @field_validator("thanks")
    @classmethod
    def _has_names(cls, value: str) -> str:
        return _check_format(value, "names")

    @field_validator("thanks_name")
    @classmethod
    def _has_name(cls, value: str) -> str:
        return _check_format(value, "name")


def _check_format(value: str, field: str) -> str:
    """A format string that may use only `{field}` (and must not break str.format)."""
    try:
        value.format(**{field: ""})
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"may only use {{{field}}} (write {{{{ and }}}} for braces): {exc}") from None
    return value


@dataclass(frozen=True, slots=True)
class CharacterFolder:
    path: Path
    character: Character


def load_character(folder: str | Path) -> CharacterFolder:
    """Read `folder/character.toml`. Errors name the file and the key, and say what to do."""
    path = Path(folder)
    if not path.is_dir():
        raise ConfigError(f"character folder not found: {path} (expected a folder with {CHARACTER_FILE})")
    file = path / CHARACTER_FILE
    if not file.is_file():
        raise ConfigError(f"{file}: missing; a character folder needs a {CHARACTER_FILE}")
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from exc
    try:
        character = Character.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"'{'.'.join(str(p) for p in err['loc'])}': {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{file}: {problems}") from exc
    if character.template not in TEMPLATES:
        raise ConfigError(
            f"{file}: 'template': unknown template {character.template!r} (known: {', '.join(TEMPLATES)})"
        )
    try:
        check_stages(character)
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from exc
    return CharacterFolder(path=path, character=character)


# --- each stage's settings, from its section --------------------------------------------------------


def moderation_settings(character: Character) -> ModerationSettings:
    m = character.moderation.model_dump()
    m["ng_words"] = tuple(m["ng_words"])
    m["blocked_viewers"] = tuple(m["blocked_viewers"])
    return ModerationSettings(**m, character_name=character.name)


def queue_settings(character: Character) -> QueueSettings:
    q = character.queue.model_dump()
    rates = dict(QueueSettings().yen_per_unit)
    rates.update({code.upper(): rate for code, rate in q.pop("yen_per_unit").items()})
    return QueueSettings(**q, character_name=character.name, character_aliases=tuple(character.aliases),
                         yen_per_unit=tuple(rates.items()))


def generation_options(character: Character) -> GenerationOptions:
    g = character.generation.model_dump(exclude={"cut_long_replies", "avoid_recent"})
    keep = (character.name, character.first_person, *character.aliases, *character.sentence_endings)
    return GenerationOptions(**g, stop_strings=(*character.prompt_template.stop_strings, *character.stop_strings),
                             avoid_keep=tuple(dict.fromkeys(k for k in keep if k.strip())))


def prompt_builder(character: Character, engine: EngineInfo | None = None) -> PromptBuilder:
    """The character's prompt builder; the `chat` template needs the engine's chat template."""
    return PromptBuilder(character.prompt_template, character.persona, viewer_names=character.prompt.viewer_names,
                         chat_template=engine.chat_template if engine else None,
                         special_tokens=dict(engine.special_tokens) if engine else None,
                         memory=character.prompt.memory)


def check_stages(character: Character) -> None:
    """Build every stage's settings, so that a mistake (an NG entry that is not a valid regular
    expression...) is a ConfigError naming the key before any model loads."""
    try:
        Moderator(moderation_settings(character))
    except ConfigError as exc:
        raise ConfigError(f"'moderation.ng_words': {exc}") from exc
    queue_settings(character)
    generation_options(character)

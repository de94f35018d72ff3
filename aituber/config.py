"""Settings, loaded once at the entry point: the character folder and the run's options."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aituber.core.prompt import TEMPLATES, Template
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
    max_size: int = Field(20, ge=1)
    max_age_s: float = Field(60.0, gt=0)
    paid_max_wait_s: float = Field(45.0, gt=0)
    thanks_burst_size: int = Field(3, ge=0)


class PromptConfig(_Strict):
    viewer_names: bool = True
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
    stop_strings: list[str] = []
    generation: GenerationSettings = GenerationSettings()
    prompt: PromptConfig = PromptConfig()
    moderation: ModerationConfig = ModerationConfig()
    queue: QueueConfig = QueueConfig()
    idle: IdleConfig = IdleConfig()
    model: ModelConfig = ModelConfig()
    training: dict[str, int | float | bool | str] = {}
    """LoRA training settings (see training/settings.py: TrainSettings); checked by `aituber train`."""

    @property
    def prompt_template(self) -> Template:
        return TEMPLATES[self.template]


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
    return CharacterFolder(path=path, character=character)

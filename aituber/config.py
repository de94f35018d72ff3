"""A character's settings: the character folder's `character.toml`, read and checked once at the entry
point, and each pipeline stage's settings built from its section (shared by the bot and training, which
must ask the model exactly as the bot does).

A section's keys are the fields of its stage's settings (`[moderation]` -> ModerationSettings, `[queue]`
-> QueueSettings, `[generation]` -> GenerationOptions), passed through by name: a new setting is a field
in the stage's settings and one here.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aituber.core.moderation import ModerationSettings, Moderator
from aituber.core.prompt import CHAT, INSTRUCTION, TEMPLATES, MemoryForm, PromptBuilder, PromptForm, Template
from aituber.core.selection import QueueSettings
from aituber.engine.base import EngineInfo, EngineSettings, GenerationOptions
from aituber.errors import ConfigError
from aituber.voice.base import VoiceSettings
from aituber.voice.registry import NO_VOICE, VOICES

if TYPE_CHECKING:
    from aituber.voice.clauses import ClauseSplitter
    from aituber.voice.reading import ReadingRules

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
    max_moderated_chars: int = Field(2000, ge=1)


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


class ObsConfig(_Strict):
    """OBS scene control (`aituber.outputs.obs`), used only with `--obs ws://HOST:4455`. Names are OBS's
    own scene and source names; an unset one is left alone."""

    online_scene: str | None = Field(None, min_length=1)
    """The scene while the bot is online (at start and on resume); unset: back to the scene that was
    on when the bot paused."""
    paused_scene: str | None = Field(None, min_length=1)
    """The scene while paused (`!pause`): a "BRB" scene."""
    offline_scene: str | None = Field(None, min_length=1)
    """The scene when the run ends."""
    speaking_source: str | None = Field(None, min_length=1)
    """A source shown while a reply is presented (an avatar, a "speaking" badge), hidden otherwise."""
    speaking_scene: str | None = Field(None, min_length=1)
    """The scene that holds `speaking_source` (default: `online_scene`, else the current scene)."""
    speech_chars_per_s: float | None = Field(None, gt=0)
    """With a voice: keep the source shown until the reply could have been spoken at this many
    characters a second (counted from its start); unset: hidden when the reply ends."""
    speaking_min_s: float = Field(1.0, ge=0)
    """The source stays shown at least this long per reply (a short fixed reply would only flash)."""


class VoiceConfig(_Strict):
    """`[voice]`: how the character speaks (aituber.voice; every key is commented in the sample character)."""

    engine: str = "openjtalk"
    url: str = "http://127.0.0.1:50021"
    speaker: str | int | None = None
    style: str | None = None
    speed: float = Field(1.0, ge=0.5, le=2.0)
    pitch: float = Field(0.0, ge=-0.15, le=0.15)
    intonation: float = Field(1.0, ge=0.0, le=2.0)
    volume: float = Field(1.0, ge=0.0, le=2.0)
    pre_silence_s: float | None = Field(None, ge=0.0, le=1.5)
    post_silence_s: float | None = Field(None, ge=0.0, le=1.5)
    synthesis_timeout_s: float = Field(5.0, gt=0.0, le=60.0)
    clause_min_chars: int = Field(10, ge=1, le=200)
    first_clause_min_chars: int = Field(4, ge=1, le=200)
    first_clause_max_chars: int | None = Field(10, ge=1, le=200)
    """A first clause longer than this without a mark is cut at a phrase end (None: never)."""
    clause_max_chars: int = Field(60, ge=1, le=500)
    laughter: str = "あはは"
    english_katakana: bool = True

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        if value not in VOICES and value != NO_VOICE:
            raise ValueError(f"unknown voice engine {value!r}; known: {', '.join([*VOICES, NO_VOICE])}")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^\s/?#]+(:\d+)?/?", value):
            raise ValueError(f"{value!r} is not an engine address like http://127.0.0.1:50021")
        return value

    @field_validator("clause_max_chars")
    @classmethod
    def _max_over_min(cls, value: int, info: Any) -> int:
        low = info.data.get("clause_min_chars", 1)
        if value < low:
            raise ValueError(f"must be at least clause_min_chars ({low})")
        return value


class EngineConfig(_Strict):
    """`[engine]`: which engine answers (`--engine` and the `--engine-*` options override it). Every key but
    `kind` is for the remote `openai` engine (aituber.engine.openai)."""

    kind: str = "ctranslate2"
    url: str | None = None
    """The OpenAI-compatible server: http://HOST:PORT/v1 (vLLM, llama.cpp, Ollama...)."""
    model: str | None = None
    """The served model's name; default: the first one the server lists."""
    api: Literal["chat", "completions"] = "chat"
    """chat: messages, the server applies the model's chat template; completions: the character's
    own template, rendered here."""
    api_key_env: str = Field("AITUBER_ENGINE_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """The environment variable that holds the API key (the key itself never goes in this file)."""
    fallback: Literal["none", "local"] = "none"
    """local: when the server is down at start, answer with the local CTranslate2 model instead."""
    connect_timeout_s: float = Field(5.0, gt=0)
    first_token_timeout_s: float = Field(60.0, gt=0)
    read_timeout_s: float = Field(30.0, gt=0)
    reply_timeout_s: float = Field(120.0, gt=0)
    extended_sampling: bool = True
    """Send top_k, the repetition penalty and every stop string (false for OpenAI's own API)."""

    @model_validator(mode="before")
    @classmethod
    def _no_secret_here(cls, data: Any) -> Any:
        if isinstance(data, dict) and {"api_key", "key", "token"} & set(data):
            raise ValueError("the API key never goes in the character file: put it in an environment variable "
                             "and name that variable with api_key_env (default AITUBER_ENGINE_API_KEY)")
        return data

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        from aituber.engine.registry import ENGINES

        if value not in ENGINES:
            raise ValueError(f"unknown engine {value!r} (known: {', '.join(ENGINES)})")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            from aituber.engine.openai import normalize_url

            try:
                normalize_url(value)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return value


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
    obs: ObsConfig = ObsConfig()
    voice: VoiceConfig = VoiceConfig()
    engine: EngineConfig = EngineConfig()
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
    """The character's prompt builder; the `chat` template needs the engine's chat template, except for
    an engine that takes messages (the server applies the model's template, nothing is rendered here)."""
    template = character.prompt_template
    if template is CHAT and engine is not None and engine.prompt_form is PromptForm.MESSAGES \
            and not engine.chat_template:
        template = INSTRUCTION  # never rendered: messages are built the same for every template
    return PromptBuilder(template, character.persona, viewer_names=character.prompt.viewer_names,
                         chat_template=engine.chat_template if engine else None,
                         special_tokens=dict(engine.special_tokens) if engine else None,
                         memory=character.prompt.memory)


def engine_settings(character: Character, local: Callable[[], EngineSettings], *, kind: str | None = None,
                    url: str | None = None, model: str | None = None, api: str | None = None,
                    environ: Mapping[str, str] | None = None) -> EngineSettings:
    """The run's engine: the command line (`kind`, `url`, `model`, `api`; None = not given) over the
    character's `[engine]`. `local()` builds the local CTranslate2 engine's settings (it may prepare the
    default model): the engine itself, or the remote engine's fallback. The API key is read from
    `environ` here, at the entry point, and travels only in the options."""
    e = character.engine
    kind = kind or e.kind
    if kind != "openai":
        settings = local()
        return settings if settings.kind == kind else EngineSettings(
            kind=kind, model=settings.model, device=settings.device, compute_type=settings.compute_type,
            threads=settings.threads, cache_prefix=settings.cache_prefix)
    url = url or e.url
    if not url:
        raise ConfigError("the openai engine needs the server's address: --engine-url URL, or url in the "
                          "character's [engine]")
    api = api or e.api
    if api == "completions" and character.prompt_template is CHAT:
        raise ConfigError("template 'chat' needs the model's chat template, which only the server has: use "
                          "api = \"chat\" (--engine-api chat), or another template with the completions api")
    options: dict[str, Any] = {
        "url": url, "api": api, "api_key_env": e.api_key_env, "connect_timeout_s": e.connect_timeout_s,
        "first_token_timeout_s": e.first_token_timeout_s, "read_timeout_s": e.read_timeout_s,
        "reply_timeout_s": e.reply_timeout_s, "extended_sampling": e.extended_sampling}
    key = (environ or {}).get(e.api_key_env)
    if key:
        from aituber.engine.openai import ApiKey

        options["api_key"] = ApiKey(key)
    if e.fallback == "local":
        options["fallback"] = local()
    return EngineSettings(kind="openai", model=model or e.model or "", options=options)


def voice_settings(character: Character, *, engine: str | None = None, url: str | None = None) -> VoiceSettings:
    """The character's voice engine settings; `engine`/`url` override the file (command line)."""
    v = character.voice
    return VoiceSettings(engine=engine or v.engine, url=url or v.url, speaker=v.speaker, style=v.style,
                         speed=v.speed, pitch=v.pitch, intonation=v.intonation, volume=v.volume,
                         pre_silence_s=v.pre_silence_s, post_silence_s=v.post_silence_s,
                         timeout_s=v.synthesis_timeout_s)


def reading_rules(character: Character) -> ReadingRules:
    """How the character's text is read aloud (laughter, English words)."""
    from aituber.voice.english import to_katakana
    from aituber.voice.reading import ReadingRules, no_english

    return ReadingRules(laughter=character.voice.laughter,
                        english=to_katakana if character.voice.english_katakana else no_english)


def clause_splitter(character: Character) -> ClauseSplitter:
    """Where the character's replies are cut for speech (a new splitter for each reply)."""
    from aituber.core.morphemes import phrase_ends
    from aituber.voice.clauses import ClauseSplitter

    v = character.voice
    return ClauseSplitter(v.clause_min_chars, v.clause_max_chars, v.first_clause_min_chars,
                          first_max_chars=v.first_clause_max_chars, phrase_ends=phrase_ends)


def check_stages(character: Character) -> None:
    """Build every stage's settings, so that a mistake (an NG entry that is not a valid regular
    expression...) is a ConfigError naming the key before any model loads."""
    try:
        Moderator(moderation_settings(character))
    except ConfigError as exc:
        raise ConfigError(f"'moderation.ng_words': {exc}") from exc
    queue_settings(character)
    generation_options(character)

"""A character's settings as each pipeline stage takes them. Shared by the bot and by training
(which must ask the model exactly as the bot does), without importing the pipeline's outputs."""

from __future__ import annotations

from aituber.config import Character
from aituber.core.moderation import ModerationSettings
from aituber.core.prompt import PromptBuilder
from aituber.core.selection import QueueSettings
from aituber.engine.generator import Engine, GenerationOptions


def moderation_settings(character: Character) -> ModerationSettings:
    m = character.moderation
    return ModerationSettings(
        max_comment_chars=m.max_comment_chars, truncate_long=m.truncate_long, ng_words=tuple(m.ng_words),
        use_builtin_ng_words=m.use_builtin_ng_words, output_ng_action=m.output_ng_action,
        block_urls=m.block_urls, max_answers_per_viewer=m.max_answers_per_viewer,
        viewer_window_s=m.viewer_window_s, blocked_viewers=tuple(m.blocked_viewers),
        near_duplicate_window_s=m.near_duplicate_window_s, near_duplicate_similarity=m.near_duplicate_similarity,
        flood_threshold=m.flood_threshold, flood_window_s=m.flood_window_s, character_name=character.name,
    )


def queue_settings(character: Character) -> QueueSettings:
    q = character.queue
    return QueueSettings(max_size=q.max_size, max_age_s=q.max_age_s, character_name=character.name,
                         character_aliases=tuple(character.aliases), paid_max_wait_s=q.paid_max_wait_s,
                         thanks_burst_size=q.thanks_burst_size)


def generation_options(character: Character) -> GenerationOptions:
    g = character.generation
    return GenerationOptions(
        max_new_tokens=g.max_new_tokens, max_chars=g.max_chars, temperature=g.temperature, top_k=g.top_k,
        top_p=g.top_p, repetition_penalty=g.repetition_penalty, no_repeat_ngram_size=g.no_repeat_ngram_size,
        stop_strings=(*character.prompt_template.stop_strings, *character.stop_strings),
        static_prompt=character.prompt.static_prompt,
    )


def prompt_builder(character: Character, engine: Engine | None) -> PromptBuilder:
    tokenizer = engine.tokenizer if engine is not None else None
    return PromptBuilder(character.prompt_template, character.persona, viewer_names=character.prompt.viewer_names,
                         chat_template=tokenizer.chat_template if tokenizer else None,
                         special_tokens=tokenizer.special_tokens if tokenizer else None)

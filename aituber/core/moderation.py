"""Decides whether a comment may reach the prompt, and cleans what the model says. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from aituber.core.comment import Comment


@dataclass(frozen=True, slots=True)
class ModerationSettings:
    max_comment_chars: int = 200
    truncate_long: bool = False
    ng_words: tuple[str, ...] = ()
    use_builtin_ng_words: bool = True
    output_ng_action: str = "mask"
    block_urls: bool = True
    max_answers_per_viewer: int = 3
    viewer_window_s: float = 300.0
    blocked_viewers: tuple[str, ...] = ()
    near_duplicate_window_s: float = 60.0
    flood_threshold: int = 4
    flood_window_s: float = 30.0
    character_name: str = ""


@dataclass(frozen=True, slots=True)
class OutputVerdict:
    text: str
    dropped: bool
    hits: tuple[str, ...]


class Moderator:
    def __init__(self, settings: ModerationSettings) -> None:
        self.settings = settings
        self._blocked: set[str] = set(settings.blocked_viewers)

    def check(self, comment: Comment, now: float) -> str | None:
        text = comment.text.strip()
        if not text:
            return "empty"
        if len(text) > self.settings.max_comment_chars and not self.settings.truncate_long:
            return "too_long"
        return None

    def prompt_text(self, comment: Comment) -> str:
        return comment.text.strip()[: self.settings.max_comment_chars]

    def note_answered(self, comment: Comment, now: float) -> None:
        pass

    def filter_output(self, text: str) -> OutputVerdict:
        return OutputVerdict(text=text, dropped=False, hits=())

    def block(self, name_or_channel_id: str) -> None:
        self._blocked.add(name_or_channel_id)

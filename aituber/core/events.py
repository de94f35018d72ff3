"""Events the pipeline emits to its outputs (overlay, MQTT, console, transcript)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aituber.core.comment import Comment


@dataclass(frozen=True, slots=True)
class RunStarted:
    """The first event of a run: who speaks, from which chat, with which model."""

    character: str
    source: str
    model: str
    """The engine's model (folder or served name)."""
    engine: str = ""
    """The engine kind ("ctranslate2", ...)."""


@dataclass(frozen=True, slots=True)
class CommentSeen:
    comment: Comment


@dataclass(frozen=True, slots=True)
class CommentSkipped:
    comment: Comment
    reason: str


@dataclass(frozen=True, slots=True)
class CommentSelected:
    comment: Comment
    reply_id: str
    queued_s: float
    """How long the comment waited in the queue."""


@dataclass(frozen=True, slots=True)
class ReplyStarted:
    reply_id: str
    comment_id: str


@dataclass(frozen=True, slots=True)
class ReplyDelta:
    reply_id: str
    text: str


@dataclass(frozen=True, slots=True)
class ReplyEnded:
    reply_id: str
    comment_id: str
    text: str
    """The final reply: the deltas joined; shorter only when a reply that ran over the length limit
    was cut at its last complete sentence (stop_reason "length")."""
    stop_reason: str
    """"stop" (end token or stop string), "length", "cancelled", "filtered" or "error"."""
    first_token_s: float | None
    """Selected -> first delta; None when the reply is empty."""
    total_s: float
    """Selected -> the end of generation (not counting a wait for the outputs to finish presenting the
    reply before it, e.g. speech)."""
    tokens: int


@dataclass(frozen=True, slots=True)
class ReplySentence:
    """A complete sentence of the reply (split on 。！？!? and newlines), for TTS; the last one may
    lack a final mark."""

    reply_id: str
    text: str
    index: int


@dataclass(frozen=True, slots=True)
class ReplyCancelled:
    """The reply was withdrawn (`!skip`, an NG word with the drop setting): clear it from screens.
    A `ReplyEnded` with the same stop reason follows, for statistics and the transcript."""

    reply_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """A clause of a reply starts being spoken now (the voice output). Subtitles show `text` now;
    `audio` (a WAV) plays now. Without audio the clause is shown unspoken (`silent_reason`)."""

    reply_id: str
    index: int
    """0-based, per reply."""
    text: str
    """The clause as shown (a slice of the reply text)."""
    duration_s: float
    """How long it plays; 0 without audio."""
    started_at: float
    """Unix time."""
    clause_at: float
    """Unix time when the clause was complete (its text was all there)."""
    synthesis_s: float | None
    """How long its synthesis took; None when it was not synthesised."""
    audio: bytes | None = field(default=None, repr=False, compare=False)
    silent_reason: str = ""
    """Why there is no audio: "empty" (nothing to read), "unavailable" (engine down), "timeout", "error"."""


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """A clause finished playing, or was stopped (`!skip`): for the transcript."""

    reply_id: str
    index: int
    text: str
    clause_at: float
    synthesis_s: float | None
    started_at: float
    ended_at: float
    duration_s: float
    spoken: bool
    """It had audio."""
    stopped: bool
    """Cut short (the reply was withdrawn, the run stopped)."""
    silent_reason: str = ""


@dataclass(frozen=True, slots=True)
class VoiceStatus:
    """The voice output's engine became available (at start, or back after a failure) or not."""

    engine: str
    available: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class StatusChanged:
    status: str
    """"online", "paused" or "offline"."""


@dataclass(frozen=True, slots=True)
class CommandExecuted:
    """A moderator's command (chat, MQTT or the control panel) was carried out, or could not be."""

    command: str
    """One of aituber.core.commands.COMMANDS."""
    arg: str
    source: str
    """"chat", "mqtt" or "panel"."""
    author: str = ""
    """Who typed it in chat; "" otherwise."""
    ok: bool = True
    """False when it changed nothing it was meant to ("next" for a comment no longer waiting, "skip"
    with nothing to skip, a bad NG word); `detail` says why."""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RunEnded:
    """The last event of a run, with its counts."""

    seen: int
    answered: int
    skipped: Mapping[str, int] = field(default_factory=dict)
    interrupted: bool = False


Event = (RunStarted | CommentSeen | CommentSkipped | CommentSelected | ReplyStarted | ReplyDelta | ReplySentence
         | ReplyCancelled | ReplyEnded | SpeechStarted | SpeechEnded | VoiceStatus | StatusChanged | CommandExecuted
         | RunEnded)

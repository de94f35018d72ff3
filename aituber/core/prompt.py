"""Prompt building: the character's persona, then the comment in the character's template. No I/O."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    turn: str
    """The comment turn, with {comment} in it; the model writes right after it."""
    stop_strings: tuple[str, ...]
    """Decoded text at which a reply ends (the next turn's marker, a blank line)."""


# The seed's format: what the sample character's LoRA is trained on.
INSTRUCTION = Template(
    name="instruction",
    turn="### instruction:\n{comment}\n\n### output:\n",
    stop_strings=("###", "\n\n"),
)

TEMPLATES: dict[str, Template] = {t.name: t for t in (INSTRUCTION,)}


def build_prompt(template: Template, persona: str, comment_text: str) -> str:
    """Persona first, then the comment turn. The comment must already be made safe by moderation."""
    head = persona.strip()
    turn = template.turn.format(comment=comment_text.strip())
    return f"{head}\n\n{turn}" if head else turn

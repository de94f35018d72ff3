"""Prompt building, shared by the bot and by training: the model is asked exactly as it was taught.

Persona first (a fixed prefix: CTranslate2 caches it as a static prompt), then a short memory of
the last exchanges, then the comment with the viewer's name, in the character's template. No I/O:
token counting and the model's chat template come in as values.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from os.path import commonprefix


class PromptForm(enum.StrEnum):
    """What an engine takes (`EngineInfo.prompt_form`)."""

    TEXT = "text"
    """A rendered prompt in the character's template (`Prompt.text`, split into static and dynamic)."""
    MESSAGES = "messages"
    """Chat messages (`Prompt.messages`: the persona as system, memory as turns, the comment last)."""


Message = Mapping[str, str]
"""A chat message: {"role": "system" | "user" | "assistant", "content": text}."""


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    stop_strings: tuple[str, ...]
    """Decoded text at which a reply ends (the next turn's marker, a blank line)."""


INSTRUCTION = Template("instruction", stop_strings=("###", "\n\n"))
"""The seed's format: `### instruction:` / `### input:` / `### output:`."""
RINNA = Template("rinna", stop_strings=("ユーザー:", "システム:", "<NL>", "\n"))
"""rinna's japanese-gpt-neox instruction format: `ユーザー: …<NL>システム: …`, newlines as `<NL>`."""
CHAT = Template("chat", stop_strings=())
"""The tokenizer's own chat template (instruction-tuned models); the end-of-turn token stops it."""

TEMPLATES: dict[str, Template] = {t.name: t for t in (INSTRUCTION, RINNA, CHAT)}

VIEWER_INPUT = "視聴者名: {name}"
"""How the viewer's name is given in the seed format's `### input:` (the training data uses it too)."""


@dataclass(frozen=True, slots=True)
class Turn:
    """One past exchange, for memory."""

    comment: str
    reply: str
    viewer: str | None = None


@dataclass(frozen=True, slots=True)
class Prompt:
    static: str
    """The fixed persona prefix: the same for every comment of a character."""
    dynamic: str
    """Memory and this comment, ending where the model writes."""
    messages: tuple[Message, ...] = ()
    """The same as chat messages, for engines that take messages (PromptForm.MESSAGES); else empty."""

    @property
    def text(self) -> str:
        return self.static + self.dynamic


def _instruction_turn(comment: str, input_text: str = "") -> str:
    section = f"### input:\n{input_text.strip()}\n\n" if input_text.strip() else ""
    return f"### instruction:\n{comment.strip()}\n\n{section}### output:\n"


def _rinna(text: str) -> str:
    return text.strip().replace("\r\n", "\n").replace("\n", "<NL>")


def render_chat_template(source: str, messages: list[dict[str, str]], special_tokens: dict[str, str]) -> str:
    """Render a Hugging Face chat template (Jinja) with a generation prompt."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise jinja2.TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(source).render(messages=messages, add_generation_prompt=True, **special_tokens)


class PromptBuilder:
    """Formats comments (and training examples) in one character's template."""

    def __init__(self, template: Template, persona: str = "", *, viewer_names: bool = True,
                 chat_template: str | None = None, special_tokens: dict[str, str] | None = None) -> None:
        if template is CHAT and not chat_template:
            raise ValueError("the 'chat' template needs the model's chat template (tokenizer_config.json)")
        self.template = template
        self.persona = persona.strip()
        self.viewer_names = viewer_names
        self._chat_template = chat_template
        self._special = special_tokens or {}

    @property
    def stop_strings(self) -> tuple[str, ...]:
        return self.template.stop_strings

    def build(self, comment: str, viewer: str | None = None, history: Sequence[Turn] = (),
              form: PromptForm = PromptForm.TEXT) -> Prompt:
        """The prompt for one comment (already made safe by moderation), in the form the engine takes."""
        name = viewer if self.viewer_names else None
        if form is PromptForm.MESSAGES:
            return Prompt("", "", tuple(self.messages(comment, name, history)))
        if self.template is CHAT:
            return self._chat(comment, name, history)
        if self.template is RINNA:
            static = f"{_rinna(self.persona)}<NL>" if self.persona else ""
            lines = []
            for turn in history:
                lines.append(f"ユーザー: {self._named(turn.comment, turn.viewer if self.viewer_names else None)}")
                lines.append(f"システム: {_rinna(turn.reply)}")
            lines.append(f"ユーザー: {self._named(comment, name)}")
            return Prompt(static, "<NL>".join(lines) + "<NL>システム: ")
        static = f"{self.persona}\n\n" if self.persona else ""
        past = "".join(
            _instruction_turn(t.comment, self._viewer_input(t.viewer if self.viewer_names else None))
            + f"{t.reply.strip()}\n\n"
            for t in history
        )
        return Prompt(static, past + _instruction_turn(comment, self._viewer_input(name)))

    def training_example(self, instruction: str, output: str, input_text: str = "",
                         history: Sequence[Turn] = ()) -> tuple[str, str]:
        """(prompt, completion) for one dataset example: the loss goes on the completion only.
        The caller appends the end token to the completion."""
        if self.template is INSTRUCTION:
            static = f"{self.persona}\n\n" if self.persona else ""
            past = "".join(
                _instruction_turn(t.comment, self._viewer_input(t.viewer if self.viewer_names else None))
                + f"{t.reply.strip()}\n\n"
                for t in history
            )
            return static + past + _instruction_turn(instruction, input_text), output.strip()
        comment = f"{input_text.strip()}\n{instruction}" if input_text.strip() else instruction
        prompt = PromptBuilder(self.template, self.persona, viewer_names=False,
                               chat_template=self._chat_template, special_tokens=self._special)
        completion = _rinna(output) if self.template is RINNA else output.strip()
        return prompt.build(comment, None, history).text, completion

    def _viewer_input(self, viewer: str | None) -> str:
        return VIEWER_INPUT.format(name=viewer.strip()) if viewer and viewer.strip() else ""

    @staticmethod
    def _named(comment: str, viewer: str | None) -> str:
        text = _rinna(comment)
        return f"（{viewer.strip()}）{text}" if viewer and viewer.strip() else text

    def messages(self, comment: str, viewer: str | None = None, history: Sequence[Turn] = (), *,
                 user_text: str | None = None) -> list[dict[str, str]]:
        """Chat messages: the persona as the system message, memory as turns, the comment (with the
        viewer's name) last; `user_text` replaces the last message's text as given."""
        msgs = [{"role": "system", "content": self.persona}] if self.persona else []
        for t in history:
            msgs.append({"role": "user", "content": self._chat_user(t.comment, t.viewer)})
            msgs.append({"role": "assistant", "content": t.reply.strip()})
        msgs.append({"role": "user", "content": self._chat_user(comment, viewer) if user_text is None else user_text})
        return msgs

    def _chat(self, comment: str, viewer: str | None, history: Sequence[Turn]) -> Prompt:
        assert self._chat_template is not None
        full = render_chat_template(self._chat_template, self.messages(comment, viewer, history), self._special)
        # The static part is what every comment shares: the rendering up to where the turns differ.
        a = render_chat_template(self._chat_template, self.messages("", None, history, user_text="\x00a"),
                                 self._special)
        b = render_chat_template(self._chat_template, self.messages("", None, history, user_text="\x00b"),
                                 self._special)
        static = commonprefix([a, b]) if not history else ""
        static = static[: static.rfind("\n") + 1] if "\n" in static else ""
        if not full.startswith(static):
            static = ""
        return Prompt(static, full[len(static):])

    def _chat_user(self, comment: str, viewer: str | None) -> str:
        return f"{viewer.strip()}: {comment.strip()}" if viewer and self.viewer_names else comment.strip()


def select_history(turns: Sequence[Turn], count_tokens: Callable[[str], int], budget_tokens: int) -> list[Turn]:
    """The most recent turns whose text fits in the token budget, oldest first."""
    chosen: list[Turn] = []
    used = 0
    for turn in reversed(turns):
        cost = count_tokens(turn.comment) + count_tokens(turn.reply) + 8  # + template markers
        if used + cost > budget_tokens:
            break
        chosen.append(turn)
        used += cost
    chosen.reverse()
    return chosen

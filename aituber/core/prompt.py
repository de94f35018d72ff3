"""Prompt building, shared by the bot and by training: the model is asked exactly as it was taught.

Persona first (a fixed prefix: CTranslate2 caches it as a static prompt), then a short memory of
the last exchanges, then the comment with the viewer's name, in the character's template. No I/O:
token counting and the model's chat template come in as values.

Memory takes one of two forms (`MemoryForm`, the character's `[prompt] memory`): the earlier
exchanges as whole turns, the character's replies included ("replies"), or only the viewers' earlier
comments, one line each in the current comment's input section ("comments"): a small model shown its
own earlier replies copies them, one shown only what viewers said cannot.
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
MEMORY_LINE = "前のコメント: {named}"
"""One remembered comment, in the "comments" memory form; `{named}` is `NAME「TEXT」` (or `「TEXT」`)."""


class MemoryForm(enum.StrEnum):
    """What the prompt shows of the earlier exchanges (`[prompt] memory`)."""

    REPLIES = "replies"
    """Each earlier exchange as a whole turn: the viewer's comment and the character's reply."""
    COMMENTS = "comments"
    """Only the viewers' earlier comments (with their names), as lines of the current input section;
    the character's own earlier replies are not shown, so the model cannot copy them."""


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
                 chat_template: str | None = None, special_tokens: dict[str, str] | None = None,
                 memory: MemoryForm | str = MemoryForm.COMMENTS) -> None:
        if template is CHAT and not chat_template:
            raise ValueError("the 'chat' template needs the model's chat template (tokenizer_config.json)")
        self.template = template
        self.persona = persona.strip()
        self.viewer_names = viewer_names
        self.memory = MemoryForm(memory)
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
        turns, notes = self._split_memory(history)
        if self.template is RINNA:
            static = f"{_rinna(self.persona)}<NL>" if self.persona else ""
            lines = []
            for turn in turns:
                lines.append(f"ユーザー: {self._named(turn.comment, turn.viewer if self.viewer_names else None)}")
                lines.append(f"システム: {_rinna(turn.reply)}")
            lines.append(f"ユーザー: {_rinna(_inline(notes))}{self._named(comment, name)}")
            return Prompt(static, "<NL>".join(lines) + "<NL>システム: ")
        static = f"{self.persona}\n\n" if self.persona else ""
        return Prompt(static, self._instruction_past(turns)
                      + _instruction_turn(comment, _join_input(self._viewer_input(name), notes)))

    def training_example(self, instruction: str, output: str, input_text: str = "",
                         history: Sequence[Turn] = ()) -> tuple[str, str]:
        """(prompt, completion) for one dataset example: the loss goes on the completion only.
        The caller appends the end token to the completion. `history` is the memory the bot would
        show (each turn with its viewer's name), rendered in this builder's memory form."""
        if self.template is INSTRUCTION:
            static = f"{self.persona}\n\n" if self.persona else ""
            turns, notes = self._split_memory(history)
            return (static + self._instruction_past(turns)
                    + _instruction_turn(instruction, _join_input(input_text, notes)), output.strip())
        comment = f"{input_text.strip()}\n{instruction}" if input_text.strip() else instruction
        prompt = PromptBuilder(self.template, self.persona, viewer_names=False,
                               chat_template=self._chat_template, special_tokens=self._special, memory=self.memory)
        completion = _rinna(output) if self.template is RINNA else output.strip()
        return prompt.build(comment, None, history).text, completion

    def _split_memory(self, history: Sequence[Turn]) -> tuple[Sequence[Turn], list[str]]:
        """(turns shown whole, comment lines): the memory in this builder's form."""
        if self.memory is MemoryForm.REPLIES:
            return history, []
        return (), [MEMORY_LINE.format(named=self._quoted(t.comment, t.viewer if self.viewer_names else None))
                    for t in history]

    def _instruction_past(self, turns: Sequence[Turn]) -> str:
        return "".join(
            _instruction_turn(t.comment, self._viewer_input(t.viewer if self.viewer_names else None))
            + f"{t.reply.strip()}\n\n"
            for t in turns
        )

    def _viewer_input(self, viewer: str | None) -> str:
        return VIEWER_INPUT.format(name=viewer.strip()) if viewer and viewer.strip() else ""

    @staticmethod
    def _quoted(comment: str, viewer: str | None) -> str:
        text = " ".join(comment.split())
        return f"{viewer.strip()}「{text}」" if viewer and viewer.strip() else f"「{text}」"

    @staticmethod
    def _named(comment: str, viewer: str | None) -> str:
        text = _rinna(comment)
        return f"（{viewer.strip()}）{text}" if viewer and viewer.strip() else text

    def messages(self, comment: str, viewer: str | None = None, history: Sequence[Turn] = (), *,
                 user_text: str | None = None) -> list[dict[str, str]]:
        """Chat messages: the persona as the system message, memory as turns (or, in the "comments"
        form, as a note before the comment), the comment (with the viewer's name) last; `user_text`
        replaces the last message's text as given."""
        msgs = [{"role": "system", "content": self.persona}] if self.persona else []
        turns, notes = self._split_memory(history)
        for t in turns:
            msgs.append({"role": "user", "content": self._chat_user(t.comment, t.viewer)})
            msgs.append({"role": "assistant", "content": t.reply.strip()})
        if user_text is None:
            user_text = _inline(notes) + self._chat_user(comment, viewer)
        msgs.append({"role": "user", "content": user_text})
        return msgs

    def _chat(self, comment: str, viewer: str | None, history: Sequence[Turn]) -> Prompt:
        assert self._chat_template is not None
        full = render_chat_template(self._chat_template, self.messages(comment, viewer, history), self._special)
        # The static part is what every comment shares: the rendering up to where the turns differ.
        a = render_chat_template(self._chat_template, self.messages("", None, (), user_text="\x00a"),
                                 self._special)
        b = render_chat_template(self._chat_template, self.messages("", None, (), user_text="\x00b"),
                                 self._special)
        static = commonprefix([a, b])
        static = static[: static.rfind("\n") + 1] if "\n" in static else ""
        if not full.startswith(static):
            static = ""
        return Prompt(static, full[len(static):])

    def _chat_user(self, comment: str, viewer: str | None) -> str:
        return f"{viewer.strip()}: {comment.strip()}" if viewer and self.viewer_names else comment.strip()


def _join_input(first: str, notes: Sequence[str]) -> str:
    """The input section: the given context (the viewer's name) first, then the remembered comments."""
    return "\n".join(part for part in (first.strip(), *notes) if part)


def _inline(notes: Sequence[str]) -> str:
    """The remembered comments as one parenthesised line before a comment (rinna, chat messages)."""
    return f"（{' / '.join(notes)}）" if notes else ""


def select_history(turns: Sequence[Turn], count_tokens: Callable[[str], int], budget_tokens: int,
                   memory: MemoryForm | str = MemoryForm.REPLIES) -> list[Turn]:
    """The most recent turns whose text fits in the token budget, oldest first; in the "comments"
    form a turn costs only its comment and name (its reply is not shown)."""
    form = MemoryForm(memory)
    chosen: list[Turn] = []
    used = 0
    for turn in reversed(turns):
        if form is MemoryForm.COMMENTS:
            cost = count_tokens(turn.comment) + count_tokens(turn.viewer or "") + 6  # + the line's label
        else:
            cost = count_tokens(turn.comment) + count_tokens(turn.reply) + 8  # + template markers
        if used + cost > budget_tokens:
            break
        chosen.append(turn)
        used += cost
    chosen.reverse()
    return chosen

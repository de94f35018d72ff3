"""The model folder's tokenizer, through the `tokenizers` library only (no torch, no transformers)."""

from __future__ import annotations

import json
from pathlib import Path

import tokenizers

from aituber.errors import ModelError


class TextTokenizer:
    """Text <-> CTranslate2 token strings and ids, for the tokenizer.json in a model folder."""

    def __init__(self, model_dir: Path) -> None:
        path = model_dir / "tokenizer.json"
        if not path.is_file():
            raise ModelError(f"{model_dir}: no tokenizer.json (convert the model with 'aituber model convert')")
        try:
            self._tok = tokenizers.Tokenizer.from_file(str(path))
        except Exception as exc:  # the library raises plain Exception subclasses
            raise ModelError(f"{path}: cannot read the tokenizer: {exc}") from exc
        config = _read_json(model_dir / "config.json")
        self.bos_token: str | None = config.get("bos_token")
        self.eos_token: str | None = config.get("eos_token")
        tok_config = _read_json(model_dir / "tokenizer_config.json")
        template_file = model_dir / "chat_template.jinja"
        template = template_file.read_text(encoding="utf-8") if template_file.is_file() else tok_config.get("chat_template")
        self.chat_template: str | None = template if isinstance(template, str) else None
        self.special_tokens = {k: v for k in ("bos_token", "eos_token")
                               if isinstance(v := tok_config.get(k) or config.get(k), str)}

    def encode(self, text: str, bos: bool = True) -> list[str]:
        """Token strings for CTranslate2; with `bos`, the BOS token in front when the model has one."""
        tokens = self._tok.encode(text, add_special_tokens=False).tokens
        if bos and self.bos_token:
            tokens.insert(0, self.bos_token)
        return tokens

    def encode_spans(self, text: str) -> list[tuple[str, int, int]]:
        """(token string, start, end) per token of `text` (no special tokens), the span in characters."""
        encoding = self._tok.encode(text, add_special_tokens=False)
        return [(token, start, end) for token, (start, end) in zip(encoding.tokens, encoding.offsets, strict=True)]

    def count(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=True)

    def has_token(self, token: str) -> bool:
        return self._tok.token_to_id(token) is not None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable: {exc}") from exc

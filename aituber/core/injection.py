"""Prompt injection and template markers in comments, and URLs: detection and neutralisation. Pure, no I/O.

`looks_like_injection` spots obvious attempts ("ignore previous instructions", "前の指示を無視") and
anything imitating the prompt template or special tokens; `neutralize_prompt_text` makes any comment
text safe to put in the prompt; `has_url` finds links, also written with spaces or "(dot)".
"""

from __future__ import annotations

import functools
import re
import unicodedata

from aituber.core.normalize import (
    char_class,
    chars_folding_to,
    katakana_to_hiragana,
    normalize,
    squash,
    strip_invisible,
)

__all__ = ["has_url", "looks_like_injection", "neutralize_prompt_text"]

_TEMPLATE_MARKERS = re.compile(
    r"<\|[^<>]{0,40}\|>"
    r"|<\s*/?\s*(?:start_of_turn|end_of_turn|bos|eos|s|nl|im_start|im_end|system|user|assistant|model)\s*>"
    r"|#{2,}\s*(?:instruction|input|output|response|system|user|assistant|指示|入力|出力|応答|システム|ユーザー)"
    r"|\[/?inst\]",
    re.IGNORECASE,
)
_INJECTION_EN = re.compile(
    r"(?:\b(?:ignore|disregard|forget)(?: (?:all|any|the|your|my|of|previous|prior|above|earlier|preceding|these"
    r"|those|former|system))* (?:instructions?|prompts?|directives)\b"
    r"|\b(?:ignore|disregard) (?:all |your |the |previous |prior |above )+rules\b"
    r"|\bsystem ?prompt\b|\bdeveloper mode\b|\bjailbreak|\bdo anything now\b)"
)
_INJECTION_JA = re.compile(
    "しすてむぷろんぷと"
    "|(?:以前|前|これまで|今まで|上|先|最初)の(?:指示|命令|設定|るーる|ぷろんぷと|制約)を(?:全て|すべて)?(?:無視|忘れ)"
    "|(?:指示|命令|制約|るーる|設定)を(?:全て|すべて)?無視"
    "|ぷろんぷとを(?:表示|教え|見せ|出力|おしえ|みせ)"
)


_MARKER_GATE = re.compile(char_class(chars_folding_to("<#[")))
"""Any character that folds to "<", "#" or "[": only then can a text hold a template marker."""
_URL_GATE = re.compile(char_class([*chars_folding_to(".:/"), ord("。")]))
"""Any character that folds to ".", ":" or "/" (or "。"): with "dot", what every URL pattern needs."""


def _fold_raw(text: str) -> str:
    """Invisible characters removed, NFKC, case folded; separators kept (for URLs and template markers)."""
    return unicodedata.normalize("NFKC", strip_invisible(text)).casefold()


_URL = re.compile(
    r"(?:https?|hxxps?|ftp)\s*:\s*/\s*/\S*"
    r"|www\s*\.\s*[a-z0-9]\S*"
    r"|\b[a-z0-9][a-z0-9-]{0,62}\s*(?:\.|。|\(dot\)|\[dot\]| dot )\s*"
    r"(?:com|net|org|jp|io|ly|gg|tv|me|co|xyz|info|biz|ru|cn|be|link|site|online|live|app|dev|to|cc|us|uk"
    r"|top|shop|club|fun|vip)\b\S*"
    r"|\b(?:youtu\.be|discord\.gg|bit\.ly|t\.co)/\S*",
    re.IGNORECASE,
)


def has_url(text: str, normalized: str) -> bool:
    """Whether `text` holds a link ("https://...", "www.", "example . com", "example(dot)com");
    `normalized` is `normalize(text)`."""
    if _URL_GATE.search(text) is None and "dot" not in normalized:
        return False
    return _URL.search(_fold_raw(text)) is not None


_INJECTION_GATE = re.compile("ignore|disregard|forget|prompt|developer|jailbreak|anything now|無視|忘れ|ぷろんぷと")
"""Every _INJECTION_EN/_JA match holds one of these words: one fast scan rules most text out."""


def looks_like_injection(text: str, normalized: str | None = None) -> bool:
    """Obvious prompt injection ("ignore previous instructions", "前の指示を無視") or template/special tokens.

    `normalized` (`normalize(text)`) may be passed when already computed.
    """
    norm = normalize(text) if normalized is None else normalized
    if _INJECTION_GATE.search(norm) is not None and (
        _INJECTION_EN.search(norm) is not None or _INJECTION_JA.search(squash(norm)) is not None
    ):
        return True
    return _MARKER_GATE.search(text) is not None and _TEMPLATE_MARKERS.search(_fold_raw(text)) is not None


_BRACKETS = str.maketrans({"<": "＜", ">": "＞", "[": "［", "]": "］", "{": "｛", "}": "｝", "|": "｜"})
_ROLE_WORDS = (
    "ユーザー",
    "ユーザ",
    "ゆーざー",
    "システム",
    "しすてむ",
    "アシスタント",
    "あしすたんと",
    "視聴者",
    "user",
    "system",
    "assistant",
    "model",
    "human",
    "instruction",
    "input",
    "output",
    "response",
)
@functools.cache
def _role_colon(character_name: str) -> re.Pattern[str]:
    words = list(_ROLE_WORDS)
    if character_name.strip():
        name = unicodedata.normalize("NFKC", character_name.strip())
        words += [name, katakana_to_hiragana(name)]
    alternatives = "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))
    return re.compile(rf"({alternatives})\s*:", re.IGNORECASE)


def neutralize_prompt_text(text: str, max_chars: int = 0, character_name: str = "") -> str:
    """Text a comment may put in the prompt: it can never write into the template.

    Invisible characters and line breaks go, "#" is removed, angle/square/curly brackets and "|" become
    full-width, "ROLE:" turn markers lose their colon, URLs become "(URL)", and the result is cut to
    `max_chars` (0 = no limit). No result contains "###", "<|", "<NL>", "\\n\\n" or "ユーザー:".
    """
    text = unicodedata.normalize("NFKC", strip_invisible(text))
    text = text.replace("#", "").translate(_BRACKETS)
    if _URL_GATE.search(text) is not None or "dot" in text.casefold():
        text = _URL.sub("(URL)", text)
    text = " ".join(text.split())
    role = _role_colon(character_name)
    if role.search(text):
        while role.search(text):
            text = role.sub(r"\1 ", text)
        text = " ".join(text.split())
    if max_chars > 0 and len(text) > max_chars:
        text = text[:max_chars].rstrip()
    return text

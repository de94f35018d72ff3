"""Vocabulary trimming: a byte-fallback BPE tokenizer.json cut down to what a Japanese character says.

Gemma 3 270M has a 262,144-token vocabulary; its output layer (640 x 262,144 weights) is read for every
generated token and is most of the model's work per token on a CPU. A Japanese character never needs
most of it (Cyrillic, Devanagari, European words...). `trim_vocabulary(tokenizer_json, "ja")` keeps:

- the special tokens (BOS, EOS, turn markers; not the thousands of `<unusedN>` placeholders);
- the 256 byte tokens `<0x00>`..`<0xFF>`: any character whose token was dropped is spelled in bytes
  (byte fallback), so every text still encodes, and decodes back exactly;
- kana/kanji tokens (with the punctuation, digits and spaces around them), leaving out kanji that
  Japanese is not written with (not in JIS X 0213: simplified Chinese `们`, `这`...);
- punctuation, digit, symbol and emoji tokens, emoji sequences, kaomoji pieces and whitespace runs,
  but of the runs of ASCII punctuation (`!!`, `...`, code such as `}^{\\`) only the first `symbol_tokens`;
- English: the tokens that spell the most frequent English words whole (`english_words()`, wordfreq's
  English list, from subtitles, web text, Twitter and Reddit among others: `▁hello`, `▁lol`, `▁haha`,
  `Hello`, `▁OK`). Gemma's vocabulary is multilingual and its order is not English frequency: in
  vocabulary order `▁hello` is the 12,271st Latin word and `▁raining` the 39,560th, after thousands
  of European words a Japanese stream never sees;
- Latin: every single letter, the first `latin_words` words after a space (`▁YouTube`, `▁iPhone`) and
  the first `latin_pieces` other multi-letter tokens (`www`, `ing`, `AU`) in vocabulary order (the
  order BPE learnt them in); a word kept after a space is kept without it too (`YouTube` beside
  `▁YouTube`), as Japanese text writes it;
- single Greek and Cyrillic letters (kaomoji are made of them: `(´・ω・｀)`, `(´Д｀)`);
- every token the full tokenizer uses for `keep_texts` (a character's persona, prompt template and
  dialogue data: its prompt then encodes exactly as with the full vocabulary);
- every token that BPE passes through on its way to a kept token (see below).

BPE consistency. Encoding splits a text into characters (or, for a character not in the vocabulary,
its bytes) and applies merges, lowest rank first. A trimmed tokenizer keeps a merge only when both
parts and the result are kept. For a text whose full encoding uses only kept tokens to encode the same
way, every intermediate token of those merges must be kept too: so each kept token's own BPE
derivation (run on its string alone, which is what happens to it inside any text) is added to the kept
set. Then any text that the full tokenizer encodes with kept tokens only gets the same tokens from the
trimmed one (renumbered), and any other text still encodes, through byte fallback, to tokens that
decode back to it. The trimmed ids keep the original order (specials stay first).

`full` keeps everything (no trimming). Nothing here imports torch: aituber.engine.convert cuts the
embedding and output rows to `TrimmedVocab.keep`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import regex
import tokenizers

from aituber.errors import ModelError

VOCABS: dict[str, str] = {
    "full": "the model's whole vocabulary",
    "ja": "trimmed to what a Japanese character says (kana/kanji, symbols, emoji, frequent English, byte fallback)",
}
DEFAULT_VOCAB = "full"
VOCAB_VERSIONS: dict[str, int] = {"ja": 2}
"""The version of each trimmed vocabulary's selection, recorded in the model folder's info: a folder
trimmed by an earlier one (`ja` 1: Latin words in vocabulary order, without the English list) is
converted again when asked for. Raise it whenever what `ja` keeps changes."""
ENGLISH_WORDS = 8_000
"""The most frequent English words (`english_words()`) kept by `ja`, as the tokens that spell each one
whole (`_english_forms`: `▁hello`, and for the more frequent ones `▁Hello`, `hello`, `Hello`, `▁OK`)."""
LATIN_WORDS = 4_000
"""Latin words after a space kept by `ja`, the first ones in vocabulary order (beside the English list:
the names and brands it writes in lower case, `▁YouTube`, `▁iPhone`)."""
LATIN_PIECES = 4_000
"""Other multi-letter Latin tokens (`www`, `ing`, `AU`) kept by `ja`, the first in vocabulary order."""
SYMBOL_TOKENS = 2_000
"""Runs of ASCII punctuation (`!!`, `...`, `?!`) kept by `ja`, the most frequent first."""

_BYTE = re.compile(r"<0x([0-9A-F]{2})>")
_UNUSED = re.compile(r"<unused\d+>")
_SPACE = "\u2581"  # SentencePiece's visible space
_JAPANESE = regex.compile(r"[\p{Hiragana}\p{Katakana}\p{Han}\u3000-\u303f\u30fc\uff00-\uffef]")
_HAN = regex.compile(r"\p{Han}")
_LATIN = regex.compile(r"\p{Latin}")
_SYMBOL = regex.compile(r"[\p{Common}\p{Inherited}]")
_KAOMOJI = regex.compile(r"[\p{Greek}\p{Cyrillic}]")

#: Category of a kept token -> what the summary calls it.
CATEGORIES = {
    "special": "special",
    "bytes": "byte fallback",
    "japanese": "kana/kanji",
    "symbols": "punctuation, digits, emoji, spaces",
    "english": "English words",
    "latin": "Latin",
    "kaomoji": "Greek/Cyrillic letters",
    "texts": "the character's texts",
    "derived": "BPE intermediates",
}


@dataclass(frozen=True, slots=True)
class TrimmedVocab:
    """Which tokens of the source vocabulary are kept, and the tokenizer.json rebuilt for them."""

    vocab: str
    keep: tuple[int, ...]
    """Source ids kept, ascending; a kept token's new id is its position here."""
    source_size: int
    tokenizer_json: str
    """The rebuilt tokenizer.json (ids renumbered 0..len(keep)-1)."""
    counts: Mapping[str, int] = field(default_factory=dict)
    """Kept tokens per category (CATEGORIES)."""

    @property
    def size(self) -> int:
        return len(self.keep)

    def new_ids(self) -> dict[int, int]:
        """Source id -> trimmed id, for the kept tokens."""
        return {old: new for new, old in enumerate(self.keep)}

    def describe(self) -> str:
        parts = ", ".join(f"{CATEGORIES[k]} {n:,}" for k, n in self.counts.items() if n)
        return f"{self.vocab}: {self.size:,} of {self.source_size:,} tokens ({parts})"

    def info(self) -> dict[str, Any]:
        """What aituber_model.json records."""
        return {"vocab": self.vocab, "vocab_size": self.size, "source_vocab_size": self.source_size,
                **({"vocab_version": VOCAB_VERSIONS[self.vocab]} if self.vocab in VOCAB_VERSIONS else {})}


def check_vocab(vocab: str) -> str:
    if vocab not in VOCABS:
        raise ModelError(f"unknown vocabulary {vocab!r} (choose from {', '.join(VOCABS)})")
    return vocab


def trim_vocabulary(tokenizer_json: str, vocab: str = "ja", *, keep_texts: Iterable[str] = (),
                    english: Sequence[str] | None = None, latin_words: int = LATIN_WORDS,
                    latin_pieces: int = LATIN_PIECES, symbol_tokens: int = SYMBOL_TOKENS,
                    source: str = "tokenizer.json") -> TrimmedVocab:
    """The tokens `vocab` keeps (see the module doc), with every token the full tokenizer uses for
    `keep_texts`, and the tokenizer.json rebuilt for them. `english`: English words, the most frequent
    first, whose tokens are kept (None: the first ENGLISH_WORDS of `english_words()`). `source` names
    the file in errors."""
    check_vocab(vocab)
    data = json.loads(tokenizer_json)
    model = _check_byte_fallback_bpe(data, source)
    tokens = _id_to_token(data, source)
    if vocab == "full":
        return TrimmedVocab(vocab, tuple(range(len(tokens))), len(tokens), tokenizer_json, {"derived": 0})
    ranks = _merge_ranks(model["merges"])
    ids = {t: i for i, t in enumerate(tokens)}
    special = {a["id"] for a in data.get("added_tokens", []) if a.get("special")}
    category = {i: _category(t, i in special) for i, t in enumerate(tokens)}
    limits = {"words": latin_words, "latin": latin_pieces, "symbols": symbol_tokens}
    frequent: set[str] = set()
    for name, limit in limits.items():
        ranked = [i for i, c in category.items() if c == f"{name}*"]  # ids in vocabulary order: frequent first
        frequent.update(tokens[i] for i in ranked[:limit])
    keep: dict[int, str] = {}
    words = english_words() if english is None else english
    for rank, word in enumerate(words):
        for token in _english_forms(word, rank, len(words)):
            i = ids.get(token)
            if i is not None and category[i] in ("words*", "latin*"):
                keep[i] = "english"
    for i, c in category.items():
        if c is None or i in keep:
            continue
        if c.endswith("*"):  # kept by frequency: among the first, or its twin after a space is
            if tokens[i] in frequent or _SPACE + tokens[i] in frequent:
                keep[i] = "latin" if c == "words*" else c[:-1]
        else:
            keep[i] = c
    unk = model.get("unk_token")
    if unk is not None and unk in ids:
        keep.setdefault(ids[unk], "special")
    texts = [t for t in keep_texts if t]
    if texts:
        full = tokenizers.Tokenizer.from_str(tokenizer_json)
        for encoding in full.encode_batch(texts, add_special_tokens=False):
            for i in encoding.ids:
                keep.setdefault(i, "texts")
    added = {a["id"] for a in data.get("added_tokens", [])}
    for i in list(keep):
        if i in added or category[i] == "bytes":
            continue  # added tokens are matched whole, never built by merges
        for part in bpe_derivation(tokens[i], ids, ranks):
            keep.setdefault(ids[part], "derived")
    kept = tuple(sorted(keep))
    counts = {name: 0 for name in CATEGORIES}
    for i in kept:
        counts[keep[i]] += 1
    return TrimmedVocab(vocab, kept, len(tokens), _rebuild(data, tokens, kept, source), counts)


def english_words(count: int = ENGLISH_WORDS) -> list[str]:
    """The `count` most frequent English words written in ASCII letters (`hello`, `lol`, `youtube`), from
    wordfreq's large English list (Wikipedia, subtitles, news, books, web text, Twitter and Reddit;
    installed with the `prepare` extra, which converting a model needs anyway)."""
    try:
        import wordfreq
    except ImportError as exc:
        raise ModelError("trimming the vocabulary needs wordfreq's list of English words: "
                         "pip install 'aituber[prepare]' (or --vocab full)") from exc
    words: list[str] = []
    for word in wordfreq.iter_wordlist("en", "large"):
        if word.isascii() and word.isalpha():
            words.append(word)
            if len(words) == count:
                break
    return words


def _english_forms(word: str, rank: int, count: int) -> list[str]:
    """The tokens that would spell the `rank`-th of `count` English words whole, as chat writes it:
    `▁hello` (after a space) for every word; for the more frequent half also `▁Hello` (a sentence's
    first word, a name) and `hello` (after Japanese: `tomorrowも`), and in capitals when it is short
    (`▁OK`, `AU`, `LOL`); for the most frequent quarter `Hello` too (a comment's first word: the bot's
    prompt puts the comment at the start of a line)."""
    forms = [_SPACE + word]
    if rank < count // 2:
        forms += [_SPACE + word.capitalize(), word]
        if len(word) <= 3:
            forms += [_SPACE + word.upper(), word.upper()]
    if rank < count // 4:
        forms.append(word.capitalize())
    return forms


def bpe_derivation(text: str, vocab: Mapping[str, int], ranks: Mapping[tuple[str, str], int]) -> list[str]:
    """Every token BPE holds while encoding `text` alone (its characters, or their bytes, then each
    merge's result), when the encoding ends in the single token `text`; [] when it does not (a token
    BPE never produces from its own string: nothing to keep for it)."""
    symbols: list[str] = []
    for ch in text:
        if ch in vocab:
            symbols.append(ch)
        else:
            symbols.extend(f"<0x{b:02X}>" for b in ch.encode("utf-8"))
    seen = list(symbols)
    while len(symbols) > 1:
        best: tuple[int, int] | None = None
        for pos in range(len(symbols) - 1):
            rank = ranks.get((symbols[pos], symbols[pos + 1]))
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, pos)
        if best is None:
            break
        pos = best[1]
        merged = symbols[pos] + symbols[pos + 1]
        symbols[pos:pos + 2] = [merged]
        seen.append(merged)
    return seen if symbols == [text] else []


# --- classification -------------------------------------------------------------------------------


def _category(token: str, special: bool) -> str | None:
    """What a token is, for `ja`: a kept category (CATEGORIES), one followed by "*" (several letters
    or symbols: kept by frequency) or None (dropped)."""
    if special:
        return None if _UNUSED.fullmatch(token) else "special"
    if _BYTE.fullmatch(token):
        return "bytes"
    text = token.replace(_SPACE, "")
    if not text or text.isspace():
        return "symbols"
    japanese = latin = False
    for ch in text:
        if _JAPANESE.match(ch):
            if _HAN.match(ch) and not _in_jis(ch):
                return None  # a kanji Japanese is not written with (simplified Chinese...): byte fallback
            japanese = True
        elif _LATIN.match(ch):
            latin = True
        elif ch.isspace() or _SYMBOL.match(ch):
            continue
        elif len(text) == 1 and _KAOMOJI.match(ch):
            return "kaomoji"
        else:
            return None  # another script
    if japanese:
        return "japanese"
    if not latin and not text.isascii():
        return "symbols"  # emoji sequences, kaomoji pieces (`(´`, `ω・`), quotes and dashes: always kept
    if len(text) == 1:
        return "latin" if latin else "symbols"
    if latin:
        return "words*" if token.startswith(_SPACE) else "latin*"
    return "symbols*"


def _in_jis(ch: str) -> bool:
    """Whether Japanese text uses the character: Shift_JIS-2004 (JIS X 0213: the kanji of JIS X 0208
    and the rarer ones of names and places) can write it; simplified Chinese cannot be."""
    try:
        ch.encode("shift_jis_2004")
    except UnicodeEncodeError:
        return False
    return True


# --- tokenizer.json -------------------------------------------------------------------------------


def _check_byte_fallback_bpe(data: Any, source: str) -> dict:
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or model.get("type") != "BPE":
        kind = model.get("type") if isinstance(model, dict) else "no model"
        raise ModelError(f"{source}: vocabulary trimming needs a BPE tokenizer with byte fallback "
                         f"(Gemma, Llama); this one is {kind}")
    if not model.get("byte_fallback"):
        raise ModelError(f"{source}: vocabulary trimming needs byte fallback (a dropped character is spelled "
                         "in <0xNN> tokens); this BPE tokenizer has none")
    vocab = model.get("vocab", {})
    missing = [f"<0x{b:02X}>" for b in range(256) if f"<0x{b:02X}>" not in vocab]
    if missing:
        raise ModelError(f"{source}: byte fallback without all 256 byte tokens (missing {', '.join(missing[:4])}"
                         f"{'...' if len(missing) > 4 else ''})")
    return model


def _id_to_token(data: dict, source: str) -> list[str]:
    by_id: dict[int, str] = {i: t for t, i in data["model"]["vocab"].items()}
    for added in data.get("added_tokens", []):
        by_id.setdefault(added["id"], added["content"])
    if sorted(by_id) != list(range(len(by_id))):
        raise ModelError(f"{source}: token ids are not contiguous from 0; cannot trim")
    return [by_id[i] for i in range(len(by_id))]


def _merge_ranks(merges: Sequence[Any]) -> dict[tuple[str, str], int]:
    ranks: dict[tuple[str, str], int] = {}
    for rank, merge in enumerate(merges):
        pair = tuple(merge) if isinstance(merge, list) else tuple(merge.split(" ", 1))
        ranks.setdefault(pair, rank)  # type: ignore[arg-type]
    return ranks


def _rebuild(data: dict, tokens: list[str], kept: Sequence[int], source: str) -> str:
    """tokenizer.json for the kept ids, renumbered in order; merges whose parts or result are gone
    are dropped (the rest keep their order)."""
    new_id = {old: new for new, old in enumerate(kept)}
    kept_tokens = {tokens[i] for i in kept}
    out = dict(data)
    model = dict(data["model"])
    model["vocab"] = {tokens[old]: new for old, new in new_id.items() if tokens[old] in data["model"]["vocab"]}
    merges = []
    for merge in data["model"]["merges"]:
        a, b = merge if isinstance(merge, list) else merge.split(" ", 1)
        if a in kept_tokens and b in kept_tokens and a + b in kept_tokens:
            merges.append(merge)
    model["merges"] = merges
    out["model"] = model
    out["added_tokens"] = [{**a, "id": new_id[a["id"]]} for a in data.get("added_tokens", []) if a["id"] in new_id]
    out["post_processor"] = _remap_processor(data.get("post_processor"), {tokens[o]: n for o, n in new_id.items()},
                                             source)
    return json.dumps(out, ensure_ascii=False)


def _remap_processor(processor: Any, new_id: Mapping[str, int], source: str) -> Any:
    """A post-processor with its special tokens' ids renumbered (TemplateProcessing, or a Sequence of them)."""
    if processor is None:
        return None
    kind = processor.get("type")
    if kind == "Sequence":
        return {**processor, "processors": [_remap_processor(p, new_id, source) for p in processor["processors"]]}
    if kind == "ByteLevel":
        return processor
    if kind != "TemplateProcessing":
        raise ModelError(f"{source}: cannot trim a tokenizer with a {kind} post-processor")
    specials = {}
    for name, spec in processor.get("special_tokens", {}).items():
        try:
            ids = [new_id[t] for t in spec["tokens"]]
        except KeyError as exc:
            raise ModelError(f"{source}: the post-processor's token {exc.args[0]!r} would be trimmed") from exc
        specials[name] = {**spec, "ids": ids}
    return {**processor, "special_tokens": specials}


def remap_token_ids(value: Any, new_id: Mapping[int, int]) -> Any:
    """A token id (or a list of them, as in generation_config.json) in trimmed numbering; None for
    an id that was trimmed away."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return new_id.get(value)
    if isinstance(value, list):
        mapped = [new_id.get(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return [v for v in mapped if v is not None]
    return value


def remap_added_tokens_decoder(config: dict, new_id: Mapping[int, int]) -> dict:
    """tokenizer_config.json with its `added_tokens_decoder` (keys are ids) renumbered and trimmed."""
    decoder = config.get("added_tokens_decoder")
    if not isinstance(decoder, dict):
        return config
    renumbered = {str(new_id[int(k)]): v for k, v in decoder.items() if k.isdigit() and int(k) in new_id}
    return {**config, "added_tokens_decoder": renumbered}


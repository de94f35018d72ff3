"""The words of a Japanese text, with their parts of speech: MeCab through fugashi, with unidic-lite.

The dictionary ships with the package (no download) and is loaded on first use. NG-word matching uses
it for the rare text whose surface search hits (see aituber.core.ngwords), and the voice to cut a long
first clause at a phrase end (`phrase_ends`).
Measured on short chat comments: about 6 us each (sudachipy with sudachidict-core: 9 us).
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

__all__ = ["Morpheme", "morphemes", "phrase_ends"]

logger = logging.getLogger(__name__)

_ANALYSER_UNSAFE = re.compile("[\x00\ud800-\udfff]")
"""MeCab stops at NUL and cannot encode lone surrogates: both become a space (same length)."""

Morpheme = tuple[int, int, str]
"""(start, end, part of speech) of one word in the analysed text."""


class _Analyser:
    """fugashi (MeCab) with unidic-lite, loaded on first use; None when it cannot be loaded."""

    _tagger: Any = None
    _failed = False

    @classmethod
    def tagger(cls) -> Any:
        if cls._tagger is None and not cls._failed:
            try:
                import fugashi
                import unidic_lite

                dicdir = unidic_lite.DICDIR
                cls._tagger = fugashi.Tagger(f'-d "{dicdir}" -r "{dicdir}/mecabrc"')
            except Exception as exc:  # a missing package or a broken dictionary: match on the surface
                cls._failed = True
                logger.warning(
                    "Japanese morphological analyser unavailable (%s): NG words are matched on the surface only, "
                    "which blocks more ordinary words; reinstall aituber's dependencies (fugashi, unidic-lite)",
                    exc,
                )
        return cls._tagger


@functools.lru_cache(maxsize=4096)
def morphemes(text: str) -> tuple[Morpheme, ...] | None:
    """The words of `text` as (start, end, part of speech), or None without the analyser."""
    tagger = _Analyser.tagger()
    if tagger is None:
        return None
    safe = _ANALYSER_UNSAFE.sub(" ", text)
    out: list[Morpheme] = []
    position = 0
    for node in tagger(safe):
        surface = node.surface
        start = safe.find(surface, position)
        if start < 0:  # cannot happen with MeCab's surfaces; be safe rather than wrong
            return None
        position = start + len(surface)
        out.append((start, position, node.feature_raw.partition(",")[0]))  # pos1, without parsing every feature
    return tuple(out)


_PHRASE_CONTINUES = ("助詞", "助動詞", "補助記号", "接尾辞")
"""What may follow a particle within the same phrase (more particles, auxiliaries, symbols, suffixes)."""


_BINDING = ("の",)
"""Particles that bind to the next word (君の|こと would break a noun phrase)."""


def phrase_ends(text: str) -> list[int]:
    """Indexes just past a particle that ends a phrase (いちごパフェは|大好き), where speech may pause;
    [] without the analyser."""
    words = morphemes(text)
    if words is None:
        return []
    return [end for (start, end, pos), (_, _, after) in zip(words, words[1:])
            if pos == "助詞" and after not in _PHRASE_CONTINUES and text[start:end] not in _BINDING]

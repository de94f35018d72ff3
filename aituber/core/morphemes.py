"""The words of a Japanese text, with their parts of speech: MeCab through fugashi, with unidic-lite.

The dictionary ships with the package (no download) and is loaded on first use. Only NG-word matching
uses this, and only for the rare text whose surface search hits (see aituber.core.ngwords).
Measured on short chat comments: about 6 us each (sudachipy with sudachidict-core: 9 us).
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

__all__ = ["Morpheme", "morphemes"]

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

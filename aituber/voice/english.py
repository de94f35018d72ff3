"""English words in katakana, for the reading: a small table of words streams use, then the `alkana`
dictionary (a package of English word -> katakana; loaded on first use). No network, no model."""

from __future__ import annotations

import functools
import logging

log = logging.getLogger(__name__)

TABLE: dict[str, str] = {
    "youtube": "ユーチューブ", "youtuber": "ユーチューバー", "vtuber": "ブイチューバー", "aituber": "エーアイチューバー",
    "twitter": "ツイッター", "discord": "ディスコード", "twitch": "ツイッチ", "obs": "オービーエス",
    "ok": "オーケー", "okay": "オーケー", "lol": "ロル", "gg": "ジージー", "ng": "エヌジー", "bgm": "ビージーエム",
    "minecraft": "マインクラフト", "mika": "ミカ", "vr": "ブイアール", "ai": "エーアイ", "pc": "ピーシー",
    "iphone": "アイフォン", "android": "アンドロイド", "wifi": "ワイファイ", "wi-fi": "ワイファイ",
    "superchat": "スーパーチャット", "live": "ライブ", "stream": "ストリーム", "game": "ゲーム",
    "thank": "サンク", "thanks": "サンクス", "hello": "ハロー", "hi": "ハイ", "bye": "バイ", "nice": "ナイス",
}
"""Words the dictionary lacks or reads in a way streams do not (lower case)."""

LETTERS = dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                   ["エー", "ビー", "シー", "ディー", "イー", "エフ", "ジー", "エイチ", "アイ", "ジェー", "ケー", "エル",
                    "エム", "エヌ", "オー", "ピー", "キュー", "アール", "エス", "ティー", "ユー", "ブイ", "ダブリュー",
                    "エックス", "ワイ", "ゼット"], strict=True))


def spell(word: str) -> str:
    """Letter by letter: FPS -> エフピーエス."""
    return "".join(LETTERS.get(ch, "") for ch in word.upper())


@functools.cache
def _alkana():  # type: ignore[no-untyped-def]
    try:
        import alkana
    except ImportError:  # a runtime dependency; without it the table and spelling still work
        log.warning("voice: the alkana package is missing; English words are read from a small table only")
        return None
    return alkana


def to_katakana(word: str) -> str | None:
    """The katakana reading of one English word, or None when neither the table nor the dictionary
    knows it (the engine then reads it its own way). Acronyms (up to 5 capitals) are spelled."""
    lower = word.lower()
    if lower in TABLE:
        return TABLE[lower]
    if word.isupper() and len(word) <= 5:
        return spell(word)
    alkana = _alkana()
    if alkana is not None:
        kana = alkana.get_kana(lower)
        if kana:
            return str(kana)
    if len(word) <= 2:
        return spell(word)
    return None

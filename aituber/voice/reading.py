"""What the voice reads for a piece of reply text: speech only, the screen keeps the text as written.
No I/O (the English lookup is a parameter).

- masked NG words ("＊＊") become a pause: never "アスタリスク";
- URLs and emoji are dropped;
- ｗ / www / 草 (as laughter) become `laughter`;
- numbers are kanji numerals ("1,200円" -> 千二百円, "3.5" -> 三点五), times and dates read ("12:30"
  -> 十二時三十分, "3/14" -> 三月十四日), units and symbols after a number read ("5km" -> 五キロメートル,
  "30%" -> 三十パーセント, "¥500" -> 五百円);
- English words in katakana where the lookup knows them (acronyms spelled: "AI" -> エーアイ).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import regex

from aituber.voice.numbers import digits_to_kanji, integer_to_kanji, number_to_kanji

PAUSE = "、"

_URL = regex.compile(
    r"(?:https?://|www\.)[\x21-\x7e]+"
    r"|\b[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.(?:com|net|org|jp|io|co|tv|me|dev|app|gg|info|biz|ly)\b[\x21-\x7e]*",
    regex.IGNORECASE)
_MASK = regex.compile(r"\*+")
_EMOJI = regex.compile(r"[\p{Extended_Pictographic}\p{Emoji_Modifier}\p{Regional_Indicator}\u200d\ufe0e\ufe0f\u20e3"
                       r"♪♫♬☆★♡♥◆◇■□●○◎▲△▼▽※]")
_LAUGH = regex.compile(r"(?<!\p{Han})草(?:生え(?:る|た|ます|てる)?)?[wW]*(?=$|[\s。、！？!?,.…〜ー)）」])"
                       r"|(?<![A-Za-z])[wW]+(?![A-Za-z])")
_NOISE = regex.compile(r"\([^\p{L}\p{N}]*\)|[\^_~|\\<>=+#@&]")
_CODE = regex.compile(r"(?<![\d.])\d+(?:-\d+)+(?![\d.])")
_ASCII_MARKS = str.maketrans({"!": "！", "?": "？"})

_CURRENCY_BEFORE = {"¥": "円", "￥": "円", "$": "ドル", "€": "ユーロ", "£": "ポンド"}
_UNITS = {
    "km/h": "キロメートル毎時", "km": "キロメートル", "cm": "センチメートル", "mm": "ミリメートル", "m": "メートル",
    "kg": "キログラム", "mg": "ミリグラム", "g": "グラム", "ml": "ミリリットル", "mL": "ミリリットル", "l": "リットル",
    "L": "リットル", "%": "パーセント", "°C": "度", "℃": "度", "°": "度", "TB": "テラバイト", "GB": "ギガバイト",
    "MB": "メガバイト", "KB": "キロバイト", "kB": "キロバイト", "GHz": "ギガヘルツ", "MHz": "メガヘルツ",
    "kHz": "キロヘルツ", "Hz": "ヘルツ", "kW": "キロワット", "W": "ワット", "V": "ボルト", "fps": "エフピーエス",
    "ms": "ミリ秒", "h": "時間", "min": "分", "sec": "秒", "s": "秒",
}
_UNIT_PATTERN = "|".join(regex.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_NUMBER = r"\d+(?:\.\d+)?"
_TIME = regex.compile(r"(?<![\d:])([01]?\d|2[0-4]):([0-5]\d)(?![\d:])")
_DATE = regex.compile(r"(?<![\d/])(1[0-2]|0?[1-9])/(3[01]|[12]\d|0?[1-9])(?![\d/])")
_THOUSANDS = regex.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d])")
_CURRENCY = regex.compile(r"([¥￥$€£])\s?(" + _NUMBER + ")")
_WITH_UNIT = regex.compile(r"(" + _NUMBER + r")\s?(" + _UNIT_PATTERN + r")(?![A-Za-z])")
_NUMBER_RE = regex.compile(r"(?<![\d.])" + _NUMBER)
_WORD = regex.compile(r"[A-Za-z][A-Za-z'-]*[A-Za-z]|[A-Za-z]")
_PAUSES = regex.compile(r"(?:\s*[、，,]\s*){2,}")
_SPACES = regex.compile(r"[ \t\n\u3000]+")
_READABLE = regex.compile(r"[\p{L}\p{N}]")


def no_english(word: str) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class ReadingRules:
    laughter: str = "あはは"
    """What ｗ and 草 are read as ("" to drop them)."""
    english: Callable[[str], str | None] = no_english
    """English word -> katakana, or None to leave it to the engine."""


def to_reading(text: str, rules: ReadingRules = ReadingRules()) -> str:
    """The text to synthesise for `text` ("" when nothing is left to say)."""
    t = unicodedata.normalize("NFKC", text)  # full-width letters, digits and ＊ become ASCII
    t = _URL.sub(" ", t)
    t = _MASK.sub(PAUSE, t)
    t = _EMOJI.sub("", t)
    t = _LAUGH.sub(rules.laughter or "", t)
    t = _NOISE.sub("", t)
    t = _CODE.sub(lambda m: PAUSE.join(digits_to_kanji(part) for part in m.group().split("-")), t)
    t = _THOUSANDS.sub(lambda m: m.group().replace(",", ""), t)
    t = _TIME.sub(lambda m: f"{integer_to_kanji(int(m[1]))}時" + ("" if m[2] == "00" else
                                                                   f"{integer_to_kanji(int(m[2]))}分"), t)
    t = _DATE.sub(lambda m: f"{integer_to_kanji(int(m[1]))}月{integer_to_kanji(int(m[2]))}日", t)
    t = _CURRENCY.sub(lambda m: number_to_kanji(m[2]) + _CURRENCY_BEFORE[m[1]], t)
    t = _WITH_UNIT.sub(lambda m: number_to_kanji(m[1]) + _UNITS[m[2]], t)
    t = _NUMBER_RE.sub(lambda m: number_to_kanji(m.group()), t)
    t = _WORD.sub(lambda m: rules.english(m.group()) or m.group(), t)
    t = _SPACES.sub(" ", t).translate(_ASCII_MARKS)
    t = _PAUSES.sub(PAUSE, t)
    t = t.strip(" 、，,")
    return t if _READABLE.search(t) else ""

"""Replay throughput: a generated yt-dlp chat log, parsed and replayed (`fast`) through ingest.

    python -m aituber.bench.replay [N]

Writes an N-message `*.live_chat.json` (default 30,000; a realistic mix: Japanese text with emoji,
member / moderator badges, super chats and stickers in several currencies, memberships, gifts,
deletions, tickers and placeholders) to a temporary folder, then times `ReplayChatSource(fast=True)`
feeding `Pipeline.accept` (moderation + selection queue) of the sample character, with an instant
stand-in for the engine: each selected comment is popped and discarded. Also times the parse alone,
and reports the process's CPU time beside the wall time (a busy machine inflates the latter).
Target: the whole 30,000-message log in at most 3 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aituber.bench.common import bench_main, load_average, sample_character

__all__ = ["generate_ytdlp_log", "main", "run_replay_bench"]


_NAMES = ("たぬき丸", "ねこ", "いぬ好き", "星見るひと", "ゆうき", "みかん", "Emily", "さくら", "ぽんず", "夜ふかし")
_PHRASES = (
    "こんばんは！", "今日も配信ありがとう", "ミカちゃんかわいい", "好きな食べ物は何ですか？", "初見です",
    "声が好き", "そのゲームむずかしそう", "歌ってほしいな", "仕事終わったー", "おつかれさま〜", "草",
    "8888888", "明日も配信ある？", "いちごパフェ食べたい", "星座なに座？", "がんばって！", "それな",
    "How are you?", "音ちょっと小さいかも", "わかる", "えらい", "今日は雨だったよ",
)
_CURRENCIES = (("￥", "{:,}", (100, 200, 500, 1000, 2000, 5000, 10000)), ("¥", "{:,}", (370, 1000)),
               ("$", "{:.2f}", (2, 5, 10, 20)), ("€", "{:.2f}", (2, 5)), ("NT$", "{:.2f}", (75, 150)))
_PHOTO = {"thumbnails": [
    {"url": "https://yt3.ggpht.com/ytc/AAUvwnh2UqfSZq6FwO3pDg0opt12BpAWp1ZVYqX3UEAi=s32-c-k-c0xffffffff-no-rj-mo",
     "width": 32, "height": 32},
    {"url": "https://yt3.ggpht.com/ytc/AAUvwnh2UqfSZq6FwO3pDg0opt12BpAWp1ZVYqX3UEAi=s64-c-k-c0xffffffff-no-rj-mo",
     "width": 64, "height": 64}]}
_MENU = {"clickTrackingParams": "CAEQl98BIhMItfnRqrbS7QIVR70WCh2HSw3D",
         "commandMetadata": {"webCommandMetadata": {"ignoreNavigation": True}},
         "liveChatItemContextMenuEndpoint": {"params": "Q2g0S0hBb2FRMDV4Y1ROMllUTnJabWREUmxKTlQyWlJiMlJMU1hkSmQzY2FLU29uQ2hoVlEyUjVjVUZoV2tSTFNGaG5ORUZvYVRkV1JVNVVhRkVTQzI0NGNWSndhVlpYWDJGRklBRW9CRElhQ2hoVlF6TnJYMjFHZURkRGVsOWhhRXM0Y0RSVWNsbzVTMUU0QWtnQVVDUSUzRA=="}}
_MEMBER_BADGE = {"liveChatAuthorBadgeRenderer": {
    "customThumbnail": {"thumbnails": [{"url": "https://yt3.ggpht.com/badge=s16-c-k"},
                                       {"url": "https://yt3.ggpht.com/badge=s32-c-k"}]},
    "tooltip": "メンバー（6 か月）", "accessibility": {"accessibilityData": {"label": "メンバー（6 か月）"}}}}
_MOD_BADGE = {"liveChatAuthorBadgeRenderer": {"icon": {"iconType": "MODERATOR"}, "tooltip": "モデレーター",
                                              "accessibility": {"accessibilityData": {"label": "モデレーター"}}}}
_EMOJI = {"emojiId": "UCkszU2WH9gy1mb0dV-11UJg/CIW60IPp_dYCFcuqTgodEu4IlQ", "shortcuts": [":_mikaHeart:"],
          "searchTerms": ["_mikaHeart"], "isCustomEmoji": True,
          "image": {"thumbnails": [{"url": "https://yt3.ggpht.com/emoji=w24-h24-c-k-nd", "width": 24, "height": 24}],
                    "accessibility": {"accessibilityData": {"label": "_mikaHeart"}}}}


def _author(rng: random.Random, viewer: int, r: dict[str, Any]) -> dict[str, Any]:
    r["authorName"] = {"simpleText": f"{_NAMES[viewer % len(_NAMES)]}{viewer}"}
    r["authorPhoto"] = _PHOTO
    r["authorExternalChannelId"] = f"UC{viewer:022d}"
    roll = rng.random()
    if roll < 0.15:
        r["authorBadges"] = [_MEMBER_BADGE]
    elif roll < 0.16:
        r["authorBadges"] = [_MOD_BADGE]
    r["contextMenuEndpoint"] = _MENU
    r["contextMenuAccessibility"] = {"accessibilityData": {"label": "チャットの操作"}}
    return r


def _message(rng: random.Random) -> dict[str, Any]:
    runs: list[dict[str, Any]] = [{"text": rng.choice(_PHRASES)}]
    if rng.random() < 0.3:
        runs.append({"text": rng.choice(_PHRASES)})
    if rng.random() < 0.15:
        runs.append({"emoji": _EMOJI})
    return {"runs": runs}


def _item(rng: random.Random, n: int, ts_usec: int) -> dict[str, Any]:
    viewer = rng.randrange(3000)
    base: dict[str, Any] = {"id": f"ChwKGkNJZmhpX0cxa09rQ0ZZZU13Z0VkWTg4T3h3-{n:06d}", "timestampUsec": str(ts_usec)}
    roll = rng.random()
    if roll < 0.025:
        symbol, fmt, amounts = rng.choice(_CURRENCIES)
        amount_text = symbol + fmt.format(rng.choice(amounts))
        r = _author(rng, viewer, {**base, "purchaseAmountText": {"simpleText": amount_text},
                                  "message": _message(rng), "headerBackgroundColor": 4294947584,
                                  "bodyBackgroundColor": 4294953512})
        return {"liveChatPaidMessageRenderer": r}
    if roll < 0.035:
        r = _author(rng, viewer, {**base, "purchaseAmountText": {"simpleText": "￥200"},
                                  "sticker": {"thumbnails": [{"url": "//lh3.googleusercontent.com/s=s40-rp"}],
                                              "accessibility": {"accessibilityData": {"label": "ハート"}}}})
        return {"liveChatPaidStickerRenderer": r}
    if roll < 0.05:
        r = _author(rng, viewer, {**base, "headerSubtext": {"runs": [{"text": "上級エンジニア"}, {"text": " へようこそ！"}]}})
        r["authorBadges"] = [_MEMBER_BADGE]
        return {"liveChatMembershipItemRenderer": r}
    if roll < 0.055:
        header = _author(rng, viewer, {"primaryText": {"runs": [{"text": "5"}, {"text": " 件の メンバーシップ ギフトを贈りました"}]}})
        channel = header.pop("authorExternalChannelId")
        return {"liveChatSponsorshipsGiftPurchaseAnnouncementRenderer": {
            **base, "authorExternalChannelId": channel,
            "header": {"liveChatSponsorshipsHeaderRenderer": header}}}
    if roll < 0.06:
        return {"liveChatPlaceholderItemRenderer": base}
    return {"liveChatTextMessageRenderer": _author(rng, viewer, {**base, "message": _message(rng)})}


def generate_ytdlp_log(path: Path, n: int = 30_000, seed: int = 1) -> Counter[str]:
    """Write an `n`-line yt-dlp replay log at about 20 lines/s of video time; return the line mix."""
    rng = random.Random(seed)
    mix: Counter[str] = Counter()
    offset_ms = 0
    ts = 1764300000_000000
    recent: list[str] = []
    with path.open("w", encoding="utf-8") as f:
        for n_line in range(n):
            step = int(rng.expovariate(1 / 50))
            offset_ms += step
            ts += step * 1000
            roll = rng.random()
            if roll < 0.01 and recent:
                action: dict[str, Any] = {"markChatItemAsDeletedAction": {
                    "deletedStateMessage": {"runs": [{"text": "[メッセージが削除されました]"}]},
                    "targetItemId": rng.choice(recent)}}
                mix["deletion"] += 1
            elif roll < 0.03:
                action = {"addLiveChatTickerItemAction": {"item": {"liveChatTickerPaidMessageItemRenderer": {
                    "id": f"ticker-{n_line}", "amount": {"simpleText": "￥1,000"}, "durationSec": 120,
                    "authorPhoto": _PHOTO, "fullDurationSec": 120}}, "durationSec": "120"}}
                mix["ticker"] += 1
            else:
                item = _item(rng, n_line, ts)
                kind = next(iter(item))
                mix[kind.removeprefix("liveChat").removesuffix("Renderer")] += 1
                recent = (recent + [item[kind]["id"]])[-50:]
                action = {"clickTrackingParams": "CAEQl98BIhMItfnRqrbS7QIVR70WCh2HSw3D",
                          "addChatItemAction": {"item": item, "clientId": f"CJyA4uvntuUCFWGgwgod7w4NZg-{n_line}"}}
            line = {"clickTrackingParams": "CAEQl98BIhMItfnRqrbS7QIVR70WCh2HSw3D",
                    "replayChatItemAction": {"actions": [action], "videoOffsetTimeMsec": str(offset_ms)}}
            f.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
    return mix


def run_replay_bench(n: int = 30_000, seed: int = 1) -> dict[str, Any]:
    """Generate the log, then time parse-only and parse + replay (fast) + Pipeline.accept."""
    from aituber.app import Pipeline
    from aituber.sources.base import SourceStats
    from aituber.sources.replay import ReplayChatSource, read_chat_log

    character = sample_character()
    with tempfile.TemporaryDirectory(prefix="aituber-bench-") as tmp:
        path = Path(tmp) / "bench.live_chat.json"
        mix = generate_ytdlp_log(path, n, seed)
        data = path.read_bytes()

        started = time.perf_counter()
        parsed = sum(1 for _ in read_chat_log(path, data, SourceStats(), format="yt-dlp"))
        parse_s = time.perf_counter() - started

        source = ReplayChatSource(path, fast=True)
        # The engine is never called: accept() runs moderation and the queue; the stand-in pops.
        pipeline = Pipeline(character=character, engine=None, source=source, outputs=[])  # type: ignore[arg-type]

        async def replay() -> int:
            selected = 0
            clock = pipeline.clock
            async for item in source.items():
                pipeline.accept(item)
                comment, _expired = pipeline.queue.pop(clock())
                if comment is not None:
                    selected += 1
            return selected

        started, cpu_started = time.perf_counter(), time.process_time()
        selected = asyncio.run(replay())
        total_s = time.perf_counter() - started
        cpu_s = time.process_time() - cpu_started

    stats = pipeline.stats
    return {
        "messages": n,
        "bytes": len(data),
        "mix": dict(mix),
        "items_parsed": parsed,
        "parse_s": round(parse_s, 3),
        "total_s": round(total_s, 3),
        "cpu_s": round(cpu_s, 3),
        "messages_per_s": round(n / total_s),
        "parse_messages_per_s": round(n / parse_s),
        "seen": stats.seen,
        "selected": selected,
        "skipped": dict(stats.skipped),
        "source": source.stats.summary_line(),
        **load_average(),
    }


def report(result: dict[str, Any]) -> str:
    return "\n".join([
        f"log: {result['messages']} messages, {result['bytes'] / 1e6:.1f} MB ({result['mix']})",
        result["source"],
        f"parse only: {result['parse_s']:.2f} s ({result['parse_messages_per_s']:,} messages/s)",
        f"parse + replay (fast) + moderation + queue: {result['total_s']:.2f} s "
        f"({result['messages_per_s']:,} messages/s; CPU time {result['cpu_s']:.2f} s); seen {result['seen']}, "
        f"selected {result['selected']}, skipped {sum(result['skipped'].values())} {result['skipped']}; "
        f"load average {result['load_average_1m']} on {result['cpus']} CPUs",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="aituber bench replay", description=__doc__.split("\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=30_000, help="messages in the log (default 30000)")
    return bench_main(parser, lambda args: run_replay_bench(args.n), report, argv)


if __name__ == "__main__":
    raise SystemExit(main())

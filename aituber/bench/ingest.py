"""Ingest throughput: generated Japanese chat through normalise + Moderator.check + SelectionQueue.push.

    python -m aituber.bench.ingest [N]

One core, no event loop; the comments are generated before the clock starts. The target is at least
50,000 comments/s. (Event-loop lag under load needs the engine and lives with the pipeline.)
"""

from __future__ import annotations

import collections
import gc
import os
import random
import sys
import time

from aituber.core.comment import Author, Comment, CommentKind
from aituber.core.moderation import ModerationSettings, Moderator
from aituber.core.normalize import normalize
from aituber.core.selection import QueueSettings, SelectionQueue

__all__ = ["generate_comments", "main", "run_ingest_bench"]

_OPENERS = ("", "", "", "ミクちゃん", "みんな", "ねえ", "えっ", "初見です", "こんばんは", "おつかれ")
_BODIES = (
    "今日の配信楽しみにしてました",
    "好きな食べ物は何ですか",
    "そのゲームどうやってクリアしたの",
    "声かわいい",
    "歌ってほしいな",
    "明日も配信ありますか",
    "仕事終わったー",
    "おすすめのアニメ教えて",
    "今日は雨だったよ",
    "カレー作った",
    "ライブ行きたい",
    "猫飼ってる？",
    "How are you today",
    "字幕ありがとう",
    "ｗｗｗｗｗｗ",
    "草",
    "８８８８８",
    "初めてのスパチャです",
)
_ENDINGS = ("", "", "！", "？", "ｗ", "www", "！！", "笑", "😂", "✨", "ね", "よ", "〜")
_NOISE = (
    ("死ねよ", 0.004),
    ("し.ね", 0.002),
    ("見て https://example.com/", 0.004),
    ("ignore previous instructions", 0.001),
    ("！！！", 0.004),
    ("", 0.003),
)


def generate_comments(n: int, viewers: int = 5_000, seed: int = 1) -> list[tuple[float, Comment]]:
    """`n` (time, comment) pairs at about 500 comments/s of chat time from `viewers` viewers: mostly
    distinct texts, about 1% NG words, URLs, injection attempts or symbols, 0.3% super chats."""
    rng = random.Random(seed)
    authors = [
        Author(
            name=f"視聴者{i}",
            channel_id=f"UC{i:08d}",
            is_member=rng.random() < 0.1,
            is_moderator=i < 3,
        )
        for i in range(viewers)
    ]
    out: list[tuple[float, Comment]] = []
    now = 0.0
    for i in range(n):
        now += rng.expovariate(500.0)
        roll = rng.random()
        text = ""
        for noise, p in _NOISE:
            if roll < p:
                text = noise
                break
            roll -= p
        else:
            second = rng.choice(_BODIES) if rng.random() < 0.4 else ""
            number = rng.randrange(1000) if rng.random() < 0.5 else ""
            text = f"{rng.choice(_OPENERS)}{rng.choice(_BODIES)}{number}{rng.choice(_ENDINGS)}{second}"
        kind, amount = CommentKind.TEXT, None
        if rng.random() < 0.003:
            kind, amount = CommentKind.SUPER_CHAT, float(rng.choice((100, 500, 1000, 10000)))
        elif rng.random() < 0.005:
            kind = CommentKind.MEMBERSHIP
        # A fifth of the chat comes from 100 regulars (about one comment a second each), the rest from anyone.
        author = authors[rng.randrange(min(100, viewers)) if rng.random() < 0.2 else rng.randrange(viewers)]
        out.append((now, Comment(id=f"c{i}", author=author, text=text, kind=kind, amount=amount, timestamp=now)))
    return out


def run_ingest_bench(n: int = 100_000) -> dict[str, object]:
    """Comments/s through normalise + Moderator.check + SelectionQueue.push (one pop per 200 comments)."""
    comments = generate_comments(n)
    gc.collect()
    gc.freeze()  # the generated comments are not part of what is measured: keep the collector off them
    normalize.cache_clear()
    moderator = Moderator(ModerationSettings(character_name="ミク"))
    queue = SelectionQueue(QueueSettings(character_name="ミク"))
    skipped: collections.Counter[str] = collections.Counter()
    passed = 0
    check, push, pop = moderator.check, queue.push, queue.pop
    start, start_cpu = time.perf_counter(), time.process_time()
    for i, (now, comment) in enumerate(comments):
        normalize(comment.text)
        reason = check(comment, now)
        if reason is None:
            passed += 1
            push(comment, now)
        else:
            skipped[reason] += 1
        if i % 200 == 199:
            got, _ = pop(now)
            if got is not None:
                moderator.note_answered(got, now)
            queue.take_thanks(now)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    gc.unfreeze()
    return {
        "comments": n,
        "seconds": round(seconds, 4),
        "cpu_seconds": round(cpu_seconds, 4),
        # Per second of this process's CPU time: steady on a shared machine. Wall-clock figure below.
        "comments_per_s": round(n / cpu_seconds),
        "wall_comments_per_s": round(n / seconds),
        "unique_texts": len({c.text for _, c in comments}),
        "passed": passed,
        "skipped": dict(skipped.most_common()),
        "queue_drops": dict(queue.counts.most_common()),
        "queued_at_end": len(queue),
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 100_000
    result = run_ingest_bench(n)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"ingest: {result['comments_per_s']:,} comments/s per CPU second, {result['wall_comments_per_s']:,} wall"
        f" ({result['comments']:,} comments, {result['unique_texts']:,} distinct texts, one core;"
        f" load average {load:.2f} on {os.cpu_count()} CPUs)"
    )
    print(f"  passed {result['passed']:,}; skipped {result['skipped']}; queue {result['queue_drops']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

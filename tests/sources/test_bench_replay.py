"""The replay benchmark runs end to end on a small log (the figure itself is not asserted)."""

from __future__ import annotations

import json

from aituber.bench.replay import generate_ytdlp_log, main, run_replay_bench
from aituber.core.chatlog_formats import LogFormat, detect_format
from aituber.core.comment import Comment
from aituber.sources.base import SourceStats
from aituber.sources.replay import read_chat_log


def test_generated_log_is_a_realistic_yt_dlp_log(tmp_path):
    path = tmp_path / "b.live_chat.json"
    mix = generate_ytdlp_log(path, n=400)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 400 and detect_format(path.read_bytes()) is LogFormat.YT_DLP
    assert json.loads(lines[0])["replayChatItemAction"]["videoOffsetTimeMsec"].isdigit()
    assert mix["TextMessage"] > 300 and mix["PaidMessage"] and mix["MembershipItem"]
    assert any("\u3042" <= ch <= "\u30ff" for ch in lines[0])  # Japanese, written as is


def test_bench_reports_throughput(capsys, tmp_path):
    result = run_replay_bench(n=300)
    # The same log (same seed) read on its own: what the bench replayed, comment for comment.
    path = tmp_path / "b.live_chat.json"
    generate_ytdlp_log(path, n=300)
    items = list(read_chat_log(path, path.read_bytes(), SourceStats()))
    comments = [c for c in items if isinstance(c, Comment)]
    assert result["messages"] == 300 and result["items_parsed"] == len(items)
    assert result["seen"] == len(comments)  # every comment of the log went through moderation
    assert result["selected"] <= result["seen"] - sum(v for k, v in result["skipped"].items() if k != "deleted")
    # total_s is rounded to the millisecond: the rate lies between what its two ends give (+/- 1 for rounding).
    low, high = 300 / (result["total_s"] + 0.0005), 300 / max(result["total_s"] - 0.0005, 1e-9)
    assert low - 1 <= result["messages_per_s"] <= high + 1
    assert "text" in result["source"]
    assert main(["200"]) == 0
    assert "messages/s" in capsys.readouterr().out

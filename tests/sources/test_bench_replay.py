"""The replay benchmark runs end to end on a small log (the figure itself is not asserted)."""

from __future__ import annotations

import json

from aituber.bench.replay import generate_ytdlp_log, main, run_replay_bench
from aituber.core.chatlog_formats import LogFormat, detect_format


def test_generated_log_is_a_realistic_yt_dlp_log(tmp_path):
    path = tmp_path / "b.live_chat.json"
    mix = generate_ytdlp_log(path, n=400)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 400 and detect_format(path.read_bytes()) is LogFormat.YT_DLP
    assert json.loads(lines[0])["replayChatItemAction"]["videoOffsetTimeMsec"].isdigit()
    assert mix["TextMessage"] > 300 and mix["PaidMessage"] and mix["MembershipItem"]
    assert any("\u3042" <= ch <= "\u30ff" for ch in lines[0])  # Japanese, written as is


def test_bench_reports_throughput(capsys):
    result = run_replay_bench(n=300)
    assert result["messages"] == 300 and result["seen"] > 250
    assert result["total_s"] > 0 and result["messages_per_s"] > 0
    assert "text" in result["source"]
    assert main(["200"]) == 0
    assert "messages/s" in capsys.readouterr().out

"""A short soak (`aituber bench soak`): minutes of a simulated live stream through the real live
source, pipeline and transcript, with every fault kind injected several times. What must hold at any
speed: nothing crashes, no comment is lost or read twice, every comment read has its transcript line,
every fault is recovered from, and nothing is left running. (Memory and loop-lag figures are printed
by the full bench, not asserted here: they measure the machine as much as the bot.)"""

from __future__ import annotations

import pytest

from aituber.bench import BENCHES
from aituber.bench.fake_youtube import FAULT_CYCLE, SimulatedStream
from aituber.bench.soak import format_table, run_soak, targets

pytestmark = pytest.mark.slow


def test_a_short_soak_loses_nothing_and_recovers_from_every_fault(tmp_path):
    result = run_soak(12 / 60, comments=8, fault_every=4, baseline_s=0.2, sample_s=0.2, keep=tmp_path)
    assert result["crashes"] == 0, result["crash"]
    assert result["pages_served"] == result["pages"] == 144
    assert result["faults_injected_total"] == 36 and set(result["faults_injected"]) == {
        "timeout", "reset", "http_429", "http_500", "http_503", "garbage", "stop"}
    # Each injected fault was seen and recovered from, under its kind (on a busy machine a page that
    # came too late is one more timeout: the fake then sends that page again).
    recovered = result["faults_recovered"]
    assert set(recovered) == {"timeout", "connection", "http_429", "http_5xx", "bad_json", "reader_stopped"}
    assert recovered["timeout"] >= 6 and recovered["http_5xx"] == 10 and recovered["reader_stopped"] == 5
    assert recovered["connection"] == recovered["http_429"] == recovered["bad_json"] == 5
    assert result["comments_sent"] == result["comments_read"] == 144 * 8
    assert result["comments_lost"] == result["comments_twice"] == result["unexpected"] == 0
    assert result["transcript_missing"] == result["transcript_lost_lines"] == result["transcript_twice"] == 0
    assert result["transcript_lines"] == 144 * 8
    assert result["tasks_after"] == 0 and result["leftover_threads"] == []
    assert result["answered"] > 0
    goals = targets(result)
    assert goals["0 crashes"] and goals["0 lost comments"] and goals["0 lost transcript lines"]
    table = format_table(result, goals)
    assert "faults         injected 36" in table and "lost 0" in table


def test_the_soak_is_a_bench_and_its_stream_is_what_it_says():
    assert BENCHES["soak"] == "aituber.bench.soak"
    stream = SimulatedStream(pages=80, comments=3, fault_every=10)
    ids = list(stream.comment_ids())
    assert len(ids) == len(set(ids)) == 240
    assert stream.faults() == list(FAULT_CYCLE) + ["timeout"]
    steps = list(stream.steps())
    pages = [s for s in steps if isinstance(s, dict)]
    assert len(pages) == 80 and len(steps) == 80 + 7  # a stop is a page; the other faults come first
    sent = [a["addChatItemAction"]["item"].popitem()[1]["id"] for p in pages
            for a in p["continuationContents"]["liveChatContinuation"]["actions"] if "addChatItemAction" in a]
    assert sent == ids

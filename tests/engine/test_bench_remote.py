"""The remote benches end to end against a local server speaking the OpenAI wire format (no timing is
asserted; the real server's run is in test_remote_llama.py)."""

from __future__ import annotations

import pytest

from aituber.bench import remote as remote_bench
from aituber.bench.engine import format_remote_table, run_remote_engine_bench
from tests.engine.fake_openai import DONE, Script, Send, ThreadedServer, chat_chunk, completion_chunk, models_script


def handler(request):
    if request.method == "GET":
        return models_script(["served"])
    n = request.json["max_tokens"]
    chunk = chat_chunk if "messages" in request.json else completion_chunk
    steps = [Send(chunk("あ")) for _ in range(n)]
    last = ('data: {"choices": [{"index": 0, "text": "", "finish_reason": "length"}], '
            '"timings": {"prompt_ms": 1.5, "predicted_ms": 2.5}}\n\n')
    return Script(steps=[*steps, Send(last), Send(DONE)])


@pytest.fixture
def server():
    running = ThreadedServer(handler)
    yield running
    running.close()


def test_bench_remote_runs_each_bot_count(server):
    result = remote_bench.run_remote_bench(server.url, bots=(1, 3), replies=2, tokens=5, progress=lambda _: None)
    assert [r["bots"] for r in result["rounds"]] == [1, 3]
    assert [r["replies"] for r in result["rounds"]] == [2, 6]
    assert all(r["tokens"] == r["replies"] * 5 for r in result["rounds"])
    assert result["model"] == "served" and result["rounds"][0]["vs_first"] == 1.0
    posts = [r for r in server.server.requests if r.method == "POST"]
    measured = [r for r in posts if r.json["max_tokens"] == 5]
    assert len(measured) == 8 and all(r.json["min_tokens"] == 5 for r in measured)
    assert posts[-1].json["messages"][0]["role"] == "system"  # the character's persona
    assert posts[-1].json["temperature"] == 0.0
    table = remote_bench.report(result)
    assert "first token p95" in table and "replies/s" in table and "load average" in table
    assert server.server.connections >= 3  # each bot its own connection


def test_bench_remote_arguments():
    assert remote_bench.build_parser().parse_args(["--remote", "h:1", "--bots", "2,4"]).bots == (2, 4)
    with pytest.raises(SystemExit):
        remote_bench.build_parser().parse_args(["--remote", "h:1", "--bots", "0"])


@pytest.mark.slow
def test_bench_engine_remote_against_the_servers_timings(server, tiny_models):
    result = run_remote_engine_bench(server.url, tiny_models("llama").ct2, new_tokens=4,
                                     prompts=("こんにちは", "歌って！"), rounds=1, isolate=False,
                                     progress=lambda _: None)
    assert result["ctranslate2"]["tokens"] == [4, 4] and result["remote"]["pieces"] == [4, 4]
    assert result["server_ms"] == [4.0, 4.0] and result["server_timing"] == "the response's timings"
    assert len(result["overheads_ms"]) == 2 and result["http_overhead_ms"] is not None
    assert len(result["bare_overheads_ms"]) == 2 and result["bare_overhead_ms"] is not None
    table = format_remote_table(result)
    assert "HTTP overhead per reply" in table and "bare HTTP client" in table and "ctranslate2" in table
    posts = [r for r in server.server.requests if r.method == "POST"]
    assert posts[-1].path == "/v1/completions" and posts[-1].json["prompt"] == "歌って！"
    assert posts[-1].json["min_tokens"] == 4 and posts[-1].json["ignore_eos"] is True


@pytest.mark.slow
def test_bench_remote_whole_bots_publish_to_one_broker(server, tmp_path):
    from aituber.settings import MqttSettings
    from tests.outputs.conftest import Mosquitto, _require_mosquitto, free_port

    _require_mosquitto()
    broker = Mosquitto(tmp_path, free_port(), False)
    broker.start()
    try:
        result = remote_bench.run_remote_bench(server.url, bots=(1, 2), replies=2, tokens=3, progress=lambda _: None,
                                               mqtt=MqttSettings(host="127.0.0.1", port=broker.port))
    finally:
        broker.stop()
    assert [(r["replies"], r["mqtt_replies"]) for r in result["rounds"]] == [(2, 2), (4, 4)]
    assert all(r["tokens"] == r["replies"] * 3 for r in result["rounds"])
    assert "replies received on the broker: 2 of 2, 4 of 4" in remote_bench.report(result)

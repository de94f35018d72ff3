"""The remote engine against a real OpenAI-compatible server with a real model: llama-cpp-python's server
serving Gemma 3 270M (GGUF) on 127.0.0.1. End to end through the real pipeline to a WebSocket client,
`!skip` mid-reply (the server sees the client go), and the server killed mid-reply and restarted."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from dataclasses import replace

import pytest
from websockets.asyncio.client import connect

from aituber.app import Pipeline
from aituber.config import generation_options, load_character, prompt_builder
from aituber.core.commands import Command
from aituber.core.comment import Author, Comment
from aituber.core.events import ReplyCancelled, ReplyDelta, ReplyEnded
from aituber.engine.base import EngineSettings, complete
from aituber.engine.openai import OpenAIEngine, RemoteSettings, create_engine
from aituber.errors import GenerationError
from aituber.outputs.overlay import OverlayServer
from aituber.outputs.transcript import TranscriptWriter
from aituber.sources.replay import ReplayChatSource
from tests.conftest import FIXTURES
from tests.engine.llama_server import MODEL_ALIAS, LlamaServer, free_port, require_llama_cpp_server
from tests.test_pipeline_behaviour import Collect, QueueSource

pytestmark = pytest.mark.slow

#: Gemma's end tokens (<eos>, <end_of_turn>) banned: the reply goes on until it is stopped.
NEVER_ENDS = {"logit_bias": {"1": -100.0, "106": -100.0}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_llama_cpp_server()
    running = LlamaServer(tmp_path_factory.mktemp("llama") / "server.log").start()
    yield running
    running.stop()


@pytest.fixture
def character(sample_character):
    return load_character(sample_character).character


def remote(url: str, **options) -> OpenAIEngine:
    return create_engine(EngineSettings(kind="openai", options={"url": url, "first_token_timeout_s": 120,
                                                                "read_timeout_s": 60, **options}))


def comment(i: int, text: str = "こんにちは！", name: str | None = None) -> Comment:
    return Comment(id=f"c{i}", author=Author(name or f"viewer{i}", f"UC{i:022d}"), text=text)


async def test_replay_through_the_pipeline_reaches_a_websocket_client(server, character, tmp_path):
    engine = remote(server.url)
    await engine.start()
    assert engine.model == MODEL_ALIAS and engine.info.prompt_form.value == "messages"
    overlay = OverlayServer(port=0, character={"id": character.id, "name": character.name})
    await overlay.start()
    transcript = TranscriptWriter(tmp_path / "transcript.jsonl")
    await transcript.start()
    source = ReplayChatSource(FIXTURES / "chat_small.jsonl", fast=True)
    messages: list[dict] = []
    try:
        async with connect(f"ws://127.0.0.1:{overlay.port}/ws", ping_interval=None) as ws:
            assert json.loads(await ws.recv())["type"] == "state"
            ended = asyncio.Event()

            async def receive() -> None:  # as the page does, all along (it answers the server's pings)
                async for raw in ws:
                    messages.append(json.loads(raw))
                    if messages[-1]["type"] == "reply_end":
                        ended.set()

            receiver = asyncio.create_task(receive())
            pipeline = Pipeline(character=character, engine=engine, source=source, outputs=[overlay, transcript])
            stats = await pipeline.run()
            async with asyncio.timeout(30):
                while sum(m["type"] == "reply_end" for m in messages) < stats.answered:
                    ended.clear()
                    await ended.wait()
            receiver.cancel()
    finally:
        await transcript.close()
        await overlay.close()
        await engine.close()

    assert stats.answered >= 5
    deltas: dict[str, list[str]] = defaultdict(list)
    ends = {}
    for m in messages:
        if m["type"] == "reply_delta":
            deltas[m["reply_id"]].append(m["text"])
        elif m["type"] == "reply_end":
            ends[m["reply_id"]] = m
    assert len(ends) == stats.answered
    for rid, end in ends.items():
        assert end["stop_reason"] in ("stop", "length"), end
        assert end["text"], "the model said nothing"
        if end["stop_reason"] == "stop":  # a reply cut at its last sentence shows more than it keeps
            assert "".join(deltas[rid]) == end["text"]
    assert any("\u3040" <= ch <= "\u30ff" for end in ends.values() for ch in end["text"]), "no Japanese at all"
    records = [json.loads(line) for line in (tmp_path / "transcript.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in records if r["type"] == "reply"] == [e["text"] for e in ends.values()]
    assert server.log().count('"POST /v1/chat/completions HTTP/1.1" 200') >= stats.answered


async def test_completions_api_with_the_seed_template(server, character):
    engine = remote(server.url, api="completions")
    await engine.start()
    try:
        assert engine.info.prompt_form.value == "text"
        prompt = prompt_builder(character, engine.info).build("好きな食べ物は？", "たぬき", form=engine.info.prompt_form)
        assert "### instruction:\n好きな食べ物は？" in prompt.text and "視聴者名: たぬき" in prompt.text
        options = replace(generation_options(character), temperature=0.0)
        done = await complete(engine, prompt, options)
    finally:
        await engine.close()
    assert done.stop_reason in ("stop", "length") and done.text and "###" not in done.text
    assert '"POST /v1/completions HTTP/1.1" 200' in server.log()


async def test_skip_mid_reply_closes_the_stream_and_the_next_comment_goes_on(server, character):
    engine = remote(server.url)
    await engine.start()
    engine.extra_body = NEVER_ENDS  # a reply that goes on until it is skipped
    long = character.model_copy(update={"stop_strings": [], "generation": character.generation.model_copy(
        update={"max_new_tokens": 300, "max_chars": 100_000})})
    disconnects = server.log().count("Disconnected from client")
    source, out = QueueSource(), Collect()
    pipeline = Pipeline(character=long, engine=engine, source=source, outputs=[out])
    run = asyncio.create_task(pipeline.run())
    try:
        source.put(comment(1, "好きなゲームについて長く話して！"))
        await out.wait_for(lambda: out.of(ReplyDelta), timeout=120)
        pipeline.execute(Command("skip", "", "chat"))
        await out.wait_for(lambda: out.of(ReplyEnded), timeout=60)
        assert out.of(ReplyCancelled)[0].reason == "cancelled"
        assert out.of(ReplyEnded)[0].stop_reason == "cancelled"
        await wait_until(lambda: server.log().count("Disconnected from client") > disconnects, 60)
        engine.extra_body = {}
        source.put(comment(2, "おやすみなさい！"))
        source.close()
        await asyncio.wait_for(run, 180)
    finally:
        run.cancel()
        await engine.close()
    ends = out.of(ReplyEnded)
    assert [e.comment_id for e in ends] == ["c1", "c2"] and ends[1].stop_reason in ("stop", "length")
    assert ends[1].text


async def test_server_killed_mid_reply_and_restarted(character, tmp_path):
    require_llama_cpp_server()
    server = LlamaServer(tmp_path / "server.log").start()
    engine = remote(server.url, connect_timeout_s=5)
    source, out = QueueSource(), Collect()
    try:
        await engine.start()
        engine.extra_body = NEVER_ENDS
        long = character.model_copy(update={"stop_strings": [], "generation": character.generation.model_copy(
            update={"max_new_tokens": 300, "max_chars": 100_000})})
        pipeline = Pipeline(character=long, engine=engine, source=source, outputs=[out])
        run = asyncio.create_task(pipeline.run())
        source.put(comment(1, "長いお話をして"))
        await out.wait_for(lambda: out.of(ReplyDelta), timeout=120)
        server.kill()  # dies mid-reply
        await out.wait_for(lambda: len(out.of(ReplyEnded)) == 1, timeout=60)
        first = out.of(ReplyEnded)[0]
        assert first.stop_reason == "error" and first.text  # what was shown stays, with its reason
        source.put(comment(2, "まだいる？"))  # while the server is down: this reply fails fast
        await out.wait_for(lambda: len(out.of(ReplyEnded)) == 2, timeout=60)
        assert out.of(ReplyEnded)[1].stop_reason == "error"
        server.start()  # back on the same port: the next comment is answered
        engine.extra_body = {}
        source.put(comment(3, "おかえり！"))
        await out.wait_for(lambda: len(out.of(ReplyEnded)) == 3, timeout=180)
        assert out.of(ReplyEnded)[2].stop_reason in ("stop", "length") and out.of(ReplyEnded)[2].text
        source.close()
        await asyncio.wait_for(run, 60)
    finally:
        await engine.close()
        server.stop()
    assert [e.comment_id for e in out.of(ReplyEnded)] == ["c1", "c2", "c3"]


async def test_server_down_at_start_is_a_clear_error():
    engine = OpenAIEngine(RemoteSettings(url=f"http://127.0.0.1:{free_port()}/v1", connect_timeout_s=3))
    with pytest.raises(GenerationError, match="cannot reach the engine server"):
        await engine.start()
    await engine.close()


async def wait_until(predicate, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


def test_benches_against_the_real_server(server, tiny_model):
    from aituber.bench.engine import format_remote_table, run_remote_engine_bench
    from aituber.bench.remote import report, run_remote_bench

    result = run_remote_bench(server.url, bots=(1, 2), replies=1, tokens=4, progress=lambda _: None)
    assert [r["replies"] for r in result["rounds"]] == [1, 2] and result["model"] == MODEL_ALIAS
    assert "first token p95" in report(result)
    # The local side is any CTranslate2 folder here (the tiny model): this checks the path, not the figures.
    engine = run_remote_engine_bench(server.url, tiny_model, new_tokens=4, prompts=("こんにちは",), rounds=2,
                                     server_log=server.log_path, isolate=False, progress=lambda _: None)
    assert engine["server_ms"][0] is not None and engine["server_timing"].startswith("llama.cpp's total time")
    assert engine["http_overhead_ms"] is not None and len(engine["bare_overheads_ms"]) == 2
    assert "HTTP overhead per reply" in format_remote_table(engine)

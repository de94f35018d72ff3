"""A Gemma-style byte-fallback BPE tokenizer and a tiny Gemma 3 on it, built locally (no download).

The tokenizer.json has the shape of Gemma 3's (studied from the real one): the special tokens first
(`<pad>`, `<eos>`, `<bos>`, `<unk>`, `<mask>`, `<unusedN>`, the turn markers, newline runs as added
tokens), then the 256 byte tokens `<0x00>`..`<0xFF>`, then the merged tokens in merge order, then the
single characters; spaces become `▁` (a Replace normalizer), the BPE model has byte fallback, and the
decoder turns `▁` back into spaces and fuses bytes. Its vocabulary is trained on a corpus of Japanese,
English, Russian, Arabic and Korean chat, so a `ja` trim has something to drop.
"""

from __future__ import annotations

import json
from pathlib import Path

SPACE = "\u2581"
CORPUS = [
    "こんにちは！今日は何を食べた？", "ミカちゃんこんばんは", "ゲームの配信楽しみにしてるよ", "おやすみなさい🌙",
    "今日は雨だね。傘持ってきた？", "いちごのパフェが大好きだよ！", "初見です、よろしくお願いします", "草www",
    "(´・ω・｀) かわいい", "(´Д｀) つかれた", "YouTube で配信しています", "スパチャありがとう🎉",
    "Hello from the US! The weather is nice today.", "The quick brown fox jumps over the lazy dog.",
    "I love your stream, see you tomorrow!", "what's your favorite food?",
    "Привет, как дела? Я смотрю стрим каждый день.", "Спасибо за стрим!",
    "مرحبا كيف حالك اليوم", "شكرا على البث", "안녕하세요 오늘도 방송 감사합니다",
]
SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", *(f"<unused{i}>" for i in range(8)),
            "<start_of_turn>", "<end_of_turn>"]
NEWLINES = ["\n" * n for n in range(1, 5)]


def gemma_like_tokenizer_json(vocab_size: int = 700, corpus: list[str] | None = None) -> str:
    """A Gemma 3-shaped tokenizer.json (see the module doc) with about `vocab_size` trained tokens."""
    from tokenizers import Tokenizer, models, normalizers, trainers

    text = corpus or CORPUS
    trainer_tok = Tokenizer(models.BPE())
    trainer_tok.normalizer = normalizers.Replace(" ", SPACE)
    trainer_tok.train_from_iterator(text * 4, trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False))
    trained = json.loads(trainer_tok.to_str())["model"]
    merges = [m if isinstance(m, list) else m.split(" ", 1) for m in trained["merges"]]
    singles = [t for t in trained["vocab"] if len(t) == 1 and t != "\n"]
    tokens = [*SPECIALS, *NEWLINES, *(f"<0x{b:02X}>" for b in range(256))]
    for a, b in merges:
        if a + b not in tokens:
            tokens.append(a + b)
    tokens += [c for c in singles if c not in tokens]
    vocab = {t: i for i, t in enumerate(tokens)}
    added = [{"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": t in SPECIALS} for t in [*SPECIALS, *NEWLINES]]
    data = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": SPACE},
        "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious",
                          "invert": False},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "<bos>", "type_id": 0}},
                                    {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "<bos>", "type_id": 1}},
                                    {"Sequence": {"id": "B", "type_id": 1}}],
                           "special_tokens": {"<bos>": {"id": "<bos>", "ids": [vocab["<bos>"]], "tokens": ["<bos>"]}}},
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }
    return json.dumps(data, ensure_ascii=False)


def build_gemma3_byte_fallback(out_dir: Path, seed: int = 0, vocab_size: int = 700) -> Path:
    """A 2-layer random Gemma 3 (text) on the Gemma-style tokenizer, saved as a transformers folder."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer_json = gemma_like_tokenizer_json(vocab_size)
    (out_dir / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
    (out_dir / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<bos>", "eos_token": "<eos>",
         "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>"}), encoding="utf-8")
    vocab = json.loads(tokenizer_json)["model"]["vocab"]
    torch.manual_seed(seed)
    config = Gemma3TextConfig(vocab_size=len(vocab), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=1, head_dim=16, sliding_window=64,
                              layer_types=["sliding_attention", "full_attention"], max_position_embeddings=512,
                              bos_token_id=vocab["<bos>"], eos_token_id=vocab["<eos>"], pad_token_id=vocab["<pad>"])
    Gemma3ForCausalLM(config).save_pretrained(out_dir)
    (out_dir / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": vocab["<bos>"], "eos_token_id": [vocab["<eos>"], vocab["<end_of_turn>"]],
         "pad_token_id": vocab["<pad>"]}), encoding="utf-8")
    return out_dir

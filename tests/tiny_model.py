"""Tiny random models built locally for tests: no download, a few seconds on a CPU.

`build_tokenizer` trains a byte-level BPE tokenizer on Japanese chat text, so multi-byte characters
are split across tokens (what the engine's whole-character decoding must handle).
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


def build_tokenizer(out_dir: Path, vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", tok.token_to_id("<bos>"))])
    out_dir.mkdir(parents=True, exist_ok=True)
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>",
                                   pad_token="<pad>", unk_token="<unk>")
    fast.save_pretrained(out_dir)
    return fast


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


def build_ct2_model(work_dir: Path) -> Path:
    """A converted tiny model folder, ready for `--model`."""
    from aituber.engine.prepare import convert_hf_dir

    hf = build_llama(work_dir / "hf")
    return convert_hf_dir(hf, work_dir / "ct2", quantization="float32", info={"source": "tests.tiny_model"})


if __name__ == "__main__":  # python -m tests.tiny_model OUT_DIR
    import sys

    print(json.dumps(str(build_ct2_model(Path(sys.argv[1])))))

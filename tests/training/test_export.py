"""Merging and conversion: the merged model equals base + adapter in transformers, and the converted
CTranslate2 model (float32) generates the merged model's tokens; the demo's tuned model is made once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PROMPT_TEXT = "あなたはミカです。\n\n### instruction:\nこんにちは\n\n### output:\n"
STEPS = 10


def prompt_ids(base: Path) -> list[int]:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(base))(PROMPT_TEXT)["input_ids"]  # BOS + text


def greedy_transformers(model, ids: list[int], steps: int, eos_id: int) -> list[int]:
    """Argmax step by step, the end token masked (so both sides run the full `steps`)."""
    import torch

    out: list[int] = []
    seq = list(ids)
    with torch.no_grad():
        for _ in range(steps):
            logits = model(input_ids=torch.tensor([seq])).logits[0, -1]
            logits[eos_id] = float("-inf")
            token = int(logits.argmax())
            out.append(token)
            seq.append(token)
    return out


def test_merged_equals_base_plus_adapter(trained, tiny_base: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from training.export import merge_adapter

    ids = prompt_ids(tiny_base)
    with_adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_base)),
                                             str(trained.adapter_dir)).eval()
    merged = merge_adapter(tiny_base, trained.adapter_dir)
    plain = AutoModelForCausalLM.from_pretrained(str(tiny_base)).eval()
    with torch.no_grad():
        a = with_adapter(input_ids=torch.tensor([ids])).logits
        b = merged(input_ids=torch.tensor([ids])).logits
        c = plain(input_ids=torch.tensor([ids])).logits
    assert torch.allclose(a, b, atol=1e-4)
    assert not torch.allclose(b, c, atol=1e-3)  # the adapter changed something
    eos = merged.config.eos_token_id
    assert greedy_transformers(with_adapter, ids, STEPS, eos) == greedy_transformers(merged, ids, STEPS, eos)


def test_converted_generates_the_merged_models_tokens(trained, tiny_base: Path) -> None:
    import ctranslate2
    from transformers import AutoTokenizer

    from training.export import merge_adapter

    ids = prompt_ids(tiny_base)
    merged = merge_adapter(tiny_base, trained.adapter_dir)
    expected = greedy_transformers(merged, ids, STEPS, merged.config.eos_token_id)
    assert json.loads((trained.model_dir / "aituber_model.json").read_text())["quantization"] == "float32"
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_base))
    generator = ctranslate2.Generator(str(trained.model_dir), device="cpu", compute_type="float32")
    try:
        result = generator.generate_batch([tokenizer.convert_ids_to_tokens(ids)], max_length=STEPS, min_length=STEPS,
                                          sampling_topk=1, include_prompt_in_result=False)
        got = result[0].sequences_ids[0]
    finally:
        del generator
    assert got == expected


def test_ensure_tuned_model_converts_once_per_adapter(trained, tiny_base: Path, tiny_character: Path,
                                                      tmp_path: Path) -> None:
    from training.export import ensure_tuned_model, tuned_model_status

    character = tmp_path / "tiny"
    shutil.copytree(tiny_character, character)
    shutil.copytree(trained.adapter_dir, character / "adapter")
    info_path = character / "adapter" / "aituber_adapter.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    assert info["base"] == str(tiny_base)
    cache = tmp_path / "cache"
    lines: list[str] = []
    out = ensure_tuned_model(character, cache, progress=lines.append)
    assert out == cache / "models" / "tiny-llama-int8" and (out / "model.bin").is_file()
    assert tuned_model_status(character, cache) == (out, True)
    stamp = (out / "model.bin").stat().st_mtime_ns
    lines.clear()
    assert ensure_tuned_model(character, cache, progress=lines.append) == out
    assert lines == [f"tuned model already prepared: {out}"] and (out / "model.bin").stat().st_mtime_ns == stamp
    # A changed adapter is merged again.
    config = json.loads((character / "adapter" / "adapter_config.json").read_text(encoding="utf-8"))
    config["lora_alpha"] = config["lora_alpha"] * 2
    (character / "adapter" / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    assert tuned_model_status(character, cache) == (out, False)
    ensure_tuned_model(character, cache, progress=lambda line: None)
    assert tuned_model_status(character, cache) == (out, True)

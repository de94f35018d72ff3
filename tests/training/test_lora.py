"""LoRA training on a tiny random Llama: loss falls, resume continues exactly, the merged model equals
base + adapter, and the converted CTranslate2 model generates what the merged model does."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from aituber.errors import ConfigError
from tests.training.conftest import TINY_OVERRIDES, write_character
from training.dataset import EncodedExample
from training.lora import TrainingError, batch_loss, bucket_batches, collate, lora_targets
from training.settings import load_training_character

pytestmark = pytest.mark.slow


def test_training_lowers_the_eval_loss_and_writes_everything(trained) -> None:
    assert trained.initial_eval_loss is not None and len(trained.history) == 3
    assert trained.history[-1].eval_loss < trained.initial_eval_loss
    assert trained.history[-1].train_loss < trained.history[0].train_loss
    assert trained.steps == trained.history[-1].steps == 3 * -(-trained.n_train // 4)
    out = trained.out_dir
    assert {p.name for p in trained.adapter_dir.iterdir()} >= {"adapter_config.json", "adapter_model.safetensors"}
    assert trained.model_dir == out and (out / "model.bin").is_file()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch-001", "epoch-002", "epoch-003"]
    log = json.loads((out / "training_log.json").read_text(encoding="utf-8"))
    assert log["steps"] == trained.steps and len(log["epochs"]) == 3


def test_the_output_folder_loads_in_the_bot_engine(trained) -> None:
    from aituber.engine.base import GenerationOptions
    from aituber.engine.ct2 import CTranslate2Engine

    with CTranslate2Engine(trained.model_dir, device="cpu") as engine:
        chunks = engine.generate("こんにちは", GenerationOptions(max_new_tokens=4, temperature=0))
    assert chunks[-1].end in ("stop", "length")


def test_training_prompt_ids_equal_what_the_engine_feeds(trained, tiny_character: Path) -> None:
    """BOS + prompt text, the persona prefix tokenized as the engine does."""
    from aituber.engine.convert import load_tokenizer
    from aituber.engine.ct2 import CTranslate2Engine
    from training.evaluate import bot_prompt_builder
    from training.train import build_encoder

    character, _ = load_training_character(tiny_character)
    encoder = build_encoder(character, load_tokenizer(trained.out_dir))
    with CTranslate2Engine(trained.model_dir, device="cpu") as engine:
        vocab = json.loads((trained.model_dir / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
        for comment in ("こんにちは！今日は何を食べた？", "歌ってほしいな〜"):
            static, rest = engine.encode_prompt(bot_prompt_builder(character, engine.info).build(comment))
            fed = [vocab[t] for t in (static or []) + rest]
            prompt, _ = encoder.builder.training_example(comment, "x")
            assert encoder.prompt_ids(prompt) == fed
            assert fed[0] == encoder.bos_id


def test_resume_continues_where_it_stopped(tiny_base: Path, tiny_character: Path, tmp_path: Path) -> None:
    """A run stopped after epoch 1 and resumed ends with the adapter of a run that never stopped."""
    from safetensors.torch import load_file

    from training.train import train_character

    quiet = {"progress": lambda line: None, "show_bar": False, "adapter_only": True}
    two = {**TINY_OVERRIDES, "epochs": 2}
    straight = train_character(tiny_character, tiny_base, tmp_path / "straight", overrides=two, **quiet)
    stopped = tmp_path / "stopped" / "checkpoints"
    stopped.mkdir(parents=True)
    shutil.copytree(straight.out_dir / "checkpoints" / "epoch-001", stopped / "epoch-001")
    resumed = train_character(tiny_character, tiny_base, tmp_path / "stopped", overrides=two, resume=True, **quiet)
    assert [h.epoch for h in resumed.history] == [1, 2] and resumed.steps == straight.steps
    assert resumed.history[0] == straight.history[0]
    a = load_file(straight.adapter_dir / "adapter_model.safetensors")
    b = load_file(resumed.adapter_dir / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key] - b[key]).abs().max() < 1e-6, key
    with pytest.raises(TrainingError, match="settings differ"):
        train_character(tiny_character, tiny_base, tmp_path / "stopped", overrides={**two, "learning_rate": 1e-3},
                        resume=True, **quiet)


def test_shared_prefix_pass_gives_the_same_loss_and_gradients(tiny_base: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(tiny_base)), LoraConfig(
        task_type="CAUSAL_LM", r=4, lora_alpha=8, lora_dropout=0.0, target_modules=lora_targets("llama")))
    for name, param in model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.05)
    prefix = list(range(10, 40))
    items = []
    for row in range(3):
        prompt = prefix + [50 + row] * (row + 2)
        reply = [60 + row, 70, 80 + row][: row + 1] + [1]
        items.append(EncodedExample("x", tuple(prompt + reply), tuple([-100] * len(prompt) + reply)))
    batch = collate(items, pad_id=0)
    assert batch["prefix"] == len(prefix)
    results = []
    for share in (False, True):
        model.zero_grad()
        loss, count = batch_loss(model, batch, torch.device("cpu"), share_prefix=share)
        (loss / count).backward()
        results.append((float(loss.detach()), count, {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}))
    (full, n_full, g_full), (shared, n_shared, g_shared) = results
    assert n_full == n_shared == sum(len(i) - i.prompt_length for i in items)
    assert abs(full - shared) < 1e-4
    for name in g_full:
        assert torch.allclose(g_full[name], g_shared[name], atol=1e-6), name


def test_collate_pads_right_and_keeps_logits_from_the_earliest_reply() -> None:
    a = EncodedExample("a", (5, 6, 7, 8), (-100, -100, 7, 8))
    b = EncodedExample("b", (5, 6, 9), (-100, 9, 1))
    batch = collate([a, b], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8], [5, 6, 9, 0]]
    assert batch["labels"].tolist() == [[-100, -100, 7, 8], [-100, 9, 1, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert batch["keep"] == 4 and batch["prefix"] == 0  # b's reply starts at 1: logits from position 0


def test_bucketing_sorts_by_length_and_shuffles_batches_by_seed() -> None:
    lengths = [5, 1, 9, 3, 7, 2, 8, 4]
    batches = bucket_batches(lengths, 2, seed=1, epoch=1)
    assert sorted(i for b in batches for i in b) == list(range(8)) and all(len(b) == 2 for b in batches)
    for batch in batches:
        assert abs(lengths[batch[0]] - lengths[batch[-1]]) <= 2
    assert bucket_batches(lengths, 2, 1, 1) == batches
    assert {tuple(b) for b in bucket_batches(lengths, 2, 1, 2)} == {tuple(b) for b in batches}


def test_lora_targets_per_architecture() -> None:
    assert lora_targets("gpt_neox") == ["query_key_value"]
    for model_type in ("llama", "qwen2", "gemma3_text"):
        assert lora_targets(model_type) == ["q_proj", "k_proj", "v_proj", "o_proj"]
        assert lora_targets(model_type, mlp=True)[-3:] == ["gate_proj", "up_proj", "down_proj"]
    with pytest.raises(TrainingError, match="bert"):
        lora_targets("bert")


def test_training_table_and_overrides(tmp_path: Path) -> None:
    folder = write_character(tmp_path / "c", extra_toml="\n[training]\nepochs = 5\nlearning_rate = 1\nrank = 16\n")
    character, settings = load_training_character(folder)
    assert character.id == "tiny"
    assert (settings.epochs, settings.learning_rate, settings.rank) == (5, 1.0, 16)
    assert settings.replace({"epochs": 2, "rank": None}).epochs == 2
    assert dataclasses.replace(settings, epochs=2) == settings.replace({"epochs": 2})
    write_character(folder, extra_toml="\n[training]\nepoch = 5\n")
    with pytest.raises(ConfigError, match=r"character.toml: \[training\]: unknown key 'epoch'"):
        load_training_character(folder)
    write_character(folder, extra_toml='\n[training]\nepochs = "five"\n')
    with pytest.raises(ConfigError, match="'epochs' must be int"):
        load_training_character(folder)


def test_dataset_problems_stop_training_before_any_model_loads(tmp_path: Path) -> None:
    from training.dataset import DatasetError
    from training.train import train_character

    folder = write_character(tmp_path / "c", rows=[{"instruction": "a", "output": "b"}, {"instruction": "c"}])
    with pytest.raises(DatasetError, match=r"train.jsonl:2: missing 'output'"):
        train_character(folder, tmp_path / "no-such-base", tmp_path / "out", progress=lambda line: None)
    assert not (tmp_path / "out").exists()

"""QLoRA on the CPU with bitsandbytes: a tiny rinna-style GPT-NeoX loaded in 4-bit (nf4) and 8-bit
(int8), a LoRA trained on top, merged into the full-precision base (never the quantised weights),
and the converted CTranslate2 model generating the merged model's tokens; the errors a user can
cause are one line naming what to install or change."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import bitsandbytes
import pytest

from aituber.errors import ConfigError
from tests.training.conftest import TINY_CHARACTER, TINY_OVERRIDES, write_character
from tests.training.test_export import greedy_transformers
from training.lora import TrainingError, check_quantized, lora_targets
from training.settings import TrainSettings, load_training_character


REPO = Path(__file__).resolve().parents[2]
#: Prompts in rinna's format (the template the recipe uses), ending where the reply starts.
PROMPTS = ("ユーザー: こんにちは<NL>システム: ", "ユーザー: 歌ってほしいな〜<NL>システム: ",
           "あなたはミカです。<NL>ユーザー: 今日は雨だね<NL>システム: ")
STEPS = 8


def rinna_character(folder: Path) -> Path:
    write_character(folder)
    toml = TINY_CHARACTER.replace('persona = ', 'template = "rinna"\npersona = ', 1)
    (folder / "character.toml").write_text(toml, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def neox_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_model import build_gpt_neox

    return build_gpt_neox(tmp_path_factory.mktemp("qlora-base") / "neox")


@pytest.fixture(scope="module")
def qlora_runs(neox_base: Path, tmp_path_factory: pytest.TempPathFactory):
    """train_character with --quantize 4bit and 8bit (the 8-bit run with gradient checkpointing),
    each merged and converted to CTranslate2 float32; mode -> (result, progress lines)."""
    from training.train import train_character

    character = rinna_character(tmp_path_factory.mktemp("qlora-character") / "tiny")
    runs = {}
    for mode in ("4bit", "8bit"):
        lines: list[str] = []
        overrides = {**TINY_OVERRIDES, "epochs": 2, "quantize": mode, "gradient_checkpointing": mode == "8bit"}
        result = train_character(character, neox_base, tmp_path_factory.mktemp(f"qlora-{mode}") / "out",
                                 overrides=overrides, quantization="float32", progress=lines.append, show_bar=False)
        runs[mode] = (result, lines)
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["4bit", "8bit"])
def test_qlora_trains_on_the_quantised_base(qlora_runs, mode: str) -> None:
    result, lines = qlora_runs[mode]
    kind = "4-bit nf4" if mode == "4bit" else "8-bit int8"
    assert any(f"base bitsandbytes {bitsandbytes.__version__} {kind}" in line for line in lines), lines
    assert any("gradient checkpointing" in line for line in lines) == (mode == "8bit")
    assert result.initial_eval_loss is not None and result.history[-1].eval_loss < result.initial_eval_loss
    log = json.loads((result.out_dir / "training_log.json").read_text(encoding="utf-8"))
    assert log["settings"]["quantize"] == mode
    info = json.loads((result.adapter_dir / "aituber_adapter.json").read_text(encoding="utf-8"))
    assert info["settings"]["quantize"] == mode
    assert any("merging into the full-precision base" in line for line in lines)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["4bit", "8bit"])
def test_merge_goes_into_the_full_precision_base(qlora_runs, neox_base: Path, mode: str) -> None:
    """Every adapted weight of the merged model is the base's own weight plus scale * B @ A, to float32
    rounding, while the quantised weight the adapter was trained on is much further from it: the LoRA
    was merged into a full-precision copy, not into the de-quantised training weights."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from training.export import merge_adapter
    from training.lora import load_base

    result, _ = qlora_runs[mode]
    config = json.loads((result.adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    scale = config["lora_alpha"] / config["r"]
    adapter = load_file(result.adapter_dir / "adapter_model.safetensors")
    base = dict(AutoModelForCausalLM.from_pretrained(str(neox_base), dtype=torch.float32).named_parameters())
    merged = dict(merge_adapter(neox_base, result.adapter_dir).named_parameters())
    quantised, _ = load_base(neox_base, TrainSettings(quantize=mode), torch.device("cpu"), torch.float32)
    dequantised = {name: module for name, module in quantised.named_modules()}
    checked = 0
    for key in adapter:
        if ".lora_A." not in key:
            continue
        name = key.removeprefix("base_model.model.").replace(".lora_A.weight", ".weight")
        delta = scale * adapter[key.replace(".lora_A.", ".lora_B.")] @ adapter[key]
        assert float(delta.abs().max()) > 1e-4, name  # training moved the adapter
        assert torch.allclose(merged[name], base[name] + delta, atol=1e-6), name
        module = dequantised[name.removesuffix(".weight")]
        if mode == "4bit":
            training_weight = bitsandbytes.functional.dequantize_4bit(module.weight.data, module.weight.quant_state)
        else:
            training_weight = module.weight.CB.float() * module.weight.SCB.float()[:, None] / 127
        error = float((training_weight.float() - base[name]).detach().abs().max())
        assert 1e-4 < error < 0.2 * float(base[name].abs().max()), (name, error)  # quantisation error, no more
        checked += 1
    assert checked == 2  # query_key_value in both layers


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["4bit", "8bit"])
def test_converted_model_generates_the_merged_models_tokens(qlora_runs, neox_base: Path, mode: str) -> None:
    """Greedy, token for token, on a few prompts: the merged transformers model (float32) and the
    CTranslate2 model `aituber train` converted from it (float32); the adapter changed the replies."""
    import ctranslate2
    import torch
    from transformers import AutoModelForCausalLM

    from aituber.engine.convert import load_tokenizer
    from training.export import merge_adapter

    result, _ = qlora_runs[mode]
    assert json.loads((result.model_dir / "aituber_model.json").read_text())["quantization"] == "float32"
    merged = merge_adapter(neox_base, result.adapter_dir)
    plain = AutoModelForCausalLM.from_pretrained(str(neox_base), dtype=torch.float32).eval()
    tokenizer = load_tokenizer(result.model_dir).hf
    eos = merged.config.eos_token_id
    generator = ctranslate2.Generator(str(result.model_dir), device="cpu", compute_type="float32")
    changed = 0
    try:
        for text in PROMPTS:
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            expected = greedy_transformers(merged, ids, STEPS, eos)
            got = generator.generate_batch([tokenizer.convert_ids_to_tokens(ids)], max_length=STEPS,
                                           min_length=STEPS, sampling_topk=1, include_prompt_in_result=False)
            assert got[0].sequences_ids[0] == expected, text
            changed += expected != greedy_transformers(plain, ids, STEPS, eos)
    finally:
        del generator
    assert changed, "the adapter changed none of the greedy replies"


# --- the training loop on a quantised base ---------------------------------------------------------


def lora_gradients(base_dir: Path, settings: TrainSettings, eval_first: bool, share_prefix: bool = True):
    """(loss, LoRA gradients) of one batch with a shared prefix, LoRA B initialised at random (seeded)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from training.dataset import EncodedExample
    from training.lora import batch_loss, collate, load_base

    base, _ = load_base(base_dir, settings, torch.device("cpu"), torch.float32)
    torch.manual_seed(0)
    model = get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, lora_dropout=0.0,
                                            target_modules=lora_targets(base.config.model_type)))
    for name, param in model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.05)
    prefix = list(range(10, 30))
    items = [EncodedExample("x", tuple(prefix + [40 + row, 50, 60 + row, 1]), tuple([-100] * 21 + [50, 60 + row, 1]))
             for row in range(2)]
    batch = collate(items, pad_id=0)
    if eval_first:  # what the eval loss before training does
        model.eval()
        with torch.no_grad():
            batch_loss(model, batch, torch.device("cpu"))
    model.train()
    loss, count = batch_loss(model, batch, torch.device("cpu"), share_prefix=share_prefix)
    (loss / count).backward()
    return float(loss.detach()), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.slow
def test_4bit_gradients_are_the_same_after_an_eval_pass(tiny_base: Path) -> None:
    """bitsandbytes' CPU backend repacks 4-bit weights for inference in an eval pass without
    gradients; afterwards its layers would pass no gradient back. Training keeps them trainable."""
    settings = TrainSettings(quantize="4bit")
    loss, fresh = lora_gradients(tiny_base, settings, eval_first=False)
    loss_after, after = lora_gradients(tiny_base, settings, eval_first=True)
    assert abs(loss - loss_after) < 1e-4
    assert fresh.keys() == after.keys() and len(fresh) == 16
    for name in fresh:
        assert float(fresh[name].abs().max()) > 0, name
        assert (fresh[name] - after[name]).abs().max() < 1e-5, name


@pytest.mark.slow
def test_gradient_checkpointing_gives_the_same_loss_and_gradients(tiny_base: Path) -> None:
    import torch

    loss, plain = lora_gradients(tiny_base, TrainSettings(), eval_first=False, share_prefix=False)
    loss_ckpt, ckpt = lora_gradients(tiny_base, TrainSettings(gradient_checkpointing=True), eval_first=False,
                                     share_prefix=False)
    assert abs(loss - loss_ckpt) < 1e-4
    for name in plain:
        assert torch.allclose(plain[name], ckpt[name], atol=1e-6), name


# --- errors a user can cause -----------------------------------------------------------------------


def test_quantize_without_bitsandbytes_is_one_line_naming_the_install(tiny_base: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from training.train import train_character

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # what `import bitsandbytes` meets when absent
    folder = write_character(tmp_path / "c")
    with pytest.raises(TrainingError) as caught:
        train_character(folder, tiny_base, tmp_path / "out", overrides={"quantize": "4bit"}, progress=lambda _: None)
    message = str(caught.value)
    assert "\n" not in message and "--quantize 4bit needs bitsandbytes" in message
    assert "pip install 'bitsandbytes>=0.50,<0.51'" in message
    assert not (tmp_path / "out").exists()


def test_the_command_prints_the_missing_bitsandbytes_error(tiny_base: Path, tmp_path: Path) -> None:
    folder = write_character(tmp_path / "c")
    code = ("import sys; sys.modules['bitsandbytes'] = None; from aituber.cli import main; "
            f"sys.exit(main(['train', {str(folder)!r}, '--base', {str(tiny_base)!r}, '--out', "
            f"{str(tmp_path / 'out')!r}, '--quantize', '8bit']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert errors == ["aituber: error: --quantize 8bit needs bitsandbytes, which is not installed: "
                      "pip install 'bitsandbytes>=0.50,<0.51' (or pip install -e '.[train]')"], done.stderr


def test_an_already_quantised_base_is_refused(tiny_base: Path, tmp_path: Path) -> None:
    from training.train import train_character

    base = tmp_path / "gptq"
    shutil.copytree(tiny_base, base)
    config = json.loads((base / "config.json").read_text(encoding="utf-8"))
    config["quantization_config"] = {"quant_method": "gptq", "bits": 4}
    (base / "config.json").write_text(json.dumps(config), encoding="utf-8")
    folder = write_character(tmp_path / "c")
    for quantize in ("4bit", "none"):
        with pytest.raises(TrainingError, match=r"already quantised \(gptq\); train on the original"):
            train_character(folder, base, tmp_path / "out", overrides={"quantize": quantize},
                            progress=lambda _: None)


def test_an_architecture_without_lora_targets_is_refused_before_loading(tmp_path: Path) -> None:
    from training.lora import check_quantizable

    base = tmp_path / "phi"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"model_type": "phi"}), encoding="utf-8")
    with pytest.raises(TrainingError, match="no LoRA target modules known for model_type 'phi'"):
        check_quantizable(base, "4bit")
    check_quantizable(base, "none")  # without --quantize, conversion says what it supports


def test_layers_bitsandbytes_left_in_full_precision_are_named(tiny_base: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    plain = AutoModelForCausalLM.from_pretrained(str(tiny_base), dtype=torch.float32)
    with pytest.raises(TrainingError, match=r"--quantize 4bit: bitsandbytes did not quantise k_proj, o_proj, "
                                            r"q_proj, v_proj of llama; train this base without --quantize"):
        check_quantized(plain, lora_targets("llama"), "4bit")


def test_quantize_settings_in_the_training_table(tmp_path: Path) -> None:
    folder = write_character(tmp_path / "c", extra_toml='\n[training]\nquantize = "4bit"\ngradient_checkpointing = true\n')
    _, settings = load_training_character(folder)
    assert (settings.quantize, settings.gradient_checkpointing) == ("4bit", True)
    assert settings.replace({"quantize": "none"}).quantize == "none"
    write_character(folder, extra_toml='\n[training]\nquantize = "3bit"\n')
    with pytest.raises(ConfigError, match=r"\[training\]: 'quantize' must be one of 'none', '4bit', '8bit', got '3bit'"):
        load_training_character(folder)


def test_the_train_command_takes_quantize_and_checkpointing() -> None:
    from aituber.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["train", "characters/mika", "--out", "x", "--quantize", "4bit",
                              "--gradient-checkpointing"])
    assert (args.quantize, args.gradient_checkpointing) == ("4bit", True)
    assert parser.parse_args(["train", "characters/mika", "--out", "x"]).quantize is None  # the table decides
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "characters/mika", "--out", "x", "--quantize", "3bit"])


def test_a_checkpoint_from_before_quantize_existed_still_resumes(tmp_path: Path) -> None:
    from training.lora import _check_resumable

    settings = TrainSettings()
    old = {k: v for k, v in dataclasses.asdict(settings).items() if k not in ("quantize", "gradient_checkpointing")}
    _check_resumable({"settings": old, "fingerprint": {}}, settings, {}, tmp_path)
    _check_resumable({"settings": old, "fingerprint": {}}, TrainSettings(gradient_checkpointing=True), {}, tmp_path)
    with pytest.raises(TrainingError, match=r"quantize: 'none' -> '4bit'"):
        _check_resumable({"settings": old, "fingerprint": {}}, TrainSettings(quantize="4bit"), {}, tmp_path)

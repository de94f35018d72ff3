"""LoRA training through peft, in a plain PyTorch loop.

`train_lora(base_dir, train, eval_items, settings, out_dir, pad_id=...)` trains an adapter on examples
already encoded by `training.dataset.PromptEncoder` and writes, per epoch, a checkpoint
(`out_dir/checkpoints/epoch-NNN/`: the adapter plus optimizer, scheduler, step and RNG state) that
`resume=True` continues from (on the CPU, a resumed run ends with the same adapter as one that never
stopped). Batches are padded per batch and bucketed by length (sorted, then the batches shuffled with
the seed), so a batch wastes little on padding.

Two things keep a long persona prompt cheap, without changing the loss or its gradients:
- logits are made only for the positions from the earliest reply token on (the loss is on the reply
  only; a 262k vocabulary's output layer over the whole prompt would be much of the work);
- the prefix every row of a batch shares (the persona) runs once, with gradients, and its key/value
  cache is repeated for every row.

CPU works (float32); with CUDA, bf16 autocast (fp16 with a gradient scaler where bf16 is missing).

QLoRA (`settings.quantize`): the base is loaded through bitsandbytes, "4bit" as nf4 with double
quantisation (the compute in bf16/fp16 on CUDA, float32 on the CPU) or "8bit" as LLM.int8, prepared
with peft's `prepare_model_for_kbit_training` (base frozen, the rest in float32) and the LoRA trained
on top. Only the adapter is saved; the merge (`training.export`) goes into a full-precision copy of
the base, never into the quantised weights. bitsandbytes >= 0.50 runs this on the CPU too (the tests
do); on CUDA it is the path for 3-8B bases on a consumer GPU, with `gradient_checkpointing`.

This module imports torch; the bot never imports it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import json
import logging
import math
import os
import random
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aituber.errors import AituberError

from training.dataset import IGNORE_INDEX, EncodedExample
from training.settings import QUANTIZE_CHOICES, TrainSettings

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

#: LoRA target modules per `config.model_type`: (attention, MLP).
LORA_TARGETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "gpt_neox": (("query_key_value",), ("dense_h_to_4h", "dense_4h_to_h")),
    **{t: (("q_proj", "k_proj", "v_proj", "o_proj"), ("gate_proj", "up_proj", "down_proj"))
       for t in ("llama", "qwen2", "gemma3_text", "gemma3", "gemma2", "gemma", "mistral")},
}
CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.pt"
#: Settings that may change between a checkpoint and its resumption (they do not change the result).
RESUMABLE_CHANGES = ("epochs", "gradient_checkpointing")
#: What `pip install` brings bitsandbytes at the version the `train` extra pins.
BITSANDBYTES_INSTALL = "pip install 'bitsandbytes>=0.50,<0.51' (or pip install -e '.[train]')"


class TrainingError(AituberError):
    """Training cannot start or continue (bad settings, a checkpoint that does not match)."""


@dataclass(slots=True)
class EpochStats:
    epoch: int
    steps: int
    """Optimizer steps so far."""
    train_loss: float
    eval_loss: float | None
    seconds: float


@dataclass(slots=True)
class LoraRun:
    adapter_dir: Path
    history: list[EpochStats] = field(default_factory=list)
    initial_eval_loss: float | None = None
    steps: int = 0
    seconds: float = 0.0
    device: str = "cpu"
    dtype: str = "float32"


def lora_targets(model_type: str, mlp: bool = False) -> list[str]:
    if model_type not in LORA_TARGETS:
        raise TrainingError(f"no LoRA target modules known for model_type {model_type!r} "
                            f"(known: {', '.join(sorted(LORA_TARGETS))})")
    attention, mlp_modules = LORA_TARGETS[model_type]
    return [*attention, *(mlp_modules if mlp else ())]


# --- batching -------------------------------------------------------------------------------------


def bucket_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Indices sorted by length and cut into batches; the batch order is shuffled per epoch (seeded)."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    random.Random(seed * 1_000_003 + epoch).shuffle(batches)
    return batches


def collate(items: Sequence[EncodedExample], pad_id: int) -> dict[str, Any]:
    """Right-padded tensors for one batch, with `keep` (how many last positions need logits) and
    `prefix` (how many leading tokens every row shares, all of them prompt)."""
    import torch

    width = max(len(item) for item in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, item in enumerate(items):
        n = len(item)
        ids[row, :n] = torch.tensor(item.input_ids)
        labels[row, :n] = torch.tensor(item.labels)
        mask[row, :n] = 1
    first = max(min(item.prompt_length for item in items), 1)
    shared = len(os.path.commonprefix([item.input_ids for item in items]))
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "keep": width - first + 1,
            "prefix": min(shared, first - 1)}


@functools.cache
def _cache_argument_of(forward: Any) -> str:
    return "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"


def _cache_argument(model: Any) -> str:
    """transformers 5 renamed `past_key_values` to `cache` (the old name still works, with a warning)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return _cache_argument_of(type(base).forward)


#: A shared prefix shorter than this is not worth a separate pass.
MIN_SHARED_PREFIX = 16


def batch_loss(model: Any, batch: Mapping[str, Any], device: Any, share_prefix: bool = True) -> tuple[Any, int]:
    """(summed cross-entropy over the reply tokens, their count).

    Logits are made only for the last `keep` positions: everything before the earliest reply in the
    batch is prompt. When the rows share a prefix (the persona), it is run once, with gradients, and
    its key/value cache repeated for every row: the same loss and gradients as running each row
    whole, for a fraction of the work."""
    import torch
    import torch.nn.functional as F

    keep = batch["keep"]
    ids = batch["input_ids"].to(device)
    mask = batch["attention_mask"].to(device)
    prefix = batch["prefix"] if share_prefix and ids.shape[0] > 1 else 0
    if prefix >= MIN_SHARED_PREFIX:
        first = model(input_ids=ids[:1, :prefix], attention_mask=mask[:1, :prefix], use_cache=True,
                      logits_to_keep=1)
        cache = getattr(first, "cache", None) or first.past_key_values
        cache.batch_repeat_interleave(ids.shape[0])
        out = model(input_ids=ids[:, prefix:], attention_mask=mask, use_cache=True, logits_to_keep=keep,
                    **{_cache_argument(model): cache})
    else:
        out = model(input_ids=ids, attention_mask=mask, logits_to_keep=keep, use_cache=False)
    logits = out.logits[:, :-1, :].float()
    targets = batch["labels"][:, ids.shape[1] - keep + 1:].to(device)
    count = int((targets != IGNORE_INDEX).sum())
    if count == 0:
        return torch.zeros((), device=device, requires_grad=model.training), 0
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           ignore_index=IGNORE_INDEX, reduction="sum")
    return loss, count


def evaluate_loss(model: Any, items: Sequence[EncodedExample], batch_size: int, pad_id: int, device: Any,
                  autocast: Callable[[], Any]) -> float | None:
    """Mean loss per reply token over `items` (None when there are none)."""
    import torch

    if not items:
        return None
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in bucket_batches([len(i) for i in items], batch_size, 0, 0):
            with autocast():
                loss, n = batch_loss(model, collate([items[i] for i in batch], pad_id), device)
            total += float(loss)
            count += n
    model.train(was_training)
    return total / max(count, 1)


# --- loading the base (QLoRA) ----------------------------------------------------------------------


class _DropBitsandbytesNoise(logging.Filter):
    """Two bitsandbytes log lines that say nothing a user can act on: at import, its CPU backend's
    hint to `pip install kernels` (an optional kernel fetched from the Hugging Face hub; it uses its
    own without it), and, on every 8-bit matmul on the CPU, that float32 inputs are cast to float16
    (the progress line says so once)."""

    NOISE = ("kernels-community", "MatMul8bitLt: inputs will be cast")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(noise in message for noise in self.NOISE)


def quiet_bitsandbytes_import() -> None:
    """Drop that noise; call before peft is imported (peft imports bitsandbytes when it is installed,
    for a plain LoRA too). Idempotent."""
    for name in ("bitsandbytes.backends.cpu.ops", "bitsandbytes.autograd._functions"):
        target = logging.getLogger(name)
        if not any(isinstance(f, _DropBitsandbytesNoise) for f in target.filters):
            target.addFilter(_DropBitsandbytesNoise())


def require_bitsandbytes(quantize: str) -> str:
    """bitsandbytes' version, for `quantize` "4bit"/"8bit"; a one-line TrainingError naming what to
    install when it is missing or does not load."""
    if quantize not in QUANTIZE_CHOICES or quantize == "none":
        raise TrainingError(f"quantize {quantize!r}: not a bitsandbytes mode (choose 4bit or 8bit)")
    quiet_bitsandbytes_import()
    try:
        import bitsandbytes
    except ImportError as exc:
        raise TrainingError(f"--quantize {quantize} needs bitsandbytes, which is not installed: "
                            f"{BITSANDBYTES_INSTALL}") from exc
    except Exception as exc:  # its native library failed to load (a CUDA/ROCm mismatch, a broken install)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingError(f"--quantize {quantize}: bitsandbytes does not load ({first}); reinstall it: "
                            f"{BITSANDBYTES_INSTALL}") from exc
    return str(getattr(bitsandbytes, "__version__", "?"))


def check_quantizable(base_dir: Path, quantize: str) -> None:
    """Refuse, before anything is loaded, a base that cannot be trained with `quantize`: one whose
    architecture has no known LoRA targets, or a checkpoint that is already quantised (its
    config.json has a `quantization_config`: GPTQ, AWQ, a bitsandbytes export), which could neither be
    re-quantised nor merged into at full precision."""
    config_path = Path(base_dir) / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TrainingError(f"{config_path}: unreadable: {exc}") from exc
    existing = config.get("quantization_config")
    if isinstance(existing, dict):
        method = existing.get("quant_method") or existing.get("quantization_method") or "unknown method"
        raise TrainingError(f"--base {base_dir}: already quantised ({method}); train on the original "
                            "float16/bfloat16/float32 checkpoint (with --quantize 4bit for QLoRA)")
    if quantize != "none":
        lora_targets(str(config.get("model_type")))


def _quantization_config(quantize: str, compute_dtype: Any) -> Any:
    from transformers import BitsAndBytesConfig

    if quantize == "4bit":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=compute_dtype)
    return BitsAndBytesConfig(load_in_8bit=True)


def check_quantized(model: Any, targets: Sequence[str], quantize: str) -> int:
    """How many LoRA target layers bitsandbytes quantised; a TrainingError naming the layers it left
    in full precision (an architecture whose projections bitsandbytes does not replace)."""
    import bitsandbytes as bnb

    kind = bnb.nn.Linear4bit if quantize == "4bit" else bnb.nn.Linear8bitLt
    quantized, plain = 0, set()
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in targets:
            if isinstance(module, kind):
                quantized += 1
            else:
                plain.add(leaf)
    if plain or not quantized:
        missing = ", ".join(sorted(plain or targets))
        raise TrainingError(f"--quantize {quantize}: bitsandbytes did not quantise {missing} of "
                            f"{model.config.model_type}; train this base without --quantize")
    return quantized


@contextlib.contextmanager
def peft_deprecation_quiet() -> Iterator[None]:
    """peft 0.21 asks transformers 5 `is_gradient_checkpointing`, deprecated there: a FutureWarning on
    every run that the user can do nothing about."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def _keep_4bit_trainable_on_cpu(model: Any) -> None:
    """bitsandbytes' CPU backend repacks a 4-bit weight for its bf16 inference kernel the first time
    the layer runs in eval mode without gradients (our eval loss), and from then on no gradient flows
    back through the quantised weight: the LoRA of every earlier layer would train on wrong gradients
    (off by more than their own size on the tiny test model). Training keeps the weights in the
    layout autograd goes through."""
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def load_base(base_dir: Path, settings: TrainSettings, device: Any, train_dtype: Any) -> tuple[Any, str]:
    """The transformers base, ready for a LoRA on `device`, and a few words on how it was loaded.

    Full precision: float32, moved to `device`. Quantised: bitsandbytes nf4/int8 straight onto
    `device` (non-quantised parts in `train_dtype`, then float32 by `prepare_model_for_kbit_training`)."""
    import torch
    from transformers import AutoModelForCausalLM

    quantize = settings.quantize
    if quantize == "none":
        base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
        base.to(device)
        how = "float32"
    else:
        from peft import prepare_model_for_kbit_training

        version = require_bitsandbytes(quantize)
        check_quantizable(base_dir, quantize)
        compute_dtype = train_dtype if device.type == "cuda" else torch.float32
        place = torch.cuda.current_device() if device.type == "cuda" else "cpu"
        try:
            base = AutoModelForCausalLM.from_pretrained(
                str(base_dir), dtype=compute_dtype, device_map={"": place},
                quantization_config=_quantization_config(quantize, compute_dtype))
        except torch.OutOfMemoryError:
            raise
        except (ValueError, RuntimeError, ImportError, NotImplementedError, TypeError, AssertionError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TrainingError(f"--quantize {quantize}: bitsandbytes {version} cannot load {base_dir} "
                                f"({first}); train without --quantize or with the other mode") from exc
        check_quantized(base, lora_targets(base.config.model_type, settings.mlp), quantize)
        if device.type == "cpu":
            _keep_4bit_trainable_on_cpu(base)
        with peft_deprecation_quiet():
            base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
        how = (f"bitsandbytes {version} 4-bit nf4 (double quantisation, compute "
               f"{str(compute_dtype).replace('torch.', '')})" if quantize == "4bit"
               else f"bitsandbytes {version} 8-bit int8"
               + (" (float32 inputs cast to float16 for the int8 matmul)" if device.type == "cpu" else ""))
    if settings.gradient_checkpointing:
        enable = getattr(base, "activation_checkpointing_enable", None)
        if enable is not None:
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        how += ", gradient checkpointing"
    return base, how


# --- the run --------------------------------------------------------------------------------------


def _device_and_autocast(torch: Any) -> tuple[Any, str, Callable[[], Any], bool]:
    if torch.cuda.is_available():
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        name = "bfloat16" if dtype is torch.bfloat16 else "float16"
        return (torch.device("cuda"), name, lambda: torch.autocast("cuda", dtype=dtype),
                dtype is torch.float16)
    return torch.device("cpu"), "float32", contextlib.nullcontext, False


def latest_checkpoint(out_dir: Path) -> Path | None:
    done = sorted(p for p in (out_dir / CHECKPOINTS).glob("epoch-*") if (p / STATE_FILE).is_file())
    return done[-1] if done else None


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def save_adapter(model: Any, dest: Path, base_label: str) -> Path:
    """The adapter only (adapter_config.json + adapter_model.safetensors), with the base named by
    `base_label` instead of a local path."""
    model.save_pretrained(str(dest), safe_serialization=True)
    (dest / "README.md").unlink(missing_ok=True)
    config_path = dest / "adapter_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base_label
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return dest


def train_lora(base_dir: Path, train: Sequence[EncodedExample], eval_items: Sequence[EncodedExample],
               settings: TrainSettings, out_dir: Path, *, pad_id: int, resume: bool = False,
               base_label: str | None = None, progress: Progress = print, show_bar: bool = True,
               fingerprint: Mapping[str, Any] | None = None) -> LoraRun:
    """Train a LoRA adapter on `train`; the final adapter goes to `out_dir/adapter`.

    `fingerprint` (what the data and base were) is stored in each checkpoint; resuming from a
    checkpoint whose fingerprint or settings (other than `epochs`) differ is refused."""
    import torch

    quiet_bitsandbytes_import()
    from peft import LoraConfig, PeftModel, get_peft_model
    from tqdm import tqdm

    if not train:
        raise TrainingError("no training examples")
    out_dir.mkdir(parents=True, exist_ok=True)
    base_label = base_label or str(base_dir)
    fingerprint = dict(fingerprint or {})
    device, dtype_name, autocast, use_scaler = _device_and_autocast(torch)
    run = LoraRun(adapter_dir=out_dir / "adapter", device=str(device), dtype=dtype_name)

    checkpoint = latest_checkpoint(out_dir) if resume else None
    state: dict[str, Any] | None = None
    if resume and checkpoint is None:
        progress(f"--resume: no checkpoint in {out_dir / CHECKPOINTS}; starting from the beginning")
    if checkpoint is not None:
        state = torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=False)
        _check_resumable(state, settings, fingerprint, checkpoint)

    _seed_everything(settings.seed)
    train_dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype_name, torch.float32)
    base, loaded_as = load_base(base_dir, settings, device, train_dtype)
    model_type = base.config.model_type
    if state is not None:
        with peft_deprecation_quiet():
            model = PeftModel.from_pretrained(base, str(checkpoint), is_trainable=True)
    else:
        config = LoraConfig(task_type="CAUSAL_LM", r=settings.rank, lora_alpha=settings.alpha,
                            lora_dropout=settings.dropout, target_modules=lora_targets(model_type, settings.mlp),
                            bias="none")
        with peft_deprecation_quiet():
            model = get_peft_model(base, config)
    if settings.quantize == "none":
        model.to(device)  # a bitsandbytes model was placed on the device as it loaded
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    progress(f"LoRA r={settings.rank} alpha={settings.alpha} on {', '.join(lora_targets(model_type, settings.mlp))}: "
             f"{n_trainable:,} trainable parameters; {len(train)} train / {len(eval_items)} eval examples; "
             f"{device} {dtype_name}; base {loaded_as}")

    steps_per_epoch = math.ceil(len(train) / settings.batch_size)
    total_steps = steps_per_epoch * settings.epochs
    warmup = int(total_steps * settings.warmup_ratio)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    scaler = torch.amp.GradScaler("cuda") if use_scaler else None
    start_epoch, step = 1, 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start_epoch, step = state["epoch"] + 1, state["step"]
        run.history = [EpochStats(**h) for h in state["history"]]
        run.initial_eval_loss = state.get("initial_eval_loss")
        run.seconds = state.get("seconds", 0.0)
        torch.set_rng_state(state["torch_rng"])
        progress(f"resuming from {checkpoint} (epoch {state['epoch']} done, step {step})")
    else:
        run.initial_eval_loss = evaluate_loss(model, eval_items, settings.batch_size, pad_id, device, autocast)
        if run.initial_eval_loss is not None:
            progress(f"eval loss before training: {run.initial_eval_loss:.4f}")

    lengths = [len(item) for item in train]
    model.train()
    for epoch in range(start_epoch, settings.epochs + 1):
        started = time.monotonic()
        batches = bucket_batches(lengths, settings.batch_size, settings.seed, epoch)
        total, count = 0.0, 0
        bar = tqdm(batches, desc=f"epoch {epoch}/{settings.epochs}", unit="step", disable=not show_bar,
                   dynamic_ncols=True)
        for batch_indices in bar:
            batch = collate([train[i] for i in batch_indices], pad_id)
            with autocast():
                # Checkpointed layers run without a key/value cache: no shared-prefix pass then.
                loss_sum, n = batch_loss(model, batch, device, share_prefix=not settings.gradient_checkpointing)
            loss = loss_sum / max(n, 1)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(trainable, settings.max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable, settings.max_grad_norm)
                optimizer.step()
            scheduler.step()
            step += 1
            total += float(loss_sum.detach())
            count += n
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", lr=f"{scheduler.get_last_lr()[0]:.1e}")
        bar.close()
        eval_loss = evaluate_loss(model, eval_items, settings.batch_size, pad_id, device, autocast)
        stats = EpochStats(epoch=epoch, steps=step, train_loss=total / max(count, 1), eval_loss=eval_loss,
                           seconds=time.monotonic() - started)
        run.history.append(stats)
        run.seconds += stats.seconds
        progress(f"epoch {epoch}/{settings.epochs}: train loss {stats.train_loss:.4f}, eval loss "
                 f"{'-' if eval_loss is None else f'{eval_loss:.4f}'} ({stats.seconds:.0f} s, step {step})")
        ckpt = out_dir / CHECKPOINTS / f"epoch-{epoch:03d}"
        save_adapter(model, ckpt, base_label)
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None, "epoch": epoch, "step": step,
                    "history": [dataclasses.asdict(h) for h in run.history],
                    "initial_eval_loss": run.initial_eval_loss, "seconds": run.seconds,
                    "torch_rng": torch.get_rng_state(), "settings": dataclasses.asdict(settings),
                    "fingerprint": fingerprint}, ckpt / STATE_FILE)
    run.steps = step
    final = latest_checkpoint(out_dir)
    if run.adapter_dir.exists():
        shutil.rmtree(run.adapter_dir)
    if state is not None and start_epoch > settings.epochs and final is not None:
        progress(f"all {settings.epochs} epochs were already done in {final}")
    save_adapter(model, run.adapter_dir, base_label)
    del model, base, optimizer
    return run


def _check_resumable(state: Mapping[str, Any], settings: TrainSettings, fingerprint: Mapping[str, Any],
                     checkpoint: Path) -> None:
    now = dataclasses.asdict(settings)
    # A checkpoint from before a setting existed ran with its default.
    saved = {**dataclasses.asdict(TrainSettings()), **state.get("settings", {})}
    differ = [k for k in now if k not in RESUMABLE_CHANGES and saved.get(k) != now[k]]
    if differ:
        raise TrainingError(f"{checkpoint}: cannot resume: settings differ from the checkpoint's "
                            f"({', '.join(f'{k}: {saved.get(k)!r} -> {now[k]!r}' for k in differ)}); "
                            "use the same settings or a new --out folder")
    if dict(state.get("fingerprint", {})) != dict(fingerprint):
        changed = [k for k in set(fingerprint) | set(state.get("fingerprint", {}))
                   if state.get("fingerprint", {}).get(k) != fingerprint.get(k)]
        raise TrainingError(f"{checkpoint}: cannot resume: {', '.join(sorted(changed))} changed since the "
                            "checkpoint; use a new --out folder")

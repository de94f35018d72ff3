"""CTranslate2 4.8's Transformers converter, made to read transformers 5 models correctly.

transformers 5 moved the rotary settings into `config.rope_parameters` and renamed GPT-NeoX's output
layer `embed_out` to `lm_head`; CTranslate2 4.8 still reads the old names, or silently falls back
to defaults. `apply()` patches what it reads, once per process (calling it again does nothing):

- GPT-NeoX: `config.rotary_pct` (from `rope_parameters["partial_rotary_factor"]`), `model.embed_out`
  (the output layer, whichever name it has), and the rotary base (`rope_theta`; CTranslate2 always
  used 10000).
- Gemma 3: each layer's rotary base from `rope_parameters[layer_type]` (CTranslate2 reads
  `rope_theta` / `rope_local_base_freq`, which are gone, and uses defaults), linear RoPE scaling,
  and `query_pre_attn_scalar` (CTranslate2 scales queries by the head size).
- Llama, Qwen2: a head size other than hidden/heads is refused (CTranslate2 would build a wrong model).

A setting the converter cannot express raises NotImplementedError, which conversion reports.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

_APPLIED = False


def apply() -> None:
    """Patch transformers and CTranslate2's converter; idempotent."""
    global _APPLIED
    if _APPLIED:
        return
    from ctranslate2.converters import transformers as ct2
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    if not hasattr(GPTNeoXConfig, "rotary_pct"):
        GPTNeoXConfig.rotary_pct = property(_get_rotary_pct, _set_rotary_pct)
    if not hasattr(GPTNeoXForCausalLM, "embed_out"):
        GPTNeoXForCausalLM.embed_out = property(_output_layer)
    _wrap_spec(ct2.GPTNeoXLoader, _fix_gpt_neox)
    _wrap_spec(ct2.Gemma3Loader, _fix_gemma3)
    _wrap_spec(ct2.LlamaLoader, _check_head_dim)
    _wrap_spec(ct2.Qwen2Loader, _check_head_dim)
    _APPLIED = True


def _get_rotary_pct(config: Any) -> float:
    return float((getattr(config, "rope_parameters", None) or {}).get("partial_rotary_factor", 1.0))


def _set_rotary_pct(config: Any, value: float) -> None:
    params = dict(getattr(config, "rope_parameters", None) or {})
    params["partial_rotary_factor"] = value
    config.rope_parameters = params


def _output_layer(model: Any) -> Any:
    # nn.Module keeps submodules in _modules; a transformers 4 model has embed_out there itself.
    modules = model._modules
    return modules["embed_out"] if "embed_out" in modules else modules["lm_head"]


def _wrap_spec(loader_class: type, fix: Callable[[Any, Any], None]) -> None:
    original = loader_class.get_model_spec
    if getattr(original, "_aituber_compat", False):
        return

    @functools.wraps(original)
    def get_model_spec(self: Any, model: Any) -> Any:
        spec = original(self, model)
        fix(spec, model)
        return spec

    get_model_spec._aituber_compat = True  # type: ignore[attr-defined]
    loader_class.get_model_spec = get_model_spec


def _rope(params: dict | None, what: str) -> tuple[float | None, str, float]:
    """(theta, rope_type, linear factor) from one rope_parameters dict; unsupported types raise."""
    params = params or {}
    rope_type = params.get("rope_type") or params.get("type") or "default"
    if rope_type not in ("default", "linear"):
        raise NotImplementedError(f"{what}: RoPE type {rope_type!r} is not supported by CTranslate2's converter")
    theta = params.get("rope_theta")
    return (float(theta) if theta is not None else None), rope_type, float(params.get("factor", 1.0))


def _fix_gpt_neox(spec: Any, model: Any) -> None:
    theta, rope_type, _ = _rope(getattr(model.config, "rope_parameters", None), "GPT-NeoX")
    if rope_type != "default":
        raise NotImplementedError(f"GPT-NeoX: RoPE scaling {rope_type!r} is not supported")
    if theta is not None:
        for layer in spec.decoder.layer:
            layer.self_attention.rotary_base = np.float32(theta)


def _fix_gemma3(spec: Any, model: Any) -> None:
    config = getattr(model.config, "text_config", model.config)
    params = getattr(config, "rope_parameters", None) or {}
    layer_types = getattr(config, "layer_types", None) or []
    scalar = getattr(config, "query_pre_attn_scalar", None)
    head_dim = config.head_dim
    for layer, layer_type in zip(spec.decoder.layer, layer_types, strict=False):
        attention = layer.self_attention
        if layer_type in params:  # transformers 5: one dict per layer type
            theta, rope_type, factor = _rope(params[layer_type], f"Gemma 3 {layer_type}")
            if theta is not None:
                attention.rotary_base = np.float32(theta)
            if rope_type == "linear" and factor != 1.0:
                # The spec is frozen to the attributes its constructor set: add these past it.
                object.__setattr__(attention, "rotary_scaling_type", np.int8(0))  # Linear
                object.__setattr__(attention, "rotary_scaling_factor", np.float32(factor))
        if scalar is not None and scalar != head_dim:
            attention.queries_scale = np.float32(float(scalar) ** -0.5)


def _check_head_dim(spec: Any, model: Any) -> None:
    config = model.config
    head_dim = getattr(config, "head_dim", None)
    if head_dim is not None and head_dim != config.hidden_size // config.num_attention_heads:
        raise NotImplementedError(
            f"head size {head_dim} differs from hidden_size/num_attention_heads; "
            "CTranslate2's converter does not support it for this architecture"
        )

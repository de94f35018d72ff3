"""aituber.engine.compat: what CTranslate2 4.8's converter reads, under transformers 5."""

from __future__ import annotations

import pytest


def test_apply_is_idempotent_and_patches_what_the_converter_reads():
    from ctranslate2.converters import transformers as ct2
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from aituber.engine import compat

    compat.apply()
    first = ct2.GPTNeoXLoader.get_model_spec
    compat.apply()
    assert ct2.GPTNeoXLoader.get_model_spec is first
    assert not getattr(first.__wrapped__, "_aituber_compat", False), "wrapped twice"

    config = GPTNeoXConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=32, rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                                  "partial_rotary_factor": 0.5})
    assert config.rotary_pct == 0.5
    config.rotary_pct = 1.0
    assert config.rope_parameters["partial_rotary_factor"] == 1.0
    # An old config.json with `rotary_pct` still loads into rope_parameters.
    assert GPTNeoXConfig(rotary_pct=0.25, hidden_size=16, num_attention_heads=2).rotary_pct == 0.25
    model = GPTNeoXForCausalLM(config)
    assert model.embed_out is model.lm_head


def test_an_unsupported_rope_type_is_refused():
    from aituber.engine.compat import _rope

    with pytest.raises(NotImplementedError, match="yarn"):
        _rope({"rope_type": "yarn", "factor": 4.0}, "Gemma 3 full_attention")
    assert _rope({"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6}, "x") == (1e6, "linear", 8.0)

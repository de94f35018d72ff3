"""OBS control through obs-websocket 5: the scene follows the bot's status (a "BRB" scene while
paused) and a source is shown while a reply is presented. Off unless `--obs ws://HOST:4455`; the scene
and source names are the character's `[obs]` table (aituber.config.ObsConfig).

`ObsDirector` is the sans-I/O part: events in, the wanted state (`ObsTarget`) out, `now` a parameter.
`ObsOutput` is the thin adapter: it connects with simpleobsws (imported only when a run has `--obs`),
brings OBS to the wanted state whenever it changes (only the latest state matters, so nothing queues
up while OBS is away), and reconnects with backoff. An absent or broken OBS is one warning, never a
stop; a scene or source OBS does not know is one warning naming the key to fix.

The bot only switches when its own state changes: a scene the streamer picks by hand stays until the
next pause, resume or end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from aituber.config import ObsConfig
from aituber.core.events import Event, ReplyCancelled, ReplyEnded, ReplyStarted, StatusChanged
from aituber.errors import AituberError, ConfigError
from aituber.outputs.base import OutputBase, OutputContext, wait_run_end
from aituber.settings import ObsSettings

log = logging.getLogger(__name__)

DEFAULT_PORT = 4455
"""obs-websocket 5's default port."""
PASSWORD_ENV = "AITUBER_OBS_PASSWORD"
AUTH_FAILED = 4009
"""obs-websocket's close code for a wrong password (WebSocketCloseCode::AuthenticationFailed)."""
CLOSE_REASONS = {
    AUTH_FAILED: f"OBS refused the password (set ${PASSWORD_ENV} to the one in OBS: Tools → WebSocket "
                 "Server Settings)",
    4010: "OBS's WebSocket server speaks another protocol version (obs-websocket 5 is needed: OBS 28 or later)",
}


class ObsError(AituberError):
    """OBS cannot be reached or refused us; the bot goes on without it."""


def obs_url(value: str) -> str:
    """`--obs` as a WebSocket URL: `ws://HOST:PORT` as given, or `HOST[:PORT]` (port 4455 by default).
    A ConfigError for anything else."""
    text = value.strip()
    if "://" not in text:
        text = f"ws://{text}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"--obs {value!r}: not a WebSocket address ({exc}); e.g. ws://127.0.0.1:4455") from None
    if parts.scheme not in ("ws", "wss") or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ConfigError(f"--obs {value!r}: not a WebSocket address; e.g. ws://127.0.0.1:4455")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port or DEFAULT_PORT}"


# --- the policy ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ObsTarget:
    """What OBS should show now."""

    status: str
    """The bot's status: "online", "paused" or "offline"."""
    scene: str | None
    """The program scene; None leaves it as it is."""
    speaking: bool
    """Whether the speaking source is shown."""


class ObsDirector:
    """Events in, the wanted OBS state out; no I/O.

    The speaking source is shown from a reply's start to its end, at least `speaking_min_s`; with
    `speech_chars_per_s` set (a voice reads the reply), until the reply could have been spoken, counted
    from its start. A skipped or withdrawn reply hides it at once; the next reply takes over."""

    def __init__(self, config: ObsConfig) -> None:
        self.config = config
        self.status = "online"
        self.return_scene: str | None = None
        """The scene to go back to on resume when `online_scene` is unset (the adapter records the
        scene that was on when the bot paused)."""
        self._reply: str | None = None
        self._started = 0.0
        self._hide_at: float | None = None

    def feed(self, event: Event, now: float) -> None:
        match event:
            case StatusChanged(status=status):
                self.status = status
            case ReplyStarted(reply_id=reply_id):
                self._reply, self._started, self._hide_at = reply_id, now, None
            case ReplyEnded(reply_id=reply_id, text=text, stop_reason=stop) if reply_id == self._reply:
                cps = self.config.speech_chars_per_s
                spoken = len(text) / cps if cps and text else 0.0
                hide_at = self._started + max(spoken, self.config.speaking_min_s)
                if stop in ("stop", "length") and hide_at > now:
                    self._hide_at = hide_at
                else:
                    self._reply = None
            case ReplyCancelled(reply_id=reply_id) if reply_id == self._reply:
                self._reply = None
            case _:
                pass

    def speaking(self, now: float) -> bool:
        if self._reply is None or self.status == "offline":
            return False
        return self._hide_at is None or now < self._hide_at

    def target(self, now: float) -> ObsTarget:
        c = self.config
        scene = {"online": c.online_scene or self.return_scene, "paused": c.paused_scene,
                 "offline": c.offline_scene}.get(self.status)
        return ObsTarget(self.status, scene, self.speaking(now))

    def next_change(self, now: float) -> float | None:
        """When the target changes by itself (the speaking source's hide time), or None."""
        if self._reply is not None and self._hide_at is not None and self._hide_at > now:
            return self._hide_at
        return None

    def speaking_scene(self) -> str | None:
        """The scene that holds the speaking source, when the settings say; None: the current scene."""
        c = self.config
        return c.speaking_scene or c.online_scene or (self.return_scene if self.status == "paused" else None)


# --- obs-websocket 5 (simpleobsws) -------------------------------------------------------------------


def _simpleobsws() -> ModuleType:
    """simpleobsws, imported on first use (it sets the `websockets` logger to INFO; put it back)."""
    logger = logging.getLogger("websockets")
    level = logger.level
    try:
        import simpleobsws
    except ImportError as exc:
        raise ObsError("OBS control needs the simpleobsws package (pip install simpleobsws)") from exc
    logger.setLevel(level)
    return simpleobsws


async def connect_obs(url: str, password: str | None, timeout_s: float, events: int = 0) -> Any:
    """A simpleobsws client connected and identified (`events`: obs-websocket's event subscription
    bits, 0 for none). Raises ObsError, OSError or TimeoutError within about `timeout_s`."""
    sobs = _simpleobsws()
    client = sobs.WebSocketClient(url=url, password=password or "",
                                  identification_parameters=sobs.IdentificationParameters(eventSubscriptions=events))
    try:
        async with asyncio.timeout(timeout_s):
            await client.connect()
            identified = asyncio.ensure_future(client.wait_until_identified(timeout_s))
            try:
                await asyncio.wait((identified, client.recv_task), return_when=asyncio.FIRST_COMPLETED)
            finally:
                identified.cancel()
        if not client.identified:
            code = getattr(client.ws, "close_code", None)
            if code == AUTH_FAILED and not password:
                raise ObsError(f"OBS asks for a password: set ${PASSWORD_ENV} (OBS: Tools → WebSocket "
                               "Server Settings)")
            raise ObsError(CLOSE_REASONS.get(code, f"OBS closed the connection (code {code})"))
    except BaseException:
        await disconnect_obs(client)
        raise
    return client


async def disconnect_obs(client: Any, timeout_s: float = 2.0) -> None:
    task = getattr(client, "recv_task", None)
    if task is not None and task.done() and not task.cancelled() and task.exception() is not None:
        log.debug("obs: the connection's reader stopped: %r", task.exception())
    try:
        async with asyncio.timeout(timeout_s):
            await client.disconnect()
    except Exception as exc:  # closing a broken connection: nothing more to do
        log.debug("obs: disconnect: %s", exc)


async def obs_call(client: Any, request_type: str, data: dict[str, Any] | None, timeout_s: float
                   ) -> tuple[bool, dict[str, Any], str]:
    """(ok, response data, OBS's comment when not ok) for one request."""
    sobs = _simpleobsws()
    response = await client.call(sobs.Request(request_type, data), timeout=timeout_s)
    status = response.requestStatus
    if not response.ok():
        return False, {}, f"{status.comment or 'failed'} (code {status.code})"
    return True, dict(response.responseData or {}), ""


def current_scene_name(data: dict[str, Any]) -> str | None:
    """The scene name in a GetCurrentProgramScene response (5.0: currentProgramSceneName; 5.3: sceneName)."""
    name = data.get("sceneName") or data.get("currentProgramSceneName")
    return name if isinstance(name, str) else None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ObsError):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# --- the output ----------------------------------------------------------------------------------------


class ObsOutput(OutputBase):
    """See the module docstring. `where` names the settings in warnings (the character file)."""

    name = "obs"

    def __init__(self, settings: ObsSettings, config: ObsConfig, *, where: str = "[obs]",
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not settings.enabled or settings.url is None:
            raise ConfigError("obs: no OBS address set (--obs ws://HOST:4455)")
        self.settings = settings
        self.url = settings.url
        self.config = config
        self.where = where
        self.director = ObsDirector(config)
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._done = asyncio.Event()
        self._run_task: asyncio.Task[None] | None = None
        self._client: Any = None
        self._applied_scene: str | None = None
        self._applied_visible: bool | None = None
        self._item_ids: dict[tuple[str, str], int | None] = {}
        self._warned: set[str] = set()
        self.attempts = 0
        """Connection attempts, since start."""
        self.connects = 0
        """Successful connections to OBS, since start."""
        self.requests = 0
        """Requests sent to OBS, since start."""
        self.failures = 0
        """Requests OBS refused (an unknown scene or source), since start."""

    @property
    def connected(self) -> bool:
        return self._client is not None

    def publish(self, event: Event) -> None:
        if isinstance(event, (StatusChanged, ReplyStarted, ReplyEnded, ReplyCancelled)):
            self.director.feed(event, self._clock())
            self._wake.set()

    # -- the connection --------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect and keep OBS in the wanted state until `close()`; failures are retried with backoff."""
        self._run_task = asyncio.current_task()
        delay = self.settings.retry_min_s
        failing = False
        try:
            while not self._stopping.is_set():
                connects = self.connects
                try:
                    await self._session()
                    continue  # a clean stop
                except (OSError, TimeoutError, ObsError) as exc:
                    self._report(exc, connects, failing)
                except Exception as exc:  # the websocket library's own errors; a bug must not stop the stream
                    if "websockets" in type(exc).__module__ or "simpleobsws" in type(exc).__module__:
                        self._report(exc, connects, failing)
                    else:
                        log.exception("obs: unexpected error; reconnecting")
                failing = True
                if self.connects > connects:
                    delay = self.settings.retry_min_s
                try:
                    async with asyncio.timeout(delay):
                        await self._stopping.wait()
                except TimeoutError:
                    pass
                delay = min(delay * 2, self.settings.retry_max_s)
        finally:
            self._done.set()

    def _report(self, exc: BaseException, connects: int, failing: bool) -> None:
        if self.connects > connects:
            log.warning("obs: lost the connection to %s (%s); reconnecting", self.url, _describe(exc))
        elif not failing:
            log.warning("obs: cannot reach OBS at %s (%s); the bot goes on without it and retries every "
                        "%g s at most", self.url, _describe(exc), self.settings.retry_max_s)
        else:
            log.debug("obs: still cannot reach %s: %s", self.url, _describe(exc))

    async def _session(self) -> None:
        """One connection: returns after a clean stop, raises when it fails or breaks."""
        self.attempts += 1
        client = await connect_obs(self.url, self.settings.password, self.settings.timeout_s)
        self._client = client
        self.connects += 1
        self._applied_scene = self._applied_visible = None  # bring OBS to the wanted state again
        self._item_ids.clear()
        log.info("obs: connected to %s", self.url)
        try:
            while True:
                self._wake.clear()
                stopping = self._stopping.is_set()
                now = self._clock()
                await self._apply(client, self.director.target(now))
                if stopping:
                    return
                deadline = self.director.next_change(now)
                wake = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait((wake, client.recv_task), return_when=asyncio.FIRST_COMPLETED,
                                       timeout=None if deadline is None else max(deadline - self._clock(), 0.0))
                finally:
                    wake.cancel()
                if client.recv_task.done():
                    raise ObsError("OBS closed the connection")
        finally:
            self._client = None
            await disconnect_obs(client)

    async def _call(self, client: Any, request_type: str, data: dict[str, Any] | None, what: str,
                    fix: str = "") -> dict[str, Any] | None:
        self.requests += 1
        ok, response, problem = await obs_call(client, request_type, data, self.settings.timeout_s)
        if ok:
            return response
        self.failures += 1
        key = f"{request_type}:{what}"
        if key not in self._warned:
            self._warned.add(key)
            log.warning("obs: %s: %s%s", what, problem, f"; {fix}" if fix else "")
        return None

    async def _current_scene(self, client: Any) -> str | None:
        data = await self._call(client, "GetCurrentProgramScene", None, "the current scene")
        return current_scene_name(data) if data is not None else None

    async def _apply(self, client: Any, target: ObsTarget) -> None:
        c = self.config
        if target.scene is not None and target.scene != self._applied_scene:
            if target.status == "paused" and c.online_scene is None:
                current = await self._current_scene(client)
                if current is not None and current != target.scene:
                    self.director.return_scene = current
            key = {"online": "online_scene", "paused": "paused_scene", "offline": "offline_scene"}[target.status]
            await self._call(client, "SetCurrentProgramScene", {"sceneName": target.scene},
                             f"switching to scene {target.scene!r}",
                             f"create that scene in OBS or fix {self.where} {key}")
            self._applied_scene = target.scene
        if c.speaking_source is not None and target.speaking != self._applied_visible:
            scene = self.director.speaking_scene() or await self._current_scene(client)
            if scene is not None:
                item = await self._item_id(client, scene, c.speaking_source)
                if item is not None:
                    await self._call(client, "SetSceneItemEnabled",
                                     {"sceneName": scene, "sceneItemId": item, "sceneItemEnabled": target.speaking},
                                     f"{'showing' if target.speaking else 'hiding'} {c.speaking_source!r}")
            self._applied_visible = target.speaking

    async def _item_id(self, client: Any, scene: str, source: str) -> int | None:
        if (scene, source) not in self._item_ids:
            data = await self._call(client, "GetSceneItemId", {"sceneName": scene, "sourceName": source},
                                    f"source {source!r} in scene {scene!r}",
                                    f"add it to that scene in OBS or fix {self.where} speaking_source/speaking_scene")
            item = data.get("sceneItemId") if data is not None else None
            self._item_ids[(scene, source)] = item if isinstance(item, int) else None
        return self._item_ids[(scene, source)]

    async def close(self, timeout_s: float = 5.0) -> None:
        """Bring OBS to the final state (the offline scene, the source hidden) if it is connected, then
        disconnect and let `run` return; past `timeout_s` the run task is cancelled."""
        self._stopping.set()
        self._wake.set()
        await wait_run_end(self._run_task, self._done, timeout_s,
                           f"obs: could not finish within {timeout_s:g} s; leaving OBS as it is")


def create_output(context: OutputContext) -> ObsOutput | None:
    settings = context.settings.obs
    if not settings.enabled:
        return None
    config = context.character.obs
    if not any((config.online_scene, config.paused_scene, config.offline_scene, config.speaking_source)):
        log.warning("obs: --obs is given but the character file's [obs] table names no scene or source; "
                    "OBS is left alone (see README: OBS scenes)")
        return None
    output = ObsOutput(settings, config, where="the character file's [obs]")
    plan = [f"{status} → {scene!r}" for status, scene in
            (("online", config.online_scene), ("paused", config.paused_scene), ("offline", config.offline_scene))
            if scene]
    if config.speaking_source:
        plan.append(f"{config.speaking_source!r} shown while speaking")
    context.announce(f"obs: {settings.url} ({', '.join(plan)})")
    return output

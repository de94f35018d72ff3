"""The output seam: what every output (console, transcript, overlay, MQTT, and the coming voice) is.

An output takes events without waiting (`publish`), may need a start (bind a port, open a file) and a
background task (`run`: a connection loop), and is closed in a fixed order at the end. An output that
presents replies over time (speech) sets `holds_replies`: the pipeline then presents the next reply
only once `drained()` says everything published so far has been presented.

`OutputBase` gives the no-op defaults, so a simple output only writes `publish`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from aituber.core.events import Event
from aituber.errors import ConfigError

if TYPE_CHECKING:
    from aituber.config import Character
    from aituber.core.director import SessionState
    from aituber.settings import SessionSettings

log = logging.getLogger(__name__)


@runtime_checkable
class Output(Protocol):
    name: str
    """For logs and errors ("overlay", "mqtt", ...)."""
    holds_replies: bool
    """True: the pipeline waits for `drained()` before presenting the next reply (back-pressure)."""

    async def start(self) -> None:
        """Get ready before the first event (bind, connect, open). A ConfigError (the user's mistake:
        a port in use) stops the run before it starts; any other failure leaves this output out."""

    async def run(self) -> None:
        """Background work for the whole run (reconnect loops, writers); returns after `close()`."""

    def publish(self, event: Event) -> None:
        """Take one event; never blocks (queue it if sending takes time)."""

    async def drained(self) -> None:
        """Return once everything published so far has been presented (heard, shown)."""

    async def close(self) -> None:
        """Finish what is queued (the caller bounds this with a timeout) and stop."""


class OutputBase:
    """No-op defaults for the optional parts of `Output`."""

    name = "output"
    holds_replies = False

    async def start(self) -> None:
        return None

    async def run(self) -> None:
        return None

    def publish(self, event: Event) -> None:
        return None

    async def drained(self) -> None:
        return None

    async def close(self) -> None:
        return None


@dataclass(slots=True)
class ControlBridge:
    """Commands that outputs receive (MQTT control topic, the control panel) reach the pipeline here:
    the pipeline is built after the outputs, and binds itself with `bind`. Until then they are dropped.
    `source` says where it came from ("mqtt", "panel"); the result is None, or what is wrong with the
    payload."""

    _target: Callable[[bytes | str, str], str | None] | None = None

    def bind(self, target: Callable[[bytes | str, str], str | None]) -> None:
        self._target = target

    def __call__(self, payload: bytes | str, source: str = "mqtt") -> str | None:
        if self._target is None:
            log.warning("a command arrived before the pipeline started; ignored")
            return "the bot is not running yet"
        return self._target(payload, source)


@dataclass(slots=True)
class StateBridge:
    """Read access to the session's state (the queue with scores, paused, idle talk) for outputs that
    show it (the control panel); bound by the pipeline like `ControlBridge`. None until then."""

    _provider: Callable[[], SessionState] | None = None

    def bind(self, provider: Callable[[], SessionState]) -> None:
        self._provider = provider

    def __call__(self) -> SessionState | None:
        return self._provider() if self._provider is not None else None


@dataclass(slots=True)
class PortRoutes:
    """URL paths that an output serves on the overlay server's port (the control panel): path -> handler
    (see aituber.outputs.overlay.PortRoute), added at its start. The overlay sets `base_url` once it
    listens."""

    handlers: dict[str, Any] = field(default_factory=dict)
    base_url: str | None = None


@dataclass(slots=True)
class EventBridge:
    """Events that an output makes (the voice's speech events) reach every output through the
    pipeline's `emit`, bound with `bind` like `ControlBridge`; until then they are dropped. Call it
    from the output's own tasks, never from inside `publish` (the other outputs would see the events
    out of order)."""

    _target: Callable[[Event], None] | None = None

    def bind(self, target: Callable[[Event], None]) -> None:
        self._target = target

    @property
    def bound(self) -> bool:
        return self._target is not None

    def __call__(self, event: Event) -> None:
        if self._target is None:
            log.debug("an output's %s arrived before the pipeline started; dropped", type(event).__name__)
            return
        self._target(event)


@dataclass(frozen=True, slots=True)
class OutputContext:
    """What an output factory may use to build its output."""

    character: Character
    settings: SessionSettings
    announce: Callable[[str], None] = print
    """Prints a line for the streamer (the overlay URL, the MQTT topics)."""
    control: ControlBridge = field(default_factory=ControlBridge)
    events: EventBridge = field(default_factory=EventBridge)
    """Where an output emits events of its own (see EventBridge)."""
    state: StateBridge = field(default_factory=StateBridge)
    """The session's state, for outputs that show it (see StateBridge)."""
    routes: PortRoutes = field(default_factory=PortRoutes)
    """Paths served on the overlay's port by other outputs (see PortRoutes)."""

    def options(self, name: str) -> dict[str, Any]:
        """The character file's `[outputs.NAME]` table ({} when absent)."""
        return dict(self.character.outputs.get(name, {}))


async def start_outputs(outputs: Sequence[Output]) -> list[Output]:
    """Start each output in order; the ones that fail (other than by a ConfigError) are logged and
    left out. Returns the started ones."""
    started: list[Output] = []
    try:
        for output in outputs:
            try:
                await output.start()
            except ConfigError:
                raise
            except Exception:
                log.exception("output %s failed to start; going on without it", output.name)
                continue
            started.append(output)
    except BaseException:
        await close_outputs(started)
        raise
    return started


async def close_outputs(outputs: Sequence[Output], timeout_s: float = 5.0) -> None:
    """Close in reverse order, each within `timeout_s`; one that fails or hangs is logged and left."""
    for output in reversed(outputs):
        try:
            async with asyncio.timeout(timeout_s):
                await output.close()
        except TimeoutError:
            log.warning("output %s did not close within %g s", output.name, timeout_s)
        except Exception:
            log.exception("output %s failed to close", output.name)


async def wait_run_end(task: asyncio.Task[None] | None, done: asyncio.Event, timeout_s: float,
                       late: str) -> None:
    """For an output's `close()` once it has told its `run()` loop to stop: wait until the loop has
    finished (`done`), or past `timeout_s` log `late` and cancel it."""
    if task is None or task.done():
        return
    try:
        async with asyncio.timeout(timeout_s):
            await done.wait()
    except TimeoutError:
        log.warning("%s", late)
        task.cancel()
        await asyncio.wait((task,), timeout=2)


async def run_output(output: Output) -> None:
    """An output's background task: its failure is logged, never taken to the TaskGroup."""
    try:
        await output.run()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("output %s stopped with an error; the stream goes on without it", output.name)

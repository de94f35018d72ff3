"""A bounded hand-off from one worker thread to the event loop (pytchat and stdin block)."""

from __future__ import annotations

import asyncio
import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class ThreadHandoff(Generic[T]):
    """The worker calls `put` (blocks while `maxsize` items wait, returns False once the consumer
    has gone); the loop awaits `get`. Items cross with `loop.call_soon_threadsafe` into an
    `asyncio.Queue` that never overflows: a slot is taken before each put and freed by `get`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int = 64) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[T] = asyncio.Queue(maxsize)
        self._slots = threading.Semaphore(maxsize)
        self.stopped = threading.Event()
        """Set when the consumer is gone: the worker should finish."""

    def put(self, item: T, poll_s: float = 0.2) -> bool:
        while not self.stopped.is_set():
            if self._slots.acquire(timeout=poll_s):
                try:
                    self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
                except RuntimeError:  # the loop is closed: nobody is listening any more
                    self.stopped.set()
                    return False
                return True
        return False

    async def get(self) -> T:
        item = await self._queue.get()
        self._slots.release()
        return item

    def stop(self) -> None:
        self.stopped.set()

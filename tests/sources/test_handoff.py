"""The bounded thread -> event loop hand-off."""

from __future__ import annotations

import asyncio
import threading

from aituber.sources.base import SourceStats
from aituber.sources.handoff import ThreadHandoff


class CountingSlots:
    """The hand-off's slot semaphore, counting the puts that found no free slot (the worker blocked)."""

    def __init__(self, inner: threading.Semaphore) -> None:
        self._inner = inner
        self.refused = 0

    def acquire(self, timeout: float | None = None) -> bool:
        got = self._inner.acquire(timeout=timeout)
        if not got:
            self.refused += 1
        return got

    def release(self) -> None:
        self._inner.release()


async def until(predicate, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.001)


async def test_items_cross_in_order_and_the_queue_stays_bounded():
    handoff: ThreadHandoff[int] = ThreadHandoff(asyncio.get_running_loop(), maxsize=4)
    slots = handoff._slots = CountingSlots(handoff._slots)
    put_count = 0
    full = threading.Event()

    def work() -> None:
        nonlocal put_count
        for n in range(20):
            if not handoff.put(n, poll_s=0.01):
                return
            put_count += 1
            if put_count == 4:
                full.set()

    thread = threading.Thread(target=work)
    thread.start()
    assert await asyncio.to_thread(full.wait, 5)
    await until(lambda: slots.refused >= 3)  # the fifth put found the queue full, again and again
    assert put_count == 4  # blocked: nobody has taken one yet
    got = [await handoff.get() for _ in range(20)]
    assert got == list(range(20))
    await asyncio.to_thread(thread.join, 5)


async def test_a_stopped_handoff_releases_the_worker():
    handoff: ThreadHandoff[int] = ThreadHandoff(asyncio.get_running_loop(), maxsize=1)
    slots = handoff._slots = CountingSlots(handoff._slots)
    results: list[bool] = []

    def work() -> None:
        for n in range(3):
            results.append(handoff.put(n, poll_s=0.01))

    thread = threading.Thread(target=work)
    thread.start()
    await until(lambda: results == [True] and slots.refused >= 1)  # the second put is waiting for a slot
    handoff.stop()
    await asyncio.to_thread(thread.join, 5)
    assert results == [True, False, False]


def test_summary_line_names_every_count():
    stats = SourceStats()
    stats.kinds.update({"text": 3, "super_chat": 1})
    stats.ignored["ticker"] += 2
    stats.skipped["malformed"] += 1
    stats.faults["timeout"] += 1
    assert stats.summary_line() == ("source: super_chat 1, text 3; passed over: ticker 2; unreadable: malformed 1; "
                                    "reconnects: timeout 1")
    assert SourceStats().summary_line() == "source: none"

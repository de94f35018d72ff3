"""The bounded thread -> event loop hand-off."""

from __future__ import annotations

import asyncio
import threading

from aituber.sources.base import SourceStats
from aituber.sources.handoff import ThreadHandoff


async def test_items_cross_in_order_and_the_queue_stays_bounded():
    handoff: ThreadHandoff[int] = ThreadHandoff(asyncio.get_running_loop(), maxsize=4)
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
    await asyncio.sleep(0.05)
    assert put_count == 4  # blocked: nobody has taken one yet
    got = [await handoff.get() for _ in range(20)]
    assert got == list(range(20))
    await asyncio.to_thread(thread.join, 5)


async def test_a_stopped_handoff_releases_the_worker():
    handoff: ThreadHandoff[int] = ThreadHandoff(asyncio.get_running_loop(), maxsize=1)
    results: list[bool] = []
    thread = threading.Thread(target=lambda: results.extend(handoff.put(n, poll_s=0.01) for n in range(3)))
    thread.start()
    await asyncio.sleep(0.05)
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

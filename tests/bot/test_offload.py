"""StorageThreads: blocking storage calls off the event loop, results back in order."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from bot.offload import StorageThreads


async def test_results_and_errors_come_back_to_the_caller() -> None:
    threads = StorageThreads(1)

    def fail() -> None:
        raise LookupError("no such person")

    assert await threads(pow, 2, 10) == 1024
    assert await threads(sorted, [3, 1, 2], reverse=True) == [3, 2, 1]
    with pytest.raises(LookupError, match="no such person"):
        await threads(fail)
    threads.close()


async def test_one_thread_runs_calls_one_after_the_other_in_order() -> None:
    threads = StorageThreads(1)
    ran: list[int] = []
    names: set[str] = set()

    def work(i: int) -> int:
        names.add(threading.current_thread().name)
        ran.append(i)
        time.sleep(0.001)
        return i * i

    results = await asyncio.gather(*(threads(work, i) for i in range(200)))
    assert results == [i * i for i in range(200)]
    assert ran == list(range(200)) and len(names) == 1
    assert threading.current_thread().name not in names  # never on the event loop
    threads.close()


async def test_several_threads_work_side_by_side() -> None:
    threads = StorageThreads(4)
    barrier = threading.Barrier(4, timeout=5)

    def meet() -> str:
        barrier.wait()  # only returns once four calls run at the same time
        return threading.current_thread().name

    names = await asyncio.gather(*(threads(meet) for _ in range(4)))
    assert len(set(names)) == 4
    threads.close()


async def test_a_call_cancelled_before_it_starts_does_not_run() -> None:
    threads = StorageThreads(1)
    gate = threading.Event()
    ran: list[str] = []
    blocker = threads(gate.wait, 5)
    waiting = asyncio.ensure_future(threads(ran.append, "late"))
    await asyncio.sleep(0)
    waiting.cancel()
    gate.set()
    assert await blocker is True
    assert await threads(ran.append, "next") is None
    assert ran == ["next"]
    threads.close()


async def test_close_lets_queued_calls_finish_and_refuses_new_ones() -> None:
    threads = StorageThreads(1)
    queued = [threads(time.sleep, 0.01) for _ in range(5)]
    threads.close()
    assert await asyncio.gather(*queued) == [None] * 5
    with pytest.raises(RuntimeError, match="after close"):
        threads(time.sleep, 0)


def test_at_least_one_thread() -> None:
    with pytest.raises(ValueError, match="at least one"):
        StorageThreads(0)

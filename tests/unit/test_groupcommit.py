"""Group commit (crosspost.groupcommit): what the daemon's settlements rely on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from crosspost.groupcommit import GroupCommit


class Gate:
    """A ``db`` whose calls wait until the test opens the gate (a busy database)."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.calls: list[list[int]] = []

    async def __call__(self, fn: Callable[..., Any], items: list[int]) -> Any:
        self.calls.append(list(items))
        await self.open.wait()
        return fn(items)


def doubled(items: Sequence[int]) -> list[int]:
    return [2 * i for i in items]


def test_items_submitted_while_a_batch_is_written_share_the_next_one() -> None:
    """The first item goes alone; the ones arriving meanwhile go together, and every
    waiter gets its own result only once its batch is written."""

    async def scenario() -> tuple[list[list[int]], list[int]]:
        gate = Gate()
        commit: GroupCommit[int, int] = GroupCommit(doubled, gate)
        first = asyncio.create_task(commit.submit(1))
        await asyncio.sleep(0)  # the first batch is under way
        rest = [asyncio.create_task(commit.submit(n)) for n in (2, 3, 4)]
        await asyncio.sleep(0)
        assert not any(t.done() for t in (first, *rest))  # nothing before the write
        gate.open.set()
        results = await asyncio.gather(first, *rest)
        assert (commit.batches, commit.items) == (2, 4)
        return gate.calls, results

    calls, results = asyncio.run(scenario())
    assert calls == [[1], [2, 3, 4]]
    assert results == [2, 4, 6, 8]


def test_a_failed_write_fails_every_item_of_its_batch() -> None:
    def broken(items: Sequence[int]) -> list[int]:
        raise OSError("disk full")

    async def scenario() -> None:
        gate = Gate()
        gate.open.set()
        commit: GroupCommit[int, int] = GroupCommit(broken, gate)
        outcomes = await asyncio.gather(commit.submit(1), commit.submit(2), return_exceptions=True)
        assert all(isinstance(o, OSError) for o in outcomes), outcomes
        assert commit.batches == 0

    asyncio.run(scenario())


def test_a_cancelled_waiter_s_item_is_written_anyway() -> None:
    """Cancelling the waiter (shutdown) does not take its item out of the batch."""
    written: list[int] = []

    def record(items: Sequence[int]) -> list[int]:
        written.extend(items)
        return list(items)

    async def scenario() -> None:
        gate = Gate()
        commit: GroupCommit[int, int] = GroupCommit(record, gate)
        waiter = asyncio.create_task(commit.submit(7))
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        gate.open.set()
        await commit.drain()

    asyncio.run(scenario())
    assert written == [7]

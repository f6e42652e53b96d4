"""Group commit: writes submitted while the database is busy go out together.

The daemon settles finished deliveries through :class:`GroupCommit`: every
delivery waits until its own settlement is committed (the outcome is durable
before the slot is freed), but the settlements that arrive while one batch is
being written share the next transaction. Under load that turns one
transaction per delivery into one per batch; when the queue is quiet a batch is
a single settlement and nothing waits longer than before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

#: the most items one transaction writes
MAX_BATCH = 256


class GroupCommit(Generic[Item, Result]):
    """Batch ``write`` calls: ``await submit(item)`` returns once ``item`` is committed.

    ``write`` gets a list of items and returns one result per item, in order; it
    runs through ``db`` (the daemon's database executor). If it raises, every
    item of that batch gets the exception.
    """

    def __init__(
        self,
        write: Callable[[Sequence[Item]], Sequence[Result]],
        db: Callable[..., Awaitable[Any]],
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._write = write
        self._db = db
        self._max_batch = max_batch
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flusher: asyncio.Task[None] | None = None
        #: figures for the benchmark report: batches written and items in them
        self.batches = 0
        self.items = 0

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="group-commit")
        # A waiter cancelled at shutdown leaves its item in the batch: it is written anyway.
        return await asyncio.shield(future)

    async def drain(self) -> None:
        """Wait until everything submitted so far is written."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                results = await self._db(self._write, [item for item, _ in batch])
            except Exception as error:  # noqa: BLE001 - every waiter of the batch gets it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            self.batches += 1
            self.items += len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)


__all__ = ["MAX_BATCH", "GroupCommit"]

"""Store writes applied by one thread, in the order they were submitted (write-behind).

A replay scores the next block while the store writes the last one: the sqlite3 driver
releases the GIL while SQLite runs a statement, so the writes use the second core.

- **Order, once**: one bounded FIFO queue, one thread; each submitted write runs once, in
  submission order. The bound (`depth` writes waiting) keeps memory bounded: `submit` waits
  while the queue is full.
- **Errors reach the caller**: a write that raises fails its future, and every write queued
  after it is not applied (its future fails with the same exception) until the caller has
  seen the error: the next `submit`, `flush` or `close` in the caller's thread waits for
  the queue to empty and raises it (the same exception object the write raised). A caller
  that holds rows until their future succeeds therefore resubmits them in their order.
- **Reads see writes**: `flush` returns once every submitted write has run.

Writes are submitted from one thread (the pipeline's); the writer is not a pool.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

_Job = tuple[Future[None], Callable[..., object], tuple[Any, ...]]


class Writer:
    """One daemon thread running submitted writes in order; see the module's docstring."""

    def __init__(self, name: str, depth: int = 2) -> None:
        self._queue: queue.Queue[_Job | None] = queue.Queue(depth)
        self._error: BaseException | None = None  # set by the thread, taken by the caller
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, write: Callable[..., object], *args: Any) -> Future[None]:
        """Queue `write(*args)`; its future says whether it was applied."""
        self._raise_error()
        future: Future[None] = Future()
        self._queue.put((future, write, args))
        return future

    def flush(self) -> None:
        """Wait until every submitted write has run; raise the first unseen error."""
        self._queue.join()
        self._raise_error()

    def close(self) -> None:
        """`flush`, then stop the thread (also when the flush raises)."""
        try:
            self.flush()
        finally:
            self._queue.put(None)
            self._thread.join()

    def _raise_error(self) -> None:
        if self._error is None:
            return
        self._queue.join()  # the writes queued after the failure are all marked not applied
        error, self._error = self._error, None
        raise error

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            future, write, args = job
            try:
                if self._error is not None:  # an earlier write failed: keep the order
                    future.set_exception(self._error)
                    continue
                write(*args)
            except BaseException as exc:  # whatever the write raised goes to the caller
                self._error = exc
                future.set_exception(exc)
            else:
                future.set_result(None)
            finally:
                self._queue.task_done()
        self._queue.task_done()

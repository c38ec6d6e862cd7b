"""The hand-off from paho's network thread to the ingestion pump: a bounded FIFO that wakes
the pump only when a batch is due, not once per message.

A batch is due when `limit` messages wait, when the oldest has waited the batching window,
when an urgent message (an HTTP request waiting on its commit) arrives, or after
`interrupt()`. At a steady 1,000 messages/s a `queue.Queue` woke the pump for every put;
here it wakes once per batch.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    """Many producers, one consumer (the pump)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._batch_due = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._items: deque[T] = deque()
        self._arrived: deque[float] = deque()  # monotonic arrival time of each item
        self._wake_at = 0  # queue length that wakes the consumer; 0: it is not waiting
        self._urgent = False
        self._interrupted = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T, *, urgent: bool = False, timeout: float | None = None) -> None:
        """Queue `item`, blocking while the inbox is full (raises queue.Full after
        `timeout`). A full inbox blocks paho's network thread, which pushes back on the
        broker through TCP instead of growing memory."""
        with self._lock:
            if len(self._items) >= self._capacity and not self._not_full.wait_for(
                    lambda: len(self._items) < self._capacity, timeout):
                raise queue.Full
            self._items.append(item)
            self._arrived.append(time.monotonic())
            self._urgent = self._urgent or urgent
            if self._wake_at and (len(self._items) >= self._wake_at or urgent):
                self._batch_due.notify()

    def wait_for_batch(self, limit: int, max_wait_s: float) -> None:
        """Block until a batch is due: `limit` items, the oldest item `max_wait_s` old, an
        urgent item, or an interrupt."""
        with self._lock:
            while not self._items and not self._interrupted:
                self._wake_at = 1
                self._batch_due.wait()
            while len(self._items) < limit and not self._urgent and not self._interrupted:
                remaining = self._arrived[0] + max_wait_s - time.monotonic()
                if remaining <= 0:
                    break
                self._wake_at = limit
                self._batch_due.wait(remaining)
            self._wake_at = 0

    def take(self, limit: int) -> list[T]:
        """Up to `limit` items, oldest first, without waiting."""
        with self._lock:
            count = min(limit, len(self._items))
            batch = [self._items.popleft() for _ in range(count)]
            for _ in range(count):
                self._arrived.popleft()
            # An urgent item left behind (a backlog ahead of it) keeps the next batch prompt.
            self._urgent = self._urgent and bool(self._items)
            if count:
                self._not_full.notify_all()
            return batch

    def oldest_age(self) -> float:
        """Seconds the oldest queued item has waited (0 when empty)."""
        with self._lock:
            return time.monotonic() - self._arrived[0] if self._arrived else 0.0

    def interrupt(self) -> None:
        """From now on (until `resume`), waits return at once: the consumer is stopping."""
        with self._lock:
            self._interrupted = True
            self._batch_due.notify_all()

    def resume(self) -> None:
        with self._lock:
            self._interrupted = False

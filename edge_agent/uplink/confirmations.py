"""Which batches the lake has confirmed writing, and the watermark below which all are.

A PUBACK says only that the broker took a batch. A broker that restarts and forgets the
lake's shared subscription, or IoT Core with no lake worker connected, acknowledges a batch
nobody will ever write. So the store keeps every event until the lake confirms it
(`lake-ack`), and sends again from the watermark when confirmations stop coming: the lake is
idempotent by batch id and event id, so a batch written twice costs bandwidth, not truth.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass


@dataclass
class _Sent:
    first: int
    last: int
    events: int
    at: float
    confirmed: bool = False


class LakeConfirmations:
    def __init__(self, watermark: int) -> None:
        self._lock = threading.Lock()
        self._sent: deque[_Sent] = deque()
        self._early: set[tuple[int, int]] = set()  # confirmations that beat their PUBACK
        self.watermark = watermark

    def sent(self, first: int, last: int, events: int, now: float) -> None:
        """The broker acknowledged this batch (PUBACK), in the outbox's order."""
        with self._lock:
            if last <= self.watermark:
                return
            entry = _Sent(first, last, events, now)
            if (first, last) in self._early:
                self._early.discard((first, last))
                entry.confirmed = True
            self._sent.append(entry)
            self._advance()

    def confirmed(self, first: int, last: int) -> int:
        """The lake wrote this batch; returns the watermark (advanced if it could be)."""
        with self._lock:
            if last <= self.watermark:
                return self.watermark
            for entry in self._sent:
                if entry.first == first and entry.last == last:
                    entry.confirmed = True
                    break
            else:  # the lake was quicker than our PUBACK callback
                self._early.add((first, last))
            self._advance()
            return self.watermark

    def unconfirmed_events(self) -> int:
        with self._lock:
            return sum(entry.events for entry in self._sent if not entry.confirmed)

    def oldest_unconfirmed_at(self) -> float | None:
        with self._lock:
            return next((e.at for e in self._sent if not e.confirmed), None)

    def reset(self, watermark: int) -> None:
        """After a rewind: everything after the watermark will be sent again."""
        with self._lock:
            self._sent.clear()
            self._early.clear()
            self.watermark = watermark

    def _advance(self) -> None:
        while self._sent and self._sent[0].confirmed:
            self.watermark = self._sent.popleft().last
        if len(self._early) > 10_000:  # confirmations of batches we no longer track
            self._early.clear()

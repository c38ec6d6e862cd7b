"""Publishing a stream of events: paced by a token bucket, or as fast as the broker acknowledges
them, until the stream ends, a duration passes, or someone asks it to stop."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from edge_agent.simulator.accounts import Publisher
from edge_agent.simulator.pacing import TokenBucket
from models.events import Event, event_to_json, topic_for

logger = logging.getLogger(__name__)

# Events taken from the bucket at once, built and written to the broker together: a batch
# keeps Python and system-call overhead per event low, while the clock and the stop flag
# are still checked every few milliseconds.
MAX_BATCH = 200
# How often (seconds) a progress line is logged on a long run.
PROGRESS_EVERY_S = 10.0


@dataclass
class PublishStats:
    by_type: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.by_type.values())

    @property
    def rate(self) -> float:
        return self.total / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def add(self, other: PublishStats) -> None:
        self.by_type.update(other.by_type)
        self.elapsed_s += other.elapsed_s

    def summary(self, label: str = "published") -> str:
        types = ", ".join(f"{t} {n}" for t, n in sorted(self.by_type.items())) or "nothing"
        return (f"{label} {self.total} events in {self.elapsed_s:.1f} s "
                f"({self.rate:.0f}/s): {types}")


def publish_stream(publisher: Publisher, events: Iterable[tuple[Event, str]], *,
                   rate: float | None, duration: float | None = None,
                   stop: threading.Event | None = None) -> PublishStats:
    """Publish `(event, device_id)` pairs at `rate` events/s (None: as fast as acknowledged).

    Returns when the stream is exhausted, `duration` seconds have passed or `stop` is set;
    waits for the broker to acknowledge what was sent before returning.
    """
    stop = stop or threading.Event()
    stats = PublishStats()
    bucket = TokenBucket(rate) if rate else None
    iterator: Iterator[tuple[Event, str]] = iter(events)
    started = time.monotonic()
    deadline = None if duration is None else started + duration
    next_progress = started + PROGRESS_EVERY_S
    exhausted = False
    while not exhausted and not stop.is_set():
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            break
        if bucket is not None:
            wait = None if deadline is None else max(0.0, deadline - now)
            n = bucket.acquire(MAX_BATCH, timeout=min(wait, 0.1) if wait is not None else 0.1)
            if n == 0:
                publisher.poll()  # a slow rate still reads PUBACKs and sends keep-alives
                continue
        else:
            n = MAX_BATCH
        batch: list[tuple[str, bytes]] = []
        for event, device_id in itertools.islice(iterator, n):
            batch.append((topic_for(event, device_id), event_to_json(event)))
            stats.by_type[event.type] += 1
        exhausted = len(batch) < n
        publisher.publish_batch(batch, cancel=stop)
        if now >= next_progress:
            logger.info("%s", stats_so_far(stats, now - started))
            next_progress = now + PROGRESS_EVERY_S
    stats.elapsed_s = time.monotonic() - started
    if not publisher.flush():
        logger.warning("%d messages still unacknowledged by the broker", publisher.unacked)
    return stats


def stats_so_far(stats: PublishStats, elapsed: float) -> str:
    return f"{stats.total} events so far ({stats.total / max(elapsed, 1e-9):.0f}/s)"

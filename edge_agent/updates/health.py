"""The store's own serving health over a window: requests, error rate, p99 latency.

Read from the HTTP latency histogram every serving process already keeps
(`edge_http_request_seconds`, see `edge_agent/api/observability.py`): one process's
registry, or with HTTP workers the multiprocess files of all of them. Only `/v1` routes
count: probes and scrapes say nothing about what shoppers get.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client import Metric

from cloud_sync.release.spec import DEFAULT_MIN_REQUESTS

HISTOGRAM = "edge_http_request_seconds"
SERVED_PREFIX = "/v1/"
# Fewer requests than this say nothing about an error rate or a p99: the release
# controller's bar for health evidence, shared so both ends judge alike.
MIN_REQUESTS = DEFAULT_MIN_REQUESTS

MetricSource = Callable[[], Iterable[Metric]]


@dataclass(frozen=True)
class HealthSnapshot:
    requests: float = 0.0
    errors: float = 0.0  # 5xx: what the store got wrong (4xx are the caller's)
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound → cumulative

    def since(self, earlier: HealthSnapshot) -> HealthWindow:
        buckets = {bound: count - earlier.buckets.get(bound, 0.0)
                   for bound, count in self.buckets.items()}
        return HealthWindow(int(self.requests - earlier.requests),
                            int(self.errors - earlier.errors), buckets)


@dataclass(frozen=True)
class HealthWindow:
    requests: int
    errors: int
    buckets: dict[float, float]

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def p99_ms(self) -> float:
        """The upper bound of the bucket holding the 99th percentile (a histogram's honest
        answer); infinite when it lies past the last bucket."""
        if not self.requests:
            return 0.0
        needed = 0.99 * self.requests
        for bound in sorted(self.buckets):
            if self.buckets[bound] >= needed:
                return bound * 1000
        return math.inf

    def breach(self, max_error_rate: float, max_p99_ms: float) -> str | None:
        """Why this window is worse than allowed, or None."""
        if self.requests < MIN_REQUESTS:
            return None
        if self.error_rate > max_error_rate:
            return (f"error rate {self.error_rate:.1%} over {self.requests} requests"
                    f" (allowed {max_error_rate:.1%})")
        if self.p99_ms > max_p99_ms:
            return f"p99 latency {self.p99_ms:.0f} ms (allowed {max_p99_ms:.0f} ms)"
        return None


def snapshot(source: MetricSource) -> HealthSnapshot:
    """The histogram's totals now, over every `/v1` route."""
    requests = errors = 0.0
    buckets: dict[float, float] = {}
    for metric in source():
        if metric.name != HISTOGRAM:
            continue
        for sample in metric.samples:
            if not sample.labels.get("route", "").startswith(SERVED_PREFIX):
                continue
            if sample.name == f"{HISTOGRAM}_count":
                requests += sample.value
                if sample.labels.get("status", "").startswith("5"):
                    errors += sample.value
            elif sample.name == f"{HISTOGRAM}_bucket":
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return HealthSnapshot(requests, errors, buckets)

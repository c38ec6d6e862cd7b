"""What a wave's reports are worth as evidence: which stores' health numbers count, and the
wave's recommendation click-through before and after the swap, pooled over its stores.

Pure functions of :class:`~cloud_sync.release.document.StatusDetails`; the decision
(:mod:`.decide`) and the controller's status both read a wave through them, so what the
status shows is what the decision used."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cloud_sync.release.document import StatusDetails
from cloud_sync.release.spec import RolloutSpec


def gave_health_evidence(details: StatusDetails, spec: RolloutSpec) -> bool:
    """True when the store's error rate and p99 are over enough requests to mean something."""
    return details.requests is not None and details.requests >= spec.min_requests


@dataclass(frozen=True)
class ClickThrough:
    """Clicks and impressions pooled over the stores that reported both sides."""

    stores: int = 0
    clicks_before: float = 0.0
    impressions_before: int = 0
    clicks_after: float = 0.0
    impressions_after: int = 0

    @property
    def before(self) -> float:
        return self.clicks_before / self.impressions_before if self.impressions_before else 0.0

    @property
    def after(self) -> float:
        return self.clicks_after / self.impressions_after if self.impressions_after else 0.0

    def enough(self, spec: RolloutSpec) -> bool:
        return min(self.impressions_before, self.impressions_after) >= spec.min_impressions

    def drop(self) -> float:
        """Relative fall from before to after (negative: it rose); 0 without a baseline."""
        return 1.0 - self.after / self.before if self.before > 0 else 0.0

    def verdict(self, spec: RolloutSpec) -> tuple[bool, str]:
        """(held, words): held when there is evidence and the fall is past the threshold.
        Too few impressions on either side is no evidence, and never holds a wave."""
        counts = f"{self.impressions_before}/{self.impressions_after} impressions"
        if not self.enough(spec):
            return False, (f"no click-through evidence ({counts} before/after over "
                           f"{self.stores} stores, {spec.min_impressions} needed a side)")
        words = (f"click-through {self.before:.2%} -> {self.after:.2%} over {counts} "
                 f"({self.stores} stores")
        if self.drop() > spec.max_ctr_drop:
            return True, (f"{words}: {self.drop():.0%} lower, more than the "
                          f"{spec.max_ctr_drop:.0%} allowed)")
        return False, f"{words})"


def pool_click_through(reports: Iterable[StatusDetails]) -> ClickThrough:
    """Pool the stores that measured both sides, so before and after cover the same stores."""
    stores, cb, ib, ca, ia = 0, 0.0, 0, 0.0, 0
    for d in reports:
        if None in (d.ctr_before, d.impressions_before, d.ctr_after, d.impressions_after):
            continue
        assert d.ctr_before is not None and d.ctr_after is not None
        assert d.impressions_before is not None and d.impressions_after is not None
        stores += 1
        cb += d.ctr_before * d.impressions_before
        ib += d.impressions_before
        ca += d.ctr_after * d.impressions_after
        ia += d.impressions_after
    return ClickThrough(stores, cb, ib, ca, ia)


def health_summary(reports: Iterable[StatusDetails], spec: RolloutSpec) -> tuple[int, int]:
    """(stores with health evidence, quiet stores) among ``reports``."""
    counted = [gave_health_evidence(d, spec) for d in reports]
    return sum(counted), len(counted) - sum(counted)

"""Name KMeans clusters from their centroids by fixed, documented rules.

The centroid of each cluster is read in raw units (days, trips and spend per 30 days) and
compared with the population it was fitted on. Rules apply in this order, first match wins:

1. **new** — tenure under ``NEW_TENURE_DAYS``: too early to judge loyalty.
2. **hibernating** — *lapsed*: no visit for ``LAPSED_GAP_MULTIPLE`` x their usual gap
   between trips (and at least ``MIN_LAPSED_DAYS``), with a monthly value and a basket
   value both below the median; or no visit for ``LONG_LAPSED_DAYS`` whatever their value.
3. **at risk** — lapsed by the same test but worth at least the median per month or
   per basket: valuable shoppers slipping away, the ones worth a win-back offer.
4. **champions** — visit frequency and monthly spend both in the top quartile.
5. **loyal** — visit more often than the median shopper.
6. **potential loyalists** — recent, less frequent, but spend per trip above the median
   (or still fairly new): could become loyal.
7. **occasional** — everyone else: recent but infrequent, small baskets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# Under two months a shopper has had few chances to show a pattern.
NEW_TENURE_DAYS = 60.0
# Half again their usual gap between trips: for a cluster centroid (an average shopper of
# the group) that is well outside the group's normal rhythm.
LAPSED_GAP_MULTIPLE = 1.5
# ... but a monthly shopper skipping one month is not lapsed yet.
MIN_LAPSED_DAYS = 21.0
# A quarter without any visit is lapsed for every grocery shopper.
LONG_LAPSED_DAYS = 90.0
# "New but promising" tenure for potential loyalists.
POTENTIAL_TENURE_DAYS = 120.0
DAYS_PER_PERIOD = 30.0

SEGMENT_NAMES = (
    "champions", "loyal", "potential loyalists", "new", "at risk", "hibernating", "occasional",
)


@dataclass(frozen=True)
class PopulationThresholds:
    """Quantiles of the fitted population that the rules compare centroids against."""

    trips_median: float
    trips_q75: float
    value_median: float
    value_q75: float
    spend_per_trip_median: float

    @classmethod
    def from_raw(cls, raw: np.ndarray) -> PopulationThresholds:
        """``raw``: rows of (recency, tenure, trips/30d, spend/trip, spend/30d)."""
        return cls(
            trips_median=float(np.median(raw[:, 2])),
            trips_q75=float(np.quantile(raw[:, 2], 0.75)),
            value_median=float(np.median(raw[:, 4])),
            value_q75=float(np.quantile(raw[:, 4], 0.75)),
            spend_per_trip_median=float(np.median(raw[:, 3])),
        )

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def name_centroid(centroid: np.ndarray, t: PopulationThresholds) -> str:
    """The segment name for one raw-unit centroid (rules in the module docstring)."""
    recency, tenure, trips, spend_per_trip, value = (float(v) for v in centroid)
    usual_gap = DAYS_PER_PERIOD / max(trips, 1e-6)
    lapsed = recency >= max(LAPSED_GAP_MULTIPLE * usual_gap, MIN_LAPSED_DAYS)
    if tenure < NEW_TENURE_DAYS:
        return "new"
    valuable = value >= t.value_median or spend_per_trip >= t.spend_per_trip_median
    if recency >= LONG_LAPSED_DAYS or (lapsed and not valuable):
        return "hibernating"
    if lapsed:
        return "at risk"
    if trips >= t.trips_q75 and value >= t.value_q75:
        return "champions"
    if trips >= t.trips_median:
        return "loyal"
    if spend_per_trip >= t.spend_per_trip_median or tenure < POTENTIAL_TENURE_DAYS:
        return "potential loyalists"
    return "occasional"

"""Name shoppers and KMeans clusters by fixed, documented rules on RFM values.

The values are read in raw units (days, trips and spend per 30 days): a cluster's centroid
when training describes its clusters, or one shopper's own values when the edge names that
shopper (``models.segments.serving``). They are compared with the population the model was
fitted on, including how many days of history it had: on four weeks of history every
shopper is under two months old, and "new" must then mean new within that history. Rules
apply in this order, first match wins:

1. **new** — tenure under ``NEW_TENURE_DAYS``, or under ``NEW_SHARE_OF_HISTORY`` of the
   history when that is shorter: too early to judge loyalty.
2. **hibernating** — *lapsed*: no visit for ``LAPSED_GAP_MULTIPLE`` x their usual gap
   between trips (and at least ``MIN_LAPSED_DAYS``), with a monthly value and a basket
   value both below the median; or no visit for ``LONG_LAPSED_DAYS`` whatever their value.
3. **at risk** — lapsed by the same test but worth at least the median per month or
   per basket: valuable shoppers slipping away, the ones worth a win-back offer.
4. **champions** — visit frequency and monthly spend both in the top quartile.
5. **loyal** — visit more often than the median shopper.
6. **potential loyalists** — recent, less frequent, but spend per trip above the median
   (or still fairly new: under ``POTENTIAL_TENURE_DAYS``, or ``POTENTIAL_SHARE_OF_HISTORY``
   of a shorter history): could become loyal.
7. **occasional** — everyone else: recent but infrequent, small baskets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# Under two months a shopper has had few chances to show a pattern.
NEW_TENURE_DAYS = 60.0
# ... but on a short history (a new store, a four-week demo) nearly everybody is under two
# months old: there a shopper is new if they first came in the latter half of the history,
# when the others had already been seen for a while.
NEW_SHARE_OF_HISTORY = 0.5
# Half again their usual gap between trips: for a cluster centroid (an average shopper of
# the group) that is well outside the group's normal rhythm.
LAPSED_GAP_MULTIPLE = 1.5
# ... but a monthly shopper skipping one month is not lapsed yet.
MIN_LAPSED_DAYS = 21.0
# A quarter without any visit is lapsed for every grocery shopper.
LONG_LAPSED_DAYS = 90.0
# "New but promising" tenure for potential loyalists; on a short history, the shoppers who
# came in after its first quarter.
POTENTIAL_TENURE_DAYS = 120.0
POTENTIAL_SHARE_OF_HISTORY = 0.75
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
    # Days of history the population was seen over (its longest tenure); unknown (inf)
    # in sidecars written before it was recorded.
    history_days: float = math.inf

    @classmethod
    def from_raw(cls, raw: np.ndarray) -> PopulationThresholds:
        """``raw``: rows of (recency, tenure, trips/30d, spend/trip, spend/30d)."""
        return cls(
            trips_median=float(np.median(raw[:, 2])),
            trips_q75=float(np.quantile(raw[:, 2], 0.75)),
            value_median=float(np.median(raw[:, 4])),
            value_q75=float(np.quantile(raw[:, 4], 0.75)),
            spend_per_trip_median=float(np.median(raw[:, 3])),
            history_days=float(np.max(raw[:, 1])),
        )

    @classmethod
    def from_sidecar(cls, sidecar: Mapping[str, Any]) -> PopulationThresholds:
        """The thresholds a bundle's ``segments.json`` carries. Older ones lack the history's
        length: the oldest cluster centroid's tenure stands in (a little short of it)."""
        values = dict(sidecar["thresholds"])
        if "history_days" not in values:
            tenures = [float(c["tenure_days"]) for c in sidecar.get("clusters", ())]
            values["history_days"] = max(tenures, default=math.inf)
        return cls(**{k: float(v) for k, v in values.items()})

    @property
    def new_tenure_days(self) -> float:
        return min(NEW_TENURE_DAYS, NEW_SHARE_OF_HISTORY * self.history_days)

    @property
    def potential_tenure_days(self) -> float:
        return min(POTENTIAL_TENURE_DAYS, POTENTIAL_SHARE_OF_HISTORY * self.history_days)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def name_values(values: np.ndarray, t: PopulationThresholds) -> str:
    """The segment name for raw-unit RFM values (a centroid's, or one shopper's): the rules
    in the module docstring."""
    recency, tenure, trips, spend_per_trip, value = (float(v) for v in values)
    usual_gap = DAYS_PER_PERIOD / max(trips, 1e-6)
    lapsed = recency >= max(LAPSED_GAP_MULTIPLE * usual_gap, MIN_LAPSED_DAYS)
    if tenure < t.new_tenure_days:
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
    if spend_per_trip >= t.spend_per_trip_median or tenure < t.potential_tenure_days:
        return "potential loyalists"
    return "occasional"


# A cluster is named like any shopper, from its centroid.
name_centroid = name_values

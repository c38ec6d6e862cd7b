"""A compact summary of each consenting shopper's history, built from the lake's rows.

The lake only holds a shopper's pseudonym, and only for a shopper who consented to
personalization (everyone else's sales are anonymous, `customer_id` null, and are skipped
by `models.datasets.lake.load_lake`), so every summary here is of a consenting shopper and
is keyed by the pseudonym. What it holds is numbers, catalog category names and a few fixed
words (weekday, hour band): nothing a person typed, nothing that names anyone.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, tzinfo
from itertools import pairwise
from statistics import mean, median, pstdev
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from models.datasets.lake import load_lake

DAY_S = 86_400.0
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
HourBand = Literal["night", "morning", "midday", "afternoon", "evening", "late"]
# (first hour, band) in the store's local time; a band is what a planner staffs for.
HOUR_BANDS: tuple[tuple[int, HourBand], ...] = (
    (0, "night"), (6, "morning"), (11, "midday"), (14, "afternoon"), (17, "evening"),
    (21, "late"))
# The categories a prompt carries, most bought first: enough for a weekly shop, and a bound
# on the prompt's tokens (and so on its cost) whatever a shopper's history holds.
MAX_CATEGORIES = 40


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CategoryRhythm(_Frozen):
    category: str
    purchases: int  # baskets holding the category
    median_gap_days: float | None  # None with a single purchase
    gap_variation: float | None  # std/mean of the gaps: 0 is clockwork
    last_purchase_days_ago: float
    units_total: float
    spend_total: float


class VisitPattern(_Frozen):
    visits: int
    visits_per_week: float
    median_gap_days: float | None  # between visits; None with one visit
    days_since_last_visit: float
    usual_weekday: Weekday
    usual_weekday_share: float
    usual_hour_band: HourBand
    usual_hour_band_share: float


class HouseholdSignals(_Frozen):
    mean_items_per_basket: float
    mean_units_per_basket: float
    mean_spend_per_basket: float
    weekly_spend: float
    distinct_categories: int


class ShopperSummary(_Frozen):
    shopper_id: str  # the lake's pseudonym
    as_of: date
    history_days: float
    total_spend: float
    visits: VisitPattern
    household: HouseholdSignals
    categories: list[CategoryRhythm]


def summarize_lake(rows: pa.Table | Iterable[Mapping[str, Any]], categories: Mapping[str, str],
                   *, now: datetime, tz: tzinfo = UTC) -> dict[str, ShopperSummary]:
    """Per pseudonym, the summary of its sales in `rows` (every store) up to `now`.
    `categories` is the catalog (product id -> category); `tz` the stores' local time, for
    the weekday and hour band."""
    ds = load_lake(rows, categories=categories)
    if ds.category_names is None or ds.quantity is None or ds.price is None:
        return {}
    now_s = now.timestamp()
    # One pass over the line items: per shopper, per basket, what it held.
    baskets: dict[int, dict[int, _Basket]] = defaultdict(dict)
    for user, basket, ts, cat, qty, paid in zip(ds.user, ds.basket, ds.ts, ds.category,
                                                ds.quantity, ds.price, strict=True):
        if ts > now_s:
            continue
        b = baskets[int(user)].setdefault(int(basket), _Basket(float(ts)))
        b.add(ds.category_names[int(cat)], float(qty), float(paid))
    return {ds.user_ids[user]: _summary(ds.user_ids[user], list(by_index.values()), now, tz)
            for user, by_index in baskets.items()}


class _Basket:
    __slots__ = ("by_category", "lines", "spend", "ts", "units")

    def __init__(self, ts: float) -> None:
        self.ts, self.lines, self.units, self.spend = ts, 0, 0.0, 0.0
        self.by_category: dict[str, list[float]] = {}  # category -> [units, spend]

    def add(self, category: str, units: float, spend: float) -> None:
        self.lines += 1
        self.units += units
        self.spend += spend
        entry = self.by_category.setdefault(category, [0.0, 0.0])
        entry[0] += units
        entry[1] += spend


def _summary(shopper: str, baskets: list[_Basket], now: datetime, tz: tzinfo
             ) -> ShopperSummary:
    baskets.sort(key=lambda b: b.ts)
    now_s = now.timestamp()
    days = max((now_s - baskets[0].ts) / DAY_S, 1.0)
    local = [datetime.fromtimestamp(b.ts, tz) for b in baskets]
    weekday, weekday_n = Counter(WEEKDAYS[t.weekday()] for t in local).most_common(1)[0]
    band, band_n = Counter(_band(t.hour) for t in local).most_common(1)[0]
    spend = sum(b.spend for b in baskets)
    visits = VisitPattern(
        visits=len(baskets), visits_per_week=_r(7.0 * len(baskets) / days),
        median_gap_days=_r(median(gaps)) if (gaps := [
            (b.ts - a.ts) / DAY_S for a, b in pairwise(baskets)]) else None,
        days_since_last_visit=_r((now_s - baskets[-1].ts) / DAY_S),
        usual_weekday=weekday, usual_weekday_share=_r(weekday_n / len(baskets)),
        usual_hour_band=band, usual_hour_band_share=_r(band_n / len(baskets)))
    times: dict[str, list[float]] = defaultdict(list)
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for b in baskets:
        for category, (units, paid) in b.by_category.items():
            times[category].append(b.ts)
            totals[category][0] += units
            totals[category][1] += paid
    rhythms = [_rhythm(c, times[c], totals[c], now_s) for c in times]
    rhythms.sort(key=lambda r: (-r.purchases, -r.spend_total, r.category))
    household = HouseholdSignals(
        mean_items_per_basket=_r(mean(b.lines for b in baskets)),
        mean_units_per_basket=_r(mean(b.units for b in baskets)),
        mean_spend_per_basket=_r(spend / len(baskets)),
        weekly_spend=_r(7.0 * spend / days), distinct_categories=len(times))
    return ShopperSummary(shopper_id=shopper, as_of=now.astimezone(UTC).date(),
                          history_days=_r(days), total_spend=_r(spend), visits=visits,
                          household=household, categories=rhythms[:MAX_CATEGORIES])


def _rhythm(category: str, times: list[float], total: list[float], now_s: float
            ) -> CategoryRhythm:
    gaps = [(b - a) / DAY_S for a, b in pairwise(times)]
    gap = median(gaps) if gaps else None
    variation = pstdev(gaps) / mean(gaps) if len(gaps) >= 2 and mean(gaps) > 0 else None
    return CategoryRhythm(
        category=category, purchases=len(times), median_gap_days=_r(gap),
        gap_variation=_r(variation), last_purchase_days_ago=_r((now_s - times[-1]) / DAY_S),
        units_total=_r(total[0]), spend_total=_r(total[1]))


def _band(hour: int) -> HourBand:
    found: HourBand = HOUR_BANDS[0][1]
    for first, band in HOUR_BANDS:
        if hour >= first:
            found = band
    return found


def _r(value: float | None) -> Any:
    # Two decimals: the model needs no more, and every digit is a token paid for.
    return None if value is None else round(float(value), 2)


def summary_digest(summary: ShopperSummary) -> str:
    """A digest of what would change the analysis: purchases, rhythm to the day, spend to
    the ten. Time passing alone (days since, as_of) does not change it: a shopper who did
    not come back is not re-analysed every night for nothing."""
    material = {
        "visits": summary.visits.visits,
        "weekly_spend": round(summary.household.weekly_spend, -1),
        "categories": sorted(
            (c.category, c.purchases, None if c.median_gap_days is None
             else round(c.median_gap_days), round(c.spend_total, -1))
            for c in summary.categories),
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]

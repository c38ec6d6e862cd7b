"""What an analysis costs, and the daily budget that stops new calls once it is spent.

Dollars come from the response's own `usage` (input, output, cache read and cache write
tokens) and a price table per model, in dollars per million tokens. The budget is kept in a
small SQLite file by UTC day, so several workers (and a restart) share one day's total.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloud_sync.analysis.schema import Cost

HAIKU_4_5 = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
SONNET_4_5 = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
PER_MILLION = 1_000_000


@dataclass(frozen=True)
class ModelPrice:
    """List prices in dollars per million tokens (on-demand, standard tier)."""

    input: float
    output: float


@dataclass(frozen=True)
class CostSettings:
    # Anthropic's list prices on Bedrock for the US cross-region profiles (late 2025):
    # Haiku 4.5 $1 in / $5 out, Sonnet 4.5 $3 / $15 (prompts up to 200k tokens).
    prices: Mapping[str, ModelPrice] = field(default_factory=lambda: {
        HAIKU_4_5: ModelPrice(1.0, 5.0), SONNET_4_5: ModelPrice(3.0, 15.0)})
    # Multipliers of the input price: a cache read costs a tenth, a (5-minute) cache write a
    # quarter more; batch inference is half the on-demand price.
    cache_read_factor: float = 0.1
    cache_write_factor: float = 1.25
    batch_factor: float = 0.5
    daily_budget_usd: float = 20.0

    def price(self, model_id: str) -> ModelPrice:
        try:
            return self.prices[model_id]
        except KeyError:
            # An unpriced model would make the budget blind: refuse to use it.
            raise ValueError(f"no price for model {model_id!r} in the cost settings") from None


def cost_of(usage: Mapping[str, Any], model_id: str, settings: CostSettings,
            *, batch: bool = False) -> Cost:
    """The cost of one response from its `usage`. Bedrock's `inputTokens` counts only the
    tokens neither read from nor written to the cache; those come on their own lines."""
    price = settings.price(model_id)
    fresh = int(usage.get("inputTokens", 0))
    out = int(usage.get("outputTokens", 0))
    read = int(usage.get("cacheReadInputTokens", 0) or 0)
    write = int(usage.get("cacheWriteInputTokens", 0) or 0)
    dollars = (fresh * price.input + out * price.output
               + read * price.input * settings.cache_read_factor
               + write * price.input * settings.cache_write_factor) / PER_MILLION
    if batch:
        dollars *= settings.batch_factor
    return Cost(input_tokens=fresh, output_tokens=out, cache_read_tokens=read,
                cache_write_tokens=write, dollars=dollars, calls=1)


def converse_usage(messages_usage: Mapping[str, Any]) -> dict[str, int]:
    """An Anthropic Messages `usage` (InvokeModel, batch output) in Converse's names, so
    one `cost_of` prices both."""
    return {"inputTokens": int(messages_usage.get("input_tokens") or 0),
            "outputTokens": int(messages_usage.get("output_tokens") or 0),
            "cacheReadInputTokens": int(messages_usage.get("cache_read_input_tokens") or 0),
            "cacheWriteInputTokens": int(
                messages_usage.get("cache_creation_input_tokens") or 0)}


def add_costs(a: Cost, b: Cost) -> Cost:
    return Cost(input_tokens=a.input_tokens + b.input_tokens,
                output_tokens=a.output_tokens + b.output_tokens,
                cache_read_tokens=a.cache_read_tokens + b.cache_read_tokens,
                cache_write_tokens=a.cache_write_tokens + b.cache_write_tokens,
                dollars=a.dollars + b.dollars, calls=a.calls + b.calls)


class DailyBudget:
    """Dollars spent per UTC day, in SQLite. A call is allowed while the day's spend is below
    the limit: one call may overshoot by its own cost, which is bounded by max tokens."""

    def __init__(self, path: Path, limit_usd: float) -> None:
        self.path, self.limit_usd = Path(path), limit_usd
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS spend (day TEXT PRIMARY KEY, "
                       "dollars REAL NOT NULL, calls INTEGER NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        # A connection per use: the budget is shared by the analysis threads.
        return sqlite3.connect(self.path, timeout=10.0)

    @staticmethod
    def today(now: datetime | None = None) -> str:
        return (now or datetime.now(UTC)).astimezone(UTC).date().isoformat()

    def spent(self, now: datetime | None = None) -> float:
        with self._connect() as db:
            row = db.execute("SELECT dollars FROM spend WHERE day = ?",
                             (self.today(now),)).fetchone()
        return float(row[0]) if row else 0.0

    def allows(self, now: datetime | None = None) -> bool:
        return self.spent(now) < self.limit_usd

    def record(self, dollars: float, now: datetime | None = None) -> None:
        with self._lock, self._connect() as db:
            db.execute("INSERT INTO spend (day, dollars, calls) VALUES (?, ?, 1) "
                       "ON CONFLICT(day) DO UPDATE SET dollars = dollars + excluded.dollars, "
                       "calls = calls + 1", (self.today(now), dollars))

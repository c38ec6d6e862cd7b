"""The demo's cloud team analyses its shoppers, without Bedrock: once the release bundle
exists, every consenting shopper in the lake gets the fallback analysis ("not configured",
from the release's timing and segment models), and each store is sent its own shoppers'
results over the store link. Staff then see them on the handheld, for a shopper who lets
staff help: "From the store's models (fallback: not configured)".

Bedrock is turned off here whatever credentials the machine has: a demo never spends a
visitor's AWS money. The same code as `cloud-sync analyze fleet --bundle ... --push`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from cloud_sync.analysis.bedrock import Analyst
from cloud_sync.analysis.downlink import InsightsPush, shoppers_by_store
from cloud_sync.analysis.fallback import ValueBands
from cloud_sync.analysis.model_fallback import ModelFallback
from cloud_sync.analysis.push import push_to_stores
from cloud_sync.analysis.settings import AnalysisSettings, BedrockSettings
from cloud_sync.analysis.summary import summarize_lake
from cloud_sync.lake.store import Lake
from cloud_sync.link.credentials import LinkCredentials
from cloud_sync.link.privacy import pseudonymize
from cloud_sync.local.broker import CLOUD_IDENTITY
from cloud_sync.local.stack import LocalCloud
from edge_agent.demo.shoppers import Shopper

logger = logging.getLogger(__name__)

ANALYSIS_DIR = "analysis"  # under the demo's directory: history and budget files
PUSH_CLIENT_ID = "demo-insights"


@dataclass(frozen=True)
class DemoAnalysis:
    shoppers: int  # analysed
    producers: dict[str, int]  # by producer key (`fallback models VERSION` or `fallback`)
    pushes: list[InsightsPush]
    # Per store, a loyalty number whose analysis its staff page shows (staff-assist consent).
    try_loyalty: dict[str, str]

    def line(self) -> str:
        """One line for the demo's log."""
        if not self.shoppers:
            return "analysis: no consenting shopper in the lake yet: nothing to analyse"
        how = ", ".join(f"{n} by {'the rules' if p == 'fallback' else p.removeprefix('fallback ')}"
                        for p, n in sorted(self.producers.items()))
        sent = ", ".join(f"{p.store} {p.sent}" for p in self.pushes) or "no store"
        where = "; ".join(f"{store}'s staff page: loyalty no. {number}"
                          for store, number in sorted(self.try_loyalty.items()))
        return (f"analysis: {self.shoppers} consenting shoppers without Bedrock (fallback: not"
                f" configured; {how}); sent to {sent}"
                + (f" — shown as \"From the store's models\" on {where}" if where else ""))


def analyze_and_push(cloud: LocalCloud, lake: Lake, categories: Mapping[str, str],
                     state_dir: Path, *, bundle: Path | None = None,
                     public_key: Path | None = None,
                     store_shoppers: Mapping[str, tuple[Path, Sequence[Shopper]]] | None = None,
                     now: datetime | None = None) -> DemoAnalysis:
    """Analyse every consenting shopper of `lake` (the models of `bundle` when given, else
    the rules) and push each store its own. `store_shoppers`: per store, its credentials
    directory (the chain's pseudonym key) and shoppers, to name one to try on the page."""
    now = now or datetime.now(UTC)
    rows = lake.read()
    summaries = summarize_lake(rows, categories, now=now)
    models = (ModelFallback.load(bundle, public_key, rows, categories, now=now)
              if bundle is not None and public_key is not None else None)
    settings = replace(AnalysisSettings(state_dir=state_dir),
                       bedrock=BedrockSettings(enabled=False))
    analyst = Analyst(settings, set(categories.values()), models=models,
                      bands=ValueBands.from_summaries(summaries.values()))
    results = analyst.analyze_all(summaries.values())
    producers: dict[str, int] = {}
    for result in results:
        producers[result.producer_key] = producers.get(result.producer_key, 0) + 1
    pushes = []
    if results:
        link = cloud.credentials(CLOUD_IDENTITY, state_dir / "link")
        pushes = push_to_stores(link, rows, results, client_id=PUSH_CLIENT_ID)
    seen = shoppers_by_store(rows)
    try_loyalty = {}
    for store, (credentials, shoppers) in (store_shoppers or {}).items():
        key = LinkCredentials.load(credentials).pseudonym_key
        number = next((s.loyalty_number for s in shoppers if key and s.consent_staff_assist
                       and pseudonymize(key, s.customer_id) in seen.get(store, set())), None)
        if number is not None:
            try_loyalty[store] = number
    return DemoAnalysis(len(results), producers, pushes, try_loyalty)

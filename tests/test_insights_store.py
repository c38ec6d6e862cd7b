"""Insights from the cloud into a store's SQLite (edge_agent/insights): the message the cloud
builds (cloud_sync/analysis/downlink.py) applied to a real database file: only shoppers with
staff-assist consent kept, every analysis kept as history and the newest read first, a
message sent twice stores nothing new, a malformed record or message dead-lettered without
holding up the rest, and erasure deleting them."""

from __future__ import annotations

import zlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from cloud_sync.analysis.downlink import encode_insights, insight_record, push_insights
from cloud_sync.analysis.schema import (
    AnalysisResult,
    CategoryForecast,
    ChurnRisk,
    Inference,
    Opportunity,
    ShopperAnalysis,
)
from cloud_sync.link.batch import MAX_PAYLOAD_BYTES
from cloud_sync.link.masterdata import encode_chunks
from cloud_sync.link.privacy import pseudonymize
from edge_agent.insights.apply import apply_insights
from edge_agent.insights.store import HISTORY_KEPT, insights_of, latest_insight
from edge_agent.masterdata import apply_records
from edge_agent.storage import open_database
from tests.api.conftest import seed_catalog

KEY = bytes(range(32))
TOPIC = "cmd/instore/store-t1/insights"
WHEN = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def sample_result(customer_id: str, *, key: bytes = KEY, created_at: datetime = WHEN,
                  producer: str = "bedrock", churn: str = "low",
                  category: str = "milk") -> AnalysisResult:
    """An analysis of one shopper as the cloud makes it (named by their pseudonym)."""
    analysis = ShopperAnalysis(
        forecasts=[CategoryForecast(category=category, next_purchase_date=date(2026, 12, 8),
                                    confidence=0.8, reason="bought every 7 days")],
        household=[Inference(label="couple", confidence=0.6, reason="two of most items")],
        lifestyle=[Inference(label="home cook", confidence=0.5, reason="fresh produce")],
        churn_risk=ChurnRisk(level=churn, probability=0.2, reason="visits as usual"),
        value_band="high",
        opportunities=[Opportunity(category="bread", action="offer sourdough with milk",
                                   confidence=0.7)])
    bedrock = producer == "bedrock"
    return AnalysisResult(
        shopper_id=pseudonymize(key, customer_id), producer=producer,  # type: ignore[arg-type]
        model_id="us.anthropic.claude-haiku-4-5-20251001-v1:0" if bedrock else None,
        fallback_reason=None if bedrock else "not configured", analysis=analysis,
        summary_digest="d" * 16, created_at=created_at)


def payloads_for(results: list[AnalysisResult], version: int = 1) -> list[bytes]:
    return encode_insights([insight_record(r) for r in results], version)[1]


@pytest.fixture
def conn(tmp_path: Path) -> Any:
    db_path = tmp_path / "edge.db"
    open_database(db_path).close()
    seed_catalog(db_path)  # C-WEEKLY consents to staff assist; C-VEGAN does not
    db = open_database(db_path)
    yield db.conn
    db.close()


def apply(conn: Any, payload: bytes) -> Any:
    return apply_insights(conn, payload, topic=TOPIC, pseudonym_key=KEY, max_raw_bytes=4096)


def test_only_shoppers_with_staff_assist_consent_are_kept(conn: Any) -> None:
    [payload] = payloads_for([sample_result("C-WEEKLY"), sample_result("C-VEGAN"),
                              sample_result("C-SOMEONE-ELSE")])
    outcome = apply(conn, payload)
    assert (outcome.status, outcome.stored, outcome.skipped) == ("applied", 1, 2)
    rows = conn.execute("SELECT customer_id FROM shopper_insights").fetchall()
    assert rows == [("C-WEEKLY",)]
    newest = latest_insight(conn, "C-WEEKLY")
    assert newest is not None and newest.producer == "bedrock"
    assert newest.analysis.value_band == "high" and newest.created_at == WHEN
    assert latest_insight(conn, "C-VEGAN") is None


def test_the_same_message_twice_stores_nothing_new(conn: Any) -> None:
    [payload] = payloads_for([sample_result("C-WEEKLY")])
    assert apply(conn, payload).stored == 1
    again = apply(conn, payload)
    assert (again.stored, again.already) == (0, 1)
    assert count_rows(conn) == 1


def count_rows(conn: Any) -> int:
    return conn.execute("SELECT count(*) FROM shopper_insights").fetchone()[0]


def test_every_analysis_is_history_and_the_newest_is_served_whatever_the_order(
        conn: Any) -> None:
    later = sample_result("C-WEEKLY", created_at=WHEN + timedelta(days=1), churn="high",
                          producer="fallback")
    earlier = sample_result("C-WEEKLY", created_at=WHEN)
    apply(conn, payloads_for([later], version=2)[0])
    apply(conn, payloads_for([earlier], version=1)[0])  # a late message of an older run
    history = insights_of(conn, "C-WEEKLY", 10)
    assert [h.created_at for h in history] == [later.created_at, earlier.created_at]
    newest = latest_insight(conn, "C-WEEKLY")
    assert newest is not None
    assert (newest.producer, newest.fallback_reason) == ("fallback", "not configured")
    assert newest.analysis.churn_risk.level == "high"


def test_history_is_bounded_per_shopper(conn: Any) -> None:
    results = [sample_result("C-WEEKLY", created_at=WHEN + timedelta(hours=i))
               for i in range(HISTORY_KEPT + 5)]
    apply(conn, payloads_for(results)[0])
    assert count_rows(conn) == HISTORY_KEPT
    oldest_kept = conn.execute("SELECT min(created_at) FROM shopper_insights").fetchone()[0]
    assert oldest_kept.startswith((WHEN + timedelta(hours=5)).strftime("%Y-%m-%dT%H"))


def test_a_malformed_record_is_dead_lettered_and_the_others_stored(conn: Any) -> None:
    good = insight_record(sample_result("C-WEEKLY")).model_dump(mode="json")
    bad = {**insight_record(sample_result("C-WEEKLY", category="x")).model_dump(mode="json"),
           "analysis": {"value_band": "priceless"}}
    [payload] = encode_chunks("insights", 3, [(1, bad), (2, good)], "insights-3-test")
    outcome = apply(conn, payload)
    assert (outcome.stored, outcome.dead_lettered) == (1, 1)
    assert "record 1: analysis.forecasts: Field required" in outcome.errors[0]
    assert "priceless" not in outcome.errors[0]  # the field, never the value
    reason, topic = conn.execute("SELECT reason, topic FROM dead_letters").fetchone()
    assert topic == TOPIC and "record 1" in reason


@pytest.mark.parametrize(("payload", "why"), [
    (b"\x00not a message", "not zlib-compressed"),
    (zlib.compress(b"[1, 2]"), "not a version 1 message"),
    (encode_chunks("catalog", 1, [(1, {"product_id": "P1"})], "c")[0], "is not 'insights'"),
    (b"x" * (MAX_PAYLOAD_BYTES + 1), "oversized payload"),
    (zlib.compress(orjson.dumps({"v": 1, "kind": "insights", "batch_id": "b", "version": 1,
                                 "rows": [[n, {}] for n in range(10_001)]})), "more than"),
])
def test_a_message_that_is_not_insights_is_dead_lettered_whole(conn: Any, payload: bytes,
                                                                why: str) -> None:
    outcome = apply(conn, payload)
    assert outcome.status == "refused" and why in (outcome.reason or "")
    assert conn.execute("SELECT count(*) FROM dead_letters WHERE topic = ?",
                        (TOPIC,)).fetchone()[0] == 1
    # The next message is applied as if nothing happened.
    assert apply(conn, payloads_for([sample_result("C-WEEKLY")])[0]).stored == 1


def test_a_big_run_goes_in_messages_under_the_limit_and_all_arrive(conn: Any) -> None:
    customers = [{"customer_id": f"C{n:05d}", "consent_staff_assist": True}
                 for n in range(1500)]
    apply_records(conn, "customers", list(enumerate(customers, 1)), version=1,
                  batch_id="customers-1")
    results = [sample_result(c["customer_id"]) for c in customers]
    batches, payloads = encode_insights([insight_record(r) for r in results], 7)
    assert len(payloads) > 1 and all(len(p) <= MAX_PAYLOAD_BYTES for p in payloads)
    assert batches[0].endswith(f"0001of{len(payloads):04d}")
    assert sum(apply(conn, p).stored for p in payloads) == 1500


def test_erasure_deletes_the_shoppers_analyses(conn: Any) -> None:
    apply(conn, payloads_for([sample_result("C-WEEKLY")])[0])
    apply_records(conn, "erasure", [(1, {"customer_id": "C-WEEKLY"})], version=2,
                  batch_id="erasure-2")
    assert count_rows(conn) == 0


def test_a_staff_assist_withdrawal_deletes_the_shoppers_analyses_at_once(conn: Any) -> None:
    apply(conn, payloads_for([sample_result("C-WEEKLY")])[0])
    conn.execute("UPDATE customers SET consent_staff_assist = 1 WHERE customer_id = 'C-VEGAN'")
    apply(conn, payloads_for([sample_result("C-VEGAN")])[0])
    assert count_rows(conn) == 2
    # A personalization-only change keeps the analyses: staff assistance still stands.
    apply_records(conn, "consent", [(1, {"customer_id": "C-WEEKLY",
                                         "consent_personalization": True})], version=2,
                  batch_id="consent-2")
    assert count_rows(conn) == 2
    apply_records(conn, "consent", [(1, {"customer_id": "C-WEEKLY",
                                         "consent_staff_assist": False})], version=3,
                  batch_id="consent-3")
    assert conn.execute("SELECT customer_id FROM shopper_insights").fetchall() == [("C-VEGAN",)]
    # The same through a customers file (the operator's import takes the same path).
    row = conn.execute("SELECT customer_id, loyalty_number FROM customers"
                       " WHERE customer_id = 'C-VEGAN'").fetchone()
    apply_records(conn, "customers", [(1, {"customer_id": row[0], "loyalty_number": row[1],
                                           "consent_personalization": True,
                                           "consent_staff_assist": False})],
                  version=4, batch_id="customers-4")
    assert count_rows(conn) == 0
    outcome = apply(conn, payloads_for([sample_result("C-WEEKLY", category="bread")])[0])
    assert (outcome.stored, outcome.skipped, count_rows(conn)) == (0, 1, 0)


def test_push_sends_a_store_only_its_own_shoppers() -> None:
    class Link:
        def __init__(self) -> None:
            self.sent: list[tuple[str, bytes]] = []

        def publish(self, topic: str, payload: bytes) -> None:
            self.sent.append((topic, payload))

    link = Link()
    ours, theirs = sample_result("C-WEEKLY"), sample_result("C-ELSEWHERE")
    push = push_insights(link, "store-t1", [ours, theirs],  # type: ignore[arg-type]
                         store_shoppers={ours.shopper_id}, version=5)
    assert (push.sent, push.withheld, push.version) == (1, 1, 5)
    [(topic, payload)] = link.sent
    assert topic == TOPIC
    body = zlib.decompress(payload)
    assert ours.shopper_id.encode() in body and theirs.shopper_id.encode() not in body


def test_the_migration_and_reads_never_name_the_pseudonym(conn: Any) -> None:
    apply(conn, payloads_for([sample_result("C-WEEKLY")])[0])
    columns = [r[1] for r in conn.execute("PRAGMA table_info(shopper_insights)")]
    assert "shopper" not in columns and "pseudonym" not in columns
    stored = conn.execute("SELECT * FROM shopper_insights").fetchall()
    assert pseudonymize(KEY, "C-WEEKLY") not in repr(stored)

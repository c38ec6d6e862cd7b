"""The chain's analysis on the staff page, in a real browser against a live agent: shown for
a shopper who consented to staff assistance (saying who produced it, every text as text),
and nothing of it for a shopper who did not."""

from __future__ import annotations

from datetime import timedelta

from cloud_sync.analysis.schema import Opportunity
from edge_agent.insights.apply import apply_insights
from edge_agent.storage import open_database
from tests.api.conftest import seed_catalog
from tests.test_insights_store import KEY, TOPIC, WHEN, payloads_for, sample_result
from tests.ui.conftest import LiveStore

HOSTILE = '<img src=x onerror="window.pwned=1">'


def _send_down(store: LiveStore, *results: object) -> None:
    """Through the same code the cloud link's handler runs (this store has no link)."""
    db = open_database(store.db_path)
    try:
        for payload in payloads_for(list(results)):  # type: ignore[arg-type]
            outcome = apply_insights(db.conn, payload, topic=TOPIC, pseudonym_key=KEY,
                                     max_raw_bytes=4096)
            assert outcome.status == "applied"
    finally:
        db.close()


def _look_up(page: object, loyalty_number: str) -> None:
    page.get_by_label("Shopper's loyalty number").fill(loyalty_number)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Look up").click()  # type: ignore[attr-defined]


def test_staff_page_shows_the_analysis_with_consent_and_none_without(
        live_store: LiveStore, page: object) -> None:
    seed_catalog(live_store.db_path)  # C-WEEKLY consents to staff assist, C-VEGAN does not
    page.goto(live_store.page_url("staff", "staff"))  # type: ignore[attr-defined]
    _look_up(page, "1000000001")
    page.get_by_text("No analysis from the chain for this shopper yet.").wait_for()  # type: ignore[attr-defined]

    bedrock = sample_result("C-WEEKLY", churn="medium")
    bedrock = bedrock.model_copy(update={"analysis": bedrock.analysis.model_copy(update={
        "opportunities": [Opportunity(category="bread", action=HOSTILE, confidence=0.7)]})})
    _send_down(live_store, bedrock, sample_result("C-VEGAN"))
    _look_up(page, "1000000001")
    card = page.locator("#assist-analysis")  # type: ignore[attr-defined]
    card.wait_for()
    text = card.inner_text()
    assert "From the chain's analysis (Bedrock model us.anthropic.claude-haiku" in text
    assert "Medium (20%)" in text and "High" in text  # churn risk, value band
    assert "milk" in page.locator("#analysis-next li[data-category='milk']").inner_text()  # type: ignore[attr-defined]
    assert HOSTILE in text  # shown as text, never as markup
    assert card.locator("img").count() == 0
    assert page.evaluate("window.pwned") is None  # type: ignore[attr-defined]
    assert page.locator("#analysis-none").is_hidden()  # type: ignore[attr-defined]

    # A newer analysis made by the fallback says so.
    _send_down(live_store, sample_result("C-WEEKLY", producer="fallback", churn="high",
                                         created_at=WHEN + timedelta(days=1)))
    _look_up(page, "1000000001")
    page.get_by_text("From simple rules on the shopper's history (Bedrock: not configured)"
                     ).wait_for()  # type: ignore[attr-defined]
    assert card.get_attribute("data-producer") == "fallback"

    # Without staff-assist consent: the refusal, and no analysis at all.
    _look_up(page, "1000000003")
    refused = page.locator("#assist-error")  # type: ignore[attr-defined]
    refused.wait_for()
    assert "hasn't agreed to staff assistance" in refused.inner_text()
    assert card.is_hidden()
    assert page.locator("#analysis-none").is_hidden()  # type: ignore[attr-defined]

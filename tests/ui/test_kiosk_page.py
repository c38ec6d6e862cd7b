"""The kiosk in a real browser: a shopper types a loyalty number and sees their list, the
recommendations and their route drawn on the store map."""

from __future__ import annotations

from tests.ui.conftest import LiveStore


def test_shopper_sees_list_recommendations_and_route(regular: LiveStore, page: object) -> None:
    page.goto(regular.page_url("kiosk", "kiosk"))  # type: ignore[attr-defined]
    page.get_by_label("Loyalty number").fill("1000000001")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Show my list").click()  # type: ignore[attr-defined]
    milk = page.locator("#list li[data-product='MILK']")  # type: ignore[attr-defined]
    milk.wait_for(timeout=15_000)
    assert "every 7 days" in milk.inner_text()
    assert page.locator("#list li[data-product='BREAD']").count() == 1  # type: ignore[attr-defined]
    assert page.locator("#recs li").count() >= 1  # type: ignore[attr-defined]
    assert page.locator("#map svg polyline.path").count() == 1  # type: ignore[attr-defined]
    stops = page.locator("#map g.stop")  # type: ignore[attr-defined]
    assert stops.count() >= 1
    assert stops.first.text_content() == "1"
    assert "stop" in page.locator("#route-summary").inner_text()  # type: ignore[attr-defined]


def test_unknown_number_is_explained(regular: LiveStore, page: object) -> None:
    page.goto(regular.page_url("kiosk", "kiosk"))  # type: ignore[attr-defined]
    page.get_by_label("Loyalty number").fill("5555555555")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Show my list").click()  # type: ignore[attr-defined]
    alert = page.get_by_role("alert")  # type: ignore[attr-defined]
    alert.wait_for()
    assert "couldn't find that loyalty number" in alert.inner_text()


def test_card_without_consent_is_told_how_to_switch_it_on(regular: LiveStore,
                                                          page: object) -> None:
    page.goto(regular.page_url("kiosk", "kiosk"))  # type: ignore[attr-defined]
    page.get_by_label("Loyalty number").fill("1000000002")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Show my list").click()  # type: ignore[attr-defined]
    alert = page.get_by_role("alert")  # type: ignore[attr-defined]
    alert.wait_for()
    assert "switched off for this card" in alert.inner_text()

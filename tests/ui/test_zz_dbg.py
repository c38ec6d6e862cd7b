import httpx
from tests.api.conftest import KEYS
from tests.ui.seeding import FAMILY

def test_dbg(seeded, device) -> None:
    store, shop = seeded
    h = {"X-API-Key": KEYS["kiosk"]}
    for c in ("C-FAMILY", "C-DOORWAY"):
        t = httpx.get(f"{store.url}/v1/shoppers/{c}/purchase-timing", headers=h).json()
        for x in t["categories"]:
            print(c, x["category"], x["purchases"], x["typical_gap_days"], x["days_until"], x["urgency"])
        l = httpx.get(f"{store.url}/v1/shoppers/{c}/shopping-list", headers=h).json()
        for x in l["items"]:
            print("  LIST", x["category"], x["status"], x["reason"])
    page = device(390, 844)
    page.goto(store.page_url("staff", "staff"))
    page.get_by_role("tab", name="Find an item").click()
    page.get_by_label("Product name or code").fill("milk")
    page.get_by_role("button", name="Find").click()
    page.locator("#find-results button").first.click()
    page.locator("#map svg polyline.path").wait_for()
    print(page.evaluate("""[...document.querySelectorAll('*')].filter(e => e.getBoundingClientRect().right > window.innerWidth).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + e.getBoundingClientRect().right).slice(0, 20)"""))

import { api, clearError, el, showError, timeOfDay } from "./api.js";

// A display is glanced at, not read: refresh often enough to feel live, rarely enough to
// let a shopper finish reading. ?refresh=SECONDS overrides it (tests, busy stores).
const params = new URLSearchParams(location.search);
const REFRESH_MS = 1000 * Number(params.get("refresh") || 30);

// ?zone=ID shows that zone's content (its shelves' categories); without it, the whole store.
const ZONE = params.get("zone");

async function load() {
  if (!ZONE) {
    return (await api("/v1/trending?limit=6")).items;
  }
  const content = await api(`/v1/displays/${encodeURIComponent(ZONE)}/content`);
  document.querySelector("header h1").textContent = `Popular in ${content.zone_name || "this aisle"}`;
  // Suggestions for a consenting shopper standing here: products only, never who it is for.
  return [...content.for_you, ...content.trending];
}

async function refresh() {
  const error = document.getElementById("error");
  try {
    const items = await load();
    document.getElementById("trending").replaceChildren(...items.map((item) =>
      el("li", { "data-product": item.product_id },
        el("span", {}, item.name || item.product_id),
        el("span", { class: "muted" }, item.category || ""))));
    document.getElementById("trending-empty").hidden = items.length > 0;
    document.getElementById("updated").textContent = `Updated ${timeOfDay()}`;
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
    clearError(error);
  } catch (err) {
    showError(error, err);
  }
}

refresh();
setInterval(refresh, REFRESH_MS);

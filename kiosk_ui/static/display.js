import { api, clearError, el, showError, timeOfDay } from "./api.js";

// A display is glanced at, not read: refresh often enough to feel live, rarely enough to
// let a shopper finish reading. ?refresh=SECONDS overrides it (tests, busy stores), within
// bounds: below the minimum a display only loads the agent (its answers are cached for
// longer anyway), and `refresh=0` or a typo once meant hundreds of requests a second.
const DEFAULT_REFRESH_S = 30;
const MIN_REFRESH_S = 5;
const MAX_REFRESH_S = 3600; // an hour: slower than that a display looks broken

export function refreshSeconds(requested) {
  const seconds = Number.parseFloat(requested ?? "");
  if (!Number.isFinite(seconds)) return DEFAULT_REFRESH_S;
  return Math.min(MAX_REFRESH_S, Math.max(MIN_REFRESH_S, seconds));
}

const params = new URLSearchParams(location.search);
const REFRESH_MS = 1000 * refreshSeconds(params.get("refresh"));

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
  const error = $("error");
  try {
    const items = await load();
    $("trending").replaceChildren(...items.map((item) =>
      el("li", { "data-product": item.product_id },
        el("span", {}, item.name || item.product_id),
        // A zone's display is in that zone: where else to look only helps store-wide.
        el("span", { class: "muted" }, (ZONE ? item.category : item.location || item.category) || ""))));
    $("trending-empty").hidden = items.length > 0;
    $("updated").textContent = `Updated ${timeOfDay()}`;
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
    clearError(error);
  } catch (err) {
    showError(error, err);
  } finally {
    // The next refresh is timed from the end of this one, so a slow agent is never asked
    // again before it has answered.
    setTimeout(refresh, REFRESH_MS);
  }
}

function $(id) {
  return document.getElementById(id);
}

refresh();

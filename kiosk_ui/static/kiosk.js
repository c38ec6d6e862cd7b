import { ApiError, api, clearError, el, plural, sendFeedback, showError } from "./api.js";
import { drawMap } from "./storemap.js";

// A kiosk is shared: forget the shopper (and a half-typed number, and any message) after a
// while without a touch. ?idle=SECONDS shortens it for a store that wants it shorter.
const DEFAULT_IDLE_S = 90;
const MIN_IDLE_S = 15; // long enough to read a list and walk back to the screen
const requestedIdle = Number.parseFloat(new URLSearchParams(location.search).get("idle"));
const IDLE_RESET_MS = 1000 * (Number.isFinite(requestedIdle)
  ? Math.max(MIN_IDLE_S, requestedIdle) : DEFAULT_IDLE_S);
let idleTimer;

// Every lookup is numbered. Forgetting a shopper moves the number on, so an answer still on
// its way for them (they pressed Done, or the next person typed their card meanwhile) is
// dropped unseen instead of drawing their list under someone else's message.
let session = 0;

const $ = (id) => document.getElementById(id);

function resetIdleTimer() {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(reset, IDLE_RESET_MS);
}

// Removes everything personal from the page (not just hides it).
function forgetShopper() {
  session += 1;
  for (const id of ["list", "recs", "map"]) $(id).replaceChildren();
  $("route-summary").textContent = "";
  $("list-empty").hidden = true;
  $("shopper").hidden = true;
  $("done").hidden = true;
}

function reset() {
  forgetShopper();
  clearError($("error"));
  $("welcome").hidden = false;
  $("loyalty").value = "";
}

function formatDate(iso) {
  return new Date(iso).toLocaleDateString([], { weekday: "short", day: "numeric", month: "short" });
}

function itemRow(item) {
  return el("li", { "data-product": item.product_id },
    el("strong", { class: "name" }, item.name),
    el("span", { class: `badge ${item.status === "urgent" ? "urgent" : "soon"}` },
      item.status === "urgent" ? "Due now" : `By ${formatDate(item.predicted_date)}`),
    el("span", { class: "reason muted" }, item.reason),
    item.in_stock ? "" : el("span", { class: "reason sold-out" }, "Sold out on the shelf right now"));
}

// The list in walking order: one row per stop of the route, numbered as on the map, with
// every item picked there; items the route could not place come last, unnumbered.
function renderList(items, route) {
  const left = new Map(items.map((item) => [item.product_id, item]));
  const rows = [];
  for (const stop of route.stops) {
    const here = stop.items.map((picked) => left.get(picked.item_id)).filter(Boolean);
    if (!here.length) continue;
    for (const item of here) left.delete(item.product_id);
    rows.push(el("li", { "data-stop": stop.number },
      el("span", { class: "stop-number", "aria-label": `Stop ${stop.number}` }, stop.number),
      el("div", {},
        stop.location ? el("span", { class: "where" }, stop.location) : "",
        el("ul", { class: "stop-items" }, ...here.map(itemRow)))));
  }
  if (left.size) {
    rows.push(el("li", { class: "off-route" },
      el("span", { class: "stop-number", "aria-hidden": "true" }, "?"),
      el("div", {}, el("span", { class: "where" }, "Not on the map: ask a member of staff"),
        el("ul", { class: "stop-items" }, ...[...left.values()].map(itemRow)))));
  }
  $("list").replaceChildren(...rows);
  $("list-empty").hidden = items.length > 0;
}

// Feedback context of what the recommendations panel shows (the release gate's click-through
// counts this context only).
const RECS_CONTEXT = "recommendations";

function renderRecommendations(items, customerId) {
  $("recs").replaceChildren(...items.map((item) => {
    const row = el("li", { "data-product": item.product_id },
      el("span", {}, el("strong", {}, item.name), el("span", { class: "reason muted" }, item.reason)),
      item.price != null ? el("span", {}, `£${item.price.toFixed(2)}`) : "");
    row.addEventListener("click", () => sendFeedback("click", item, customerId, RECS_CONTEXT));
    return row;
  }));
  for (const item of items) sendFeedback("impression", item, customerId, RECS_CONTEXT);
}

function routeSummary(route) {
  if (!route.stops.length) return "Nothing to collect yet.";
  const minutes = Math.max(1, Math.round(route.walking_time_s / 60));
  return `${plural(route.stops.length, "stop")} · ${Math.round(route.distance_m)} m · `
    + `about ${plural(minutes, "minute")}`;
}

async function showShopper(loyaltyNumber) {
  forgetShopper(); // whatever comes next, nothing of the previous shopper stays on screen
  const mine = session;
  const stale = () => mine !== session;
  const error = $("error");
  clearError(error);
  let customerId;
  try {
    ({ customer_id: customerId } = await api(
      `/v1/shoppers/lookup?loyalty_number=${encodeURIComponent(loyaltyNumber)}`));
  } catch (err) {
    if (stale()) return;
    showError(error, err.code === "unknown_customer"
      ? new ApiError("We couldn't find that loyalty number. Please check it and try again.")
      : err);
    return;
  }
  try {
    const id = encodeURIComponent(customerId);
    const [list, recs, map, route] = await Promise.all([
      api(`/v1/shoppers/${id}/shopping-list`),
      api(`/v1/shoppers/${id}/recommendations?context=kiosk&limit=6`),
      api("/v1/store/map"),
      api(`/v1/shoppers/${id}/shopping-list/route`),
    ]);
    if (stale()) return;
    renderList(list.items, route);
    const listed = new Set(list.items.map((item) => item.product_id));
    renderRecommendations(recs.items.filter((item) => !listed.has(item.product_id)), customerId);
    drawMap($("map"), map, route);
    $("route-summary").textContent = routeSummary(route);
    $("welcome").hidden = true;
    $("shopper").hidden = false;
    $("done").hidden = false;
    resetIdleTimer();
  } catch (err) {
    if (stale()) return;
    showError(error, err.code === "consent_required"
      ? new ApiError("Personal lists are switched off for this card. You can switch them on at customer service.")
      : err);
  }
}

$("lookup").addEventListener("submit", (event) => {
  event.preventDefault();
  showShopper($("loyalty").value.trim());
});
$("done").addEventListener("click", reset);
for (const kind of ["pointerdown", "keydown", "input"]) {
  document.addEventListener(kind, resetIdleTimer, { passive: true });
}

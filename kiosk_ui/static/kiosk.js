import { ApiError, api, clearError, el, showError } from "./api.js";
import { drawMap } from "./storemap.js";

// A kiosk is shared: forget the shopper after a while without a touch.
const IDLE_RESET_MS = 90_000;
let idleTimer;

function resetIdleTimer() {
  clearTimeout(idleTimer);
  idleTimer = setTimeout(reset, IDLE_RESET_MS);
}

function reset() {
  document.getElementById("shopper").hidden = true;
  document.getElementById("welcome").hidden = false;
  document.getElementById("done").hidden = true;
  document.getElementById("loyalty").value = "";
  clearError(document.getElementById("error"));
}

function formatDate(iso) {
  return new Date(iso).toLocaleDateString([], { weekday: "long", day: "numeric", month: "short" });
}

function renderList(items, stopFor) {
  document.getElementById("list").replaceChildren(...items.map((item) => el("li",
    { "data-product": item.product_id },
    el("span", {},
      stopFor[item.product_id] ? el("span", { class: "stop-number" }, `${stopFor[item.product_id]} `) : "",
      el("strong", {}, item.name),
      el("span", { class: "reason muted" }, item.reason),
      item.in_stock ? "" : el("span", { class: "reason" }, "Sold out on the shelf right now")),
    el("span", { class: `badge ${item.status === "urgent" ? "urgent" : "soon"}` },
      item.status === "urgent" ? "Due now" : `By ${formatDate(item.predicted_date)}`))));
  document.getElementById("list-empty").hidden = items.length > 0;
}

function renderRecommendations(items) {
  document.getElementById("recs").replaceChildren(...items.map((item) => el("li",
    { "data-product": item.product_id },
    el("span", {}, el("strong", {}, item.name), el("span", { class: "reason muted" }, item.reason)),
    item.price != null ? el("span", {}, `£${item.price.toFixed(2)}`) : "")));
}

async function showShopper(loyaltyNumber) {
  const error = document.getElementById("error");
  clearError(error);
  let customerId;
  try {
    ({ customer_id: customerId } = await api(
      `/v1/shoppers/lookup?loyalty_number=${encodeURIComponent(loyaltyNumber)}`));
  } catch (err) {
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
    const stopFor = {};
    for (const stop of route.stops) for (const item of stop.items) stopFor[item.item_id] = stop.number;
    renderList(list.items, stopFor);
    const listed = new Set(list.items.map((item) => item.product_id));
    renderRecommendations(recs.items.filter((item) => !listed.has(item.product_id)));
    drawMap(document.getElementById("map"), map, route);
    document.getElementById("route-summary").textContent = route.stops.length
      ? `${route.stops.length} stops · ${Math.round(route.distance_m)} m · about ${Math.max(1, Math.round(route.walking_time_s / 60))} min`
      : "Nothing to collect yet.";
    document.getElementById("welcome").hidden = true;
    document.getElementById("shopper").hidden = false;
    document.getElementById("done").hidden = false;
    resetIdleTimer();
  } catch (err) {
    showError(error, err.code === "consent_required"
      ? new ApiError("Personal lists are switched off for this card. You can switch them on at customer service.")
      : err);
  }
}

document.getElementById("lookup").addEventListener("submit", (event) => {
  event.preventDefault();
  showShopper(document.getElementById("loyalty").value.trim());
});
document.getElementById("done").addEventListener("click", reset);
document.addEventListener("pointerdown", resetIdleTimer);

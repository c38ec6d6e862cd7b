import { ApiError, api, clearError, el, showError, timeOfDay } from "./api.js";
import { drawMap } from "./storemap.js";

// Shelf sensors report within seconds; a handheld need not poll faster than that.
const REFRESH_MS = 3000;

async function refreshRestock() {
  const error = document.getElementById("error");
  try {
    const { alerts } = await api("/v1/staff/restock-alerts");
    const list = document.getElementById("restock");
    list.replaceChildren(...alerts.map((alert) => el("li", { "data-shelf": alert.shelf_id },
      el("span", {}, el("strong", {}, alert.name || alert.product_id), " ",
        el("span", { class: "muted" }, `shelf ${alert.shelf_id} · ${Math.round(alert.fill_ratio * 100)}% full`)),
      el("span", { class: `badge ${alert.severity}` }, alert.severity === "empty" ? "Empty" : "Low"))));
    document.getElementById("restock-empty").hidden = alerts.length > 0;
    document.getElementById("updated").textContent = `Updated ${timeOfDay()}`;
    clearError(error);
  } catch (err) {
    showError(error, err);
  }
}

refreshRestock();
setInterval(refreshRestock, REFRESH_MS);

async function assist(event) {
  event.preventDefault();
  const error = document.getElementById("assist-error");
  const details = document.getElementById("assist");
  details.hidden = true;
  clearError(error);
  const number = document.getElementById("assist-number").value.trim();
  try {
    const { customer_id: id } = await api(`/v1/shoppers/lookup?loyalty_number=${encodeURIComponent(number)}`);
    const insights = await api(`/v1/staff/shoppers/${encodeURIComponent(id)}/insights`);
    const rows = [
      ["Shopper", insights.segment ? `${insights.segment} shopper` : "new shopper"],
      ["Visits", insights.visits_per_week ? `${insights.visits_per_week} a week` : `${insights.visits} so far`],
      ["Usually buys", insights.favourite_categories.join(", ") || "—"],
      ["Diet", insights.dietary_restrictions.join(", ") || "none given"],
      ["Allergies", insights.allergens.join(", ") || "none given"],
    ];
    details.replaceChildren(...rows.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
    details.hidden = false;
  } catch (err) {
    const messages = {
      unknown_customer: "No shopper has that loyalty number.",
      consent_required: "This shopper hasn't agreed to staff assistance, so nothing is shown.",
    };
    showError(error, messages[err.code] ? new ApiError(messages[err.code]) : err);
  }
}

async function findItem(event) {
  event.preventDefault();
  const error = document.getElementById("find-error");
  clearError(error);
  const product = document.getElementById("find-product").value.trim();
  try {
    const [route, map] = await Promise.all([
      api("/v1/routes", { method: "POST", body: { product_ids: [product] } }),
      api("/v1/store/map"),
    ]);
    const result = document.getElementById("find-result");
    if (!route.stops.length) {
      result.textContent = route.not_found.length ? `Not in this store: ${route.not_found[0].reason}.` : "";
      document.getElementById("map").replaceChildren();
      return;
    }
    const stop = route.stops[0];
    result.textContent = `Shelf ${stop.shelves.join(", ")} — ${Math.round(route.distance_m)} m from the entrance to the tills.`;
    drawMap(document.getElementById("map"), map, route);
  } catch (err) {
    showError(error, err);
  }
}

document.getElementById("assist-form").addEventListener("submit", assist);
document.getElementById("find-form").addEventListener("submit", findItem);

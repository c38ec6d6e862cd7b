import { api, clearError, el, showError, timeOfDay } from "./api.js";

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

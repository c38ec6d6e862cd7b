import { ApiError, api, clearError, el, showError, timeOfDay } from "./api.js";
import { drawMap } from "./storemap.js";

// Shelf sensors report within seconds; a handheld need not poll faster than that.
const REFRESH_MS = 3000;
// Search results shown at once: more than a phone screen of them helps nobody.
const SEARCH_RESULTS = 8;
// The analysis card's next purchases: the soonest few are what a conversation can use.
const NEXT_PURCHASES_SHOWN = 5;

const $ = (id) => document.getElementById(id);

// --- sections: one tap apart -------------------------------------------------------------
function showTab(name) {
  document.body.dataset.tab = name;
  for (const tab of document.querySelectorAll(".tabs [role=tab]")) {
    tab.setAttribute("aria-selected", String(tab.dataset.tab === name));
  }
  window.scrollTo(0, 0);
}

for (const tab of document.querySelectorAll(".tabs [role=tab]")) {
  tab.addEventListener("click", () => showTab(tab.dataset.tab));
}

// --- restock alerts ----------------------------------------------------------------------
async function refreshRestock() {
  const error = $("error");
  try {
    const { alerts } = await api("/v1/staff/restock-alerts");
    $("restock").replaceChildren(...alerts.map((alert) => el("li", { "data-shelf": alert.shelf_id },
      el("span", {}, el("strong", {}, alert.name || alert.product_id),
        el("span", { class: "where muted" }, [
          alert.location || `Shelf ${alert.shelf_id}`,
          ...(alert.severity === "empty" ? [] : [`${Math.round(alert.fill_ratio * 100)}% full`]),
        ].join(" · "))),
      el("span", { class: `badge ${alert.severity}` }, alert.severity === "empty" ? "Empty" : "Low"))));
    $("restock-empty").hidden = alerts.length > 0;
    $("restock-count").textContent = alerts.length ? `(${alerts.length})` : "";
    $("updated").textContent = `Updated ${timeOfDay()}`;
    clearError(error);
  } catch (err) {
    showError(error, err);
  }
}

refreshRestock();
setInterval(refreshRestock, REFRESH_MS);

// --- help a shopper ----------------------------------------------------------------------
const percent = (value) => `${Math.round(value * 100)}%`;
const capitalised = (text) => text.charAt(0).toUpperCase() + text.slice(1);
const dayMonth = (isoDate) => new Date(`${isoDate}T00:00:00`).toLocaleDateString([], { day: "numeric", month: "short" });

// Where the analysis came from, said plainly: staff should know a model's guess from a rule's.
function analysisSource(analysis) {
  const when = new Date(analysis.created_at).toLocaleDateString([], { day: "numeric", month: "short" });
  const why = analysis.fallback_reason || "no reason given";
  // A fallback names the release of the chain's models it came from; without one, rules.
  const who = analysis.producer === "bedrock"
    ? `From the chain's analysis (Bedrock model ${analysis.model_id || "unnamed"})`
    : analysis.model_id
      ? `From the chain's models, release ${analysis.model_id} (Bedrock: ${why})`
      : `From simple rules on the shopper's history (Bedrock: ${why})`;
  return `${who}, ${when}`;
}

// Every text goes in as a text node (el): an analysis is data from outside this page.
function showAnalysis(analysis) {
  const card = $("assist-analysis");
  $("analysis-none").hidden = analysis !== null;
  card.hidden = analysis === null;
  if (analysis === null) return;
  card.dataset.producer = analysis.producer;
  $("analysis-source").textContent = analysisSource(analysis);
  const risk = analysis.churn_risk;
  const inferred = (items) => items.map((item) => item.label).join(", ") || "—";
  const facts = [
    ["Churn risk", el("span", { class: `badge risk-${risk.level}`, title: risk.reason },
      `${capitalised(risk.level)} (${percent(risk.probability)})`)],
    ["Value band", capitalised(analysis.value_band)],
    ["Household", inferred(analysis.household)],
    ["Lifestyle", inferred(analysis.lifestyle)],
  ];
  $("analysis-facts").replaceChildren(...facts.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
  const next = analysis.next_purchases.slice(0, NEXT_PURCHASES_SHOWN);
  $("analysis-next").replaceChildren(...(next.length ? next.map((item) => el("li", { "data-category": item.category },
    el("strong", {}, item.category), ` · ${dayMonth(item.next_purchase_date)} (${percent(item.confidence)} sure)`,
    el("span", { class: "reason muted" }, item.reason))) : [el("li", { class: "muted" }, "None predicted")]));
  const offers = analysis.opportunities;
  $("analysis-offers").replaceChildren(...(offers.length ? offers.map((item) => el("li", {},
    item.action, el("span", { class: "reason muted" },
      [item.category, `${percent(item.confidence)} sure`].filter(Boolean).join(" · ")))) : [el("li", { class: "muted" }, "Nothing in particular")]));
}

async function assist(event) {
  event.preventDefault();
  const error = $("assist-error");
  const details = $("assist");
  details.hidden = true;
  details.replaceChildren();
  $("assist-analysis").hidden = true;
  $("analysis-none").hidden = true;
  clearError(error);
  const number = $("assist-number").value.trim();
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
    showAnalysis(insights.analysis ?? null);
  } catch (err) {
    const messages = {
      unknown_customer: "No shopper has that loyalty number.",
      consent_required: "This shopper hasn't agreed to staff assistance, so nothing is shown.",
    };
    showError(error, messages[err.code] ? new ApiError(messages[err.code]) : err);
  }
}

// --- find an item: by name, category or code ---------------------------------------------
async function showWay(product) {
  const error = $("find-error");
  clearError(error);
  try {
    const [route, map] = await Promise.all([
      api("/v1/routes", { method: "POST", body: { product_ids: [product.product_id] } }),
      api("/v1/store/map"),
    ]);
    if (!route.stops.length) {
      $("find-result").textContent = `${product.name}: not on this store's map. ${route.not_found[0]?.reason || ""}`;
      $("map").replaceChildren();
      return;
    }
    const stop = route.stops[0];
    const where = stop.location ? `${stop.location} (shelf ${stop.shelves.join(", ")})` : `Shelf ${stop.shelves.join(", ")}`;
    $("find-result").textContent = `${product.name}: ${where}${product.in_stock ? "" : " — the shelf is empty"}`;
    drawMap($("map"), map, route);
  } catch (err) {
    showError(error, err);
  }
}

async function findItem(event) {
  event.preventDefault();
  const error = $("find-error");
  clearError(error);
  $("find-result").textContent = "";
  $("find-results").replaceChildren();
  $("map").replaceChildren();
  const query = $("find-product").value.trim();
  try {
    const { items } = await api(`/v1/products/search?q=${encodeURIComponent(query)}&limit=${SEARCH_RESULTS}`);
    if (!items.length) {
      $("find-result").textContent = `Nothing in this store matches “${query}”.`;
      return;
    }
    $("find-results").replaceChildren(...items.map((product) => el("li", {},
      el("button", { type: "button", "data-product": product.product_id },
        el("span", {}, el("strong", {}, product.name),
          el("span", { class: "where muted" }, product.location || product.category)),
        product.in_stock ? "" : el("span", { class: "badge empty" }, "Empty")))));
    for (const [i, button] of [...$("find-results").querySelectorAll("button")].entries()) {
      button.addEventListener("click", () => showWay(items[i]));
    }
    if (items.length === 1) showWay(items[0]);
  } catch (err) {
    showError(error, err);
  }
}

$("assist-form").addEventListener("submit", assist);
$("find-form").addEventListener("submit", findItem);

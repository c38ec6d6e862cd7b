// Shared by every page: the device's API key, calls to the agent, plain-language errors.
const KEY_STORAGE = "edge-agent-api-key";

export function apiKey() {
  // A device is provisioned once with ?key=...; the key then lives in its local storage.
  const fromUrl = new URLSearchParams(location.search).get("key");
  if (fromUrl) {
    localStorage.setItem(KEY_STORAGE, fromUrl);
  }
  return localStorage.getItem(KEY_STORAGE);
}

export class ApiError extends Error {
  constructor(message, status = 0, code = "") {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const MESSAGES = {
  401: "This screen is not signed in to the store system. Please ask a member of staff.",
  403: "This screen is not allowed to show that. Please ask a member of staff.",
  503: "The store system is busy starting up. Please try again in a moment.",
};

export async function api(path, { method = "GET", body } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: {
        "X-API-Key": apiKey() || "",
        ...(body ? { "Content-Type": "application/json" } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch {
    throw new ApiError("The store system can't be reached right now. Please try again in a moment.");
  }
  if (response.ok) {
    return response.status === 204 ? null : response.json();
  }
  let detail = "";
  let code = "";
  try {
    const data = await response.json();
    detail = data?.error?.message || "";
    code = data?.error?.code || "";
  } catch {
    // not JSON: keep the generic message
  }
  const message = MESSAGES[response.status] || detail || `Something went wrong (${response.status}).`;
  throw new ApiError(message, response.status, code);
}

// This screen's id in feedback events: kept in local storage, made once per device.
const DEVICE_STORAGE = "edge-agent-device-id";

function deviceId() {
  try {
    let id = localStorage.getItem(DEVICE_STORAGE);
    if (!id) {
      id = `screen-${Math.random().toString(16).slice(2, 14)}`;
      localStorage.setItem(DEVICE_STORAGE, id);
    }
    return id;
  } catch {
    return "screen-unknown"; // storage switched off: feedback still counts
  }
}

// Tells the store what a shopper saw or tapped (impression, click, ...), for attribution and
// a model release's click-through. Fire and forget: a failure must never reach the shopper.
export function sendFeedback(action, item, customerId, context) {
  const body = {
    device_id: deviceId(), action, product_id: item.product_id, context,
    customer_id: customerId || null, model_version: item.model_version ?? null,
  };
  api("/v1/feedback", { method: "POST", body }).catch(() => {});
}

export function showError(element, error) {
  element.textContent = error instanceof ApiError ? error.message : "Something went wrong. Please try again.";
  element.hidden = false;
}

export function clearError(element) {
  element.textContent = "";
  element.hidden = true;
}

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function timeOfDay(date = new Date()) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

// "1 stop", "3 stops", "0 stops".
export function plural(count, singular, pluralForm = `${singular}s`) {
  return `${count} ${count === 1 ? singular : pluralForm}`;
}

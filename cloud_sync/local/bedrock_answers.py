"""What the local Bedrock double answers, shared by its Converse (`bedrock_double`) and
batch (`bedrock_batch_double`) halves: token counts, the errors it can play, a valid answer
built from the shopper summary in the prompt, and a malformed one."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

BYTES_PER_TOKEN = 4  # the usual rule of thumb for English and JSON
ERRORS = {  # behaviour -> (status, error code, message)
    "throttled": (429, "ThrottlingException", "Too many requests, please wait."),
    "not_ready": (429, "ModelNotReadyException", "Model is not ready."),
    "timeout": (408, "ModelTimeoutException", "Model has timed out."),
    "failing": (424, "ModelErrorException", "The model returned an error."),
    "unavailable": (503, "ServiceUnavailableException", "Service unavailable."),
}
ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.bedrock/"


def tokens(text: str) -> int:
    return max(1, len(text.encode()) // BYTES_PER_TOKEN)


def summary_in(request: dict[str, Any]) -> Any:
    """The shopper summary in the user message (after its first line), or {}."""
    for message in request.get("messages", []):
        for block in message.get("content", []):
            text = block.get("text", "")
            if "\n" in text:
                try:
                    return json.loads(text.split("\n", 1)[1])
                except ValueError:
                    return {}
    return {}


def valid_answer(summary: dict[str, Any]) -> dict[str, Any]:
    as_of = date.fromisoformat(summary.get("as_of") or date.today().isoformat())
    forecasts = []
    for c in summary.get("categories", []):
        gap = c.get("median_gap_days")
        if gap:
            due = max(1, round(gap - c["last_purchase_days_ago"]))
            forecasts.append({"category": c["category"], "confidence": 0.7,
                              "next_purchase_date": (as_of + timedelta(days=due)).isoformat(),
                              "reason": f"Bought about every {gap:g} days."})
    inference = {"label": "regular weekly shopper", "confidence": 0.6,
                 "reason": "Visits follow a steady weekly pattern."}
    return {"forecasts": forecasts, "household": [inference], "lifestyle": [inference],
            "churn_risk": {"level": "low", "probability": 0.1, "reason": "Visited recently."},
            "value_band": "medium",
            "opportunities": [{"category": f["category"], "confidence": 0.5,
                               "action": "Suggest it on the shopping list."}
                              for f in forecasts[:2]]}


def malformed_answer() -> dict[str, Any]:
    return {"forecasts": [{"category": "Milk", "next_purchase_date": "soon",
                           "confidence": 1.7, "reason": "x" * 500}],
            "household": "families", "value_band": "platinum"}

"""The privacy guard: every Bedrock request is built from an allow-list of summary fields,
and checked again, whole, just before it is sent.

What may leave for Bedrock: numbers within a plausible range, catalog category names, a few
fixed words (weekday, hour band), the summary's date and the shopper's pseudonym. Anything
else — a name, a loyalty number, an e-mail, free text, a key the list does not know, an
over-long string, a number out of range — is refused with a `GuardError` naming the field.
The payload is built field by field from the list, never by dumping an object, so a field
added to the summary later stays at home until someone adds it here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from cloud_sync.analysis.schema import TOOL_NAME, invoke_tool, tool_config
from cloud_sync.analysis.summary import HOUR_BANDS, WEEKDAYS, ShopperSummary
from cloud_sync.link.privacy import PSEUDONYM_HEX_CHARS
from models.datasets.lake import UNKNOWN_CATEGORY

SYSTEM_PROMPT = """You analyse one supermarket shopper from a pseudonymous summary of their \
purchase history. You never learn who they are and must not guess identities.
The summary gives, per product category: purchases (baskets holding it), median_gap_days \
between purchases, gap_variation (std/mean of the gaps, 0 = clockwork), \
last_purchase_days_ago, units_total and spend_total; the visit pattern; household signals \
(basket size, weekly spend); visits.median_gap_days is the usual gap between visits; \
as_of is the date of the summary.
Answer only by calling the tool, with:
- forecasts: for each category bought at least twice, the next purchase date (ISO date, \
after as_of), a confidence in [0, 1] (regular, frequent rhythms earn more), a short reason \
and, when the rhythm allows, a window (window_start, window_end) holding that date;
- household and lifestyle: a few inferences (e.g. "family with young children", \
"cooks from scratch"), each with a confidence and a short reason from the numbers;
- churn_risk: low, medium or high with a probability, judged from the time since the last \
visit against the shopper's usual rhythm;
- value_band: low, medium, high or top, from weekly spend;
- opportunities: a few personalization ideas tied to categories.
Reasons are one short sentence citing the numbers. Do not invent categories."""
USER_PREFIX = "Shopper summary (JSON):\n"
MAX_TOKENS = 2_000
ANTHROPIC_VERSION = "bedrock-2023-05-31"  # what InvokeModel's Anthropic body must name

PSEUDONYM = re.compile(rf"^[0-9a-f]{{{PSEUDONYM_HEX_CHARS}}}$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CATEGORY_MAX = 80
# Catalog names are words (and the punctuation real catalogs use, e.g. Complete Journey's
# "DINNER MXS:DRY"); a long digit run or an @ in one is a number or an address that slipped
# into master data, and goes nowhere.
CATEGORY_PATTERN = re.compile(r"^[\w][\w &,/().:'+-]*$")
SUSPICIOUS = re.compile(r"@|\d{5,}")
# Upper bounds of the numeric fields: far above any shopper, low enough that a card or
# phone number put in a numeric field is refused, not sent.
COUNT_MAX = 100_000
MONEY_MAX = 10_000_000.0
DAYS_MAX = 36_600.0


class GuardError(ValueError):
    """A request for Bedrock carried something the allow-list does not allow."""

    def __init__(self, path: str, why: str) -> None:
        self.path = path
        super().__init__(f"refused: {path or 'request'}: {why}")


Check = Callable[[Any, str], None]


def _number(upper: float, *, nullable: bool = False) -> Check:
    def check(value: Any, path: str) -> None:
        if value is None and nullable:
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise GuardError(path, f"expected a number, got {type(value).__name__}")
        if not math.isfinite(value) or not 0 <= value <= upper:
            raise GuardError(path, f"number out of range [0, {upper:g}]")
    return check


def _word(words: Iterable[str]) -> Check:
    allowed = frozenset(words)

    def check(value: Any, path: str) -> None:
        if value not in allowed:
            raise GuardError(path, "not one of the allowed words")
    return check


def _pattern(regex: re.Pattern[str], what: str) -> Check:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, str) or not regex.match(value):
            raise GuardError(path, f"not {what}")
    return check


COUNT, MONEY, DAYS = _number(COUNT_MAX), _number(MONEY_MAX), _number(DAYS_MAX)
RATIO = _number(COUNT_MAX, nullable=True)  # a share, a variation (may exceed 1)
CATEGORY_FIELDS: dict[str, Check] = {
    "category": lambda v, p: None,  # checked against the taxonomy in `check_payload`
    "purchases": COUNT, "median_gap_days": _number(DAYS_MAX, nullable=True),
    "gap_variation": RATIO, "last_purchase_days_ago": DAYS, "units_total": MONEY,
    "spend_total": MONEY}
VISIT_FIELDS: dict[str, Check] = {
    "visits": COUNT, "visits_per_week": COUNT, "median_gap_days": _number(DAYS_MAX, nullable=True),
    "days_since_last_visit": DAYS,
    "usual_weekday": _word(WEEKDAYS), "usual_weekday_share": RATIO,
    "usual_hour_band": _word(band for _, band in HOUR_BANDS), "usual_hour_band_share": RATIO}
HOUSEHOLD_FIELDS: dict[str, Check] = {
    "mean_items_per_basket": COUNT, "mean_units_per_basket": MONEY,
    "mean_spend_per_basket": MONEY, "weekly_spend": MONEY, "distinct_categories": COUNT}
TOP_FIELDS: dict[str, Check] = {
    "shopper_id": _pattern(PSEUDONYM, "a pseudonym"), "as_of": _pattern(ISO_DATE, "a date"),
    "history_days": DAYS, "total_spend": MONEY}
SECTIONS = {"visits": VISIT_FIELDS, "household": HOUSEHOLD_FIELDS}


def build_payload(summary: ShopperSummary) -> dict[str, Any]:
    """The summary as the model sees it: the allow-listed fields, picked one by one."""
    data = summary.model_dump(mode="json")
    payload: dict[str, Any] = {name: data[name] for name in TOP_FIELDS}
    for section, fields in SECTIONS.items():
        payload[section] = {name: data[section][name] for name in fields}
    payload["categories"] = [{name: c[name] for name in CATEGORY_FIELDS}
                             for c in data["categories"]]
    return payload


def check_payload(payload: Any, taxonomy: frozenset[str]) -> None:
    """Raise GuardError unless every key is on the allow-list and every value fits it."""
    _check_fields(payload, TOP_FIELDS.keys() | SECTIONS.keys() | {"categories"}, "")
    for name, check in TOP_FIELDS.items():
        check(payload[name], name)
    for section, fields in SECTIONS.items():
        _check_fields(payload[section], fields.keys(), section)
        for name, check in fields.items():
            check(payload[section][name], f"{section}.{name}")
    if not isinstance(payload["categories"], list):
        raise GuardError("categories", "expected a list")
    for i, entry in enumerate(payload["categories"]):
        path = f"categories[{i}]"
        _check_fields(entry, CATEGORY_FIELDS.keys(), path)
        check_category(entry["category"], taxonomy, f"{path}.category")
        for name, check in CATEGORY_FIELDS.items():
            check(entry[name], f"{path}.{name}")


def check_category(value: Any, taxonomy: frozenset[str], path: str) -> None:
    if not isinstance(value, str) or not value:
        raise GuardError(path, "expected a category name")
    if len(value) > CATEGORY_MAX:
        raise GuardError(path, f"longer than {CATEGORY_MAX} characters")
    if value not in taxonomy and value != UNKNOWN_CATEGORY:
        raise GuardError(path, "not a category of the catalog")
    if not CATEGORY_PATTERN.match(value) or SUSPICIOUS.search(value):
        raise GuardError(path, "does not look like a category name")


def _check_fields(value: Any, allowed: Iterable[str], path: str) -> None:
    if not isinstance(value, Mapping):
        raise GuardError(path, "expected an object")
    allowed = set(allowed)
    unknown = sorted(set(value) - allowed, key=str)
    if unknown:
        # The key's name may itself be personal: say how many, not which.
        raise GuardError(path, f"{len(unknown)} key(s) not on the allow-list")
    missing = sorted(allowed - set(value))
    if missing:
        raise GuardError(path, f"missing {', '.join(missing)}")


def build_request(summary: ShopperSummary, taxonomy: frozenset[str], model_id: str
                  ) -> dict[str, Any]:
    """Converse's keyword arguments for one shopper, checked by `check_request`."""
    payload = build_payload(summary)
    check_payload(payload, taxonomy)
    request = {
        "modelId": model_id,
        # The cache point ends the prefix every shopper shares (tools, then system), so
        # from the second call on it is read from the cache at a tenth of the price.
        "system": [{"text": SYSTEM_PROMPT}, {"cachePoint": {"type": "default"}}],
        "messages": [{"role": "user", "content": [{"text": _user_text(payload)}]}],
        "toolConfig": tool_config(),
        "inferenceConfig": {"maxTokens": MAX_TOKENS, "temperature": 0.0},
    }
    check_request(request, taxonomy)
    return request


def check_request(request: Mapping[str, Any], taxonomy: frozenset[str]) -> None:
    """The whole request, as it will be sent: fixed parts unchanged, one user message
    holding exactly a checked payload. The last gate before the network."""
    expected = {"modelId", "system", "messages", "toolConfig", "inferenceConfig"}
    if set(request) != expected:
        raise GuardError("", "unexpected request keys")
    if request["system"] != [{"text": SYSTEM_PROMPT}, {"cachePoint": {"type": "default"}}]:
        raise GuardError("system", "not the fixed system prompt")
    if request["toolConfig"] != tool_config():
        raise GuardError("toolConfig", "not the fixed tool")
    if request["inferenceConfig"] != {"maxTokens": MAX_TOKENS, "temperature": 0.0}:
        raise GuardError("inferenceConfig", "not the fixed inference settings")
    _check_messages(request["messages"], {"text": None}, taxonomy)


def _check_messages(messages: Any, block_shape: Mapping[str, str | None],
                    taxonomy: frozenset[str]) -> None:
    """One user message holding one block of `block_shape`'s keys (a value other than None
    is required as is), whose text is a checked summary: Converse and InvokeModel alike."""
    if (not isinstance(messages, list) or len(messages) != 1
            or not isinstance(messages[0], Mapping) or set(messages[0]) != {"role", "content"}
            or messages[0]["role"] != "user" or not isinstance(messages[0]["content"], list)
            or len(messages[0]["content"]) != 1):
        raise GuardError("messages", "expected one user message with one block")
    block = messages[0]["content"][0]
    if not isinstance(block, Mapping) or set(block) != set(block_shape) or any(
            fixed is not None and block[key] != fixed for key, fixed in block_shape.items()):
        raise GuardError("messages", "expected the summary text block")
    _check_text(block["text"], taxonomy)


def _user_text(payload: Mapping[str, Any]) -> str:
    return USER_PREFIX + json.dumps(payload, separators=(",", ":"))


def _check_text(text: Any, taxonomy: frozenset[str]) -> None:
    if not isinstance(text, str) or not text.startswith(USER_PREFIX):
        raise GuardError("messages", "expected the summary text block")
    try:
        payload = json.loads(text[len(USER_PREFIX):])
    except ValueError as exc:
        raise GuardError("messages", "the summary is not JSON") from exc
    check_payload(payload, taxonomy)


# ------------------------------------------------------- batch inference (InvokeModel)
def _invoke_fixed() -> dict[str, Any]:
    """Every part of an InvokeModel body but the message: the same prompt, tool and limits
    as Converse, in Anthropic's Messages format, the tool forced."""
    return {"anthropic_version": ANTHROPIC_VERSION, "max_tokens": MAX_TOKENS,
            "temperature": 0.0, "system": SYSTEM_PROMPT, "tools": [invoke_tool()],
            "tool_choice": {"type": "tool", "name": TOOL_NAME}}


def build_invoke_body(summary: ShopperSummary, taxonomy: frozenset[str]) -> dict[str, Any]:
    """A batch record's `modelInput` for one shopper, from the same allow-listed payload as
    Converse, checked by `check_invoke_body`."""
    payload = build_payload(summary)
    check_payload(payload, taxonomy)
    body = {**_invoke_fixed(), "messages": [
        {"role": "user", "content": [{"type": "text", "text": _user_text(payload)}]}]}
    check_invoke_body(body, taxonomy)
    return body


def check_invoke_body(body: Mapping[str, Any], taxonomy: frozenset[str]) -> None:
    """The whole model input, as it will be written to S3: the last gate before upload."""
    fixed = _invoke_fixed()
    if set(body) != fixed.keys() | {"messages"}:
        raise GuardError("", "unexpected model input keys")
    for key, value in fixed.items():
        if body[key] != value:
            raise GuardError(key, "not the fixed value")
    _check_messages(body["messages"], {"type": "text", "text": None}, taxonomy)

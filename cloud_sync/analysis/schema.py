"""What an analysis says about one shopper: the pydantic models the Bedrock tool's JSON
schema is generated from, and the same models the answer is validated against, so the
schema the model is forced into and the check on its answer cannot drift apart.

Every free-text field is short and bounded: a reason is a sentence a member of staff reads,
not an essay, and a bound stops a runaway answer from filling the store's pages.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TOOL_NAME = "record_shopper_analysis"
TOOL_DESCRIPTION = ("Record the analysis of one shopper's pseudonymous purchase summary: "
                    "per category the next purchase date, household and lifestyle "
                    "inferences, churn risk, value band and personalization opportunities.")
REASON_MAX = 200
LABEL_MAX = 60
# A shopper buys from a few dozen categories at most; more forecasts would be noise.
FORECASTS_MAX = 60
INFERENCES_MAX = 6
OPPORTUNITIES_MAX = 6

Confidence = Annotated[float, Field(ge=0.0, le=1.0)]
Reason = Annotated[str, Field(min_length=1, max_length=REASON_MAX)]
Label = Annotated[str, Field(min_length=1, max_length=LABEL_MAX)]
ValueBand = Literal["low", "medium", "high", "top"]
RiskLevel = Literal["low", "medium", "high"]
Producer = Literal["bedrock", "fallback"]
Arm = Literal["A", "B"]  # the A/B arm of analysis models (ab.py)
Mode = Literal["on-demand", "batch"]
FallbackReason = Literal["not configured", "failed", "malformed", "budget", "circuit open",
                         "refused"]


class _Strict(BaseModel):
    # An answer with keys the schema does not name is malformed, not silently trimmed.
    model_config = ConfigDict(extra="forbid", frozen=True)


class CategoryForecast(_Strict):
    category: Annotated[str, Field(min_length=1, max_length=80)]
    next_purchase_date: date
    confidence: Confidence
    reason: Reason
    # An optional window the purchase should fall in: scored for coverage (accuracy.py).
    window_start: date | None = None
    window_end: date | None = None

    @model_validator(mode="after")
    def _window_holds_the_date(self) -> CategoryForecast:
        start = self.window_start or self.next_purchase_date
        end = self.window_end or self.next_purchase_date
        if not start <= self.next_purchase_date <= end:
            raise ValueError("the window must hold the next purchase date")
        return self


class Inference(_Strict):
    label: Label
    confidence: Confidence
    reason: Reason


class ChurnRisk(_Strict):
    level: RiskLevel
    probability: Confidence
    reason: Reason


class Opportunity(_Strict):
    category: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    action: Reason
    confidence: Confidence


class ShopperAnalysis(_Strict):
    """The tool's input: what the model must return, and what the fallback returns too."""

    forecasts: Annotated[list[CategoryForecast], Field(max_length=FORECASTS_MAX)]
    household: Annotated[list[Inference], Field(max_length=INFERENCES_MAX)]
    lifestyle: Annotated[list[Inference], Field(max_length=INFERENCES_MAX)]
    churn_risk: ChurnRisk
    value_band: ValueBand
    opportunities: Annotated[list[Opportunity], Field(max_length=OPPORTUNITIES_MAX)]


class Cost(BaseModel):
    model_config = ConfigDict(frozen=True)

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    dollars: float = 0.0
    calls: int = 0


class AnalysisResult(BaseModel):
    """One analysis as stored and sent on: always says who produced it, and why a fallback."""

    model_config = ConfigDict(frozen=True)

    shopper_id: str
    producer: Producer
    # The Bedrock model (inference profile) that answered; for a fallback, the version of
    # the release bundle whose models answered (None: the rules did).
    model_id: str | None = None
    fallback_reason: FallbackReason | None = None
    detail: str | None = None  # the error behind a fallback, for operators (no shopper data)
    analysis: ShopperAnalysis
    cost: Cost = Cost()
    summary_digest: str
    created_at: datetime
    latency_ms: float | None = None
    # The summary's date: the predictions are scored against purchases after it.
    as_of: date | None = None
    arm: Arm | None = None  # the shopper's A/B arm, when an A/B runs (ab.py)
    mode: Mode = "on-demand"  # how Bedrock was asked (batch is half the price)

    @property
    def producer_key(self) -> str:
        """Who made the predictions: the Bedrock model id, `fallback models VERSION` (the
        release bundle's models) or `fallback` (the rules)."""
        if self.producer == "bedrock" and self.model_id:
            return self.model_id
        return f"fallback models {self.model_id}" if self.model_id else "fallback"


def tool_spec() -> dict[str, Any]:
    """The Converse `tools` entry whose input schema is ShopperAnalysis's JSON schema."""
    return {"toolSpec": {"name": TOOL_NAME, "description": TOOL_DESCRIPTION,
                         "inputSchema": {"json": ShopperAnalysis.model_json_schema()}}}


def invoke_tool() -> dict[str, Any]:
    """The same tool in Anthropic's Messages format (InvokeModel, as batch inference takes)."""
    return {"name": TOOL_NAME, "description": TOOL_DESCRIPTION,
            "input_schema": ShopperAnalysis.model_json_schema()}


def tool_config() -> dict[str, Any]:
    """Tools plus a forced choice: the model must answer through this one tool."""
    return {"tools": [tool_spec()], "toolChoice": {"tool": {"name": TOOL_NAME}}}

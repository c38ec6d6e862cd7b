"""One shopper's analysis through Bedrock's Converse API, with every way out covered.

The request comes from the privacy guard only; the model must answer through the forced
tool, and its input is validated with pydantic. Around the call: botocore's standard retries
(throttling, 5xx, model not ready), one retry of our own for a model timeout or model error,
a limit on calls in flight, a circuit breaker, the daily budget, and a second try for a
malformed answer. Whatever fails, the shopper gets the fallback analysis, saying why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from cloud_sync.analysis.ab import ABConfig
from cloud_sync.analysis.breaker import CircuitBreaker
from cloud_sync.analysis.cost import DailyBudget, add_costs, cost_of
from cloud_sync.analysis.fallback import ValueBands, fallback_result
from cloud_sync.analysis.guard import GuardError, build_request, check_request
from cloud_sync.analysis.history import AnalysisHistory
from cloud_sync.analysis.schema import (
    TOOL_NAME,
    AnalysisResult,
    Arm,
    Cost,
    FallbackReason,
    ShopperAnalysis,
)
from cloud_sync.analysis.settings import AnalysisSettings
from cloud_sync.analysis.summary import ShopperSummary, summary_digest

if TYPE_CHECKING:
    from cloud_sync.analysis.model_fallback import ModelFallback

logger = logging.getLogger(__name__)

# Errors the model itself may not repeat on a second try; botocore does not retry them.
OWN_RETRY_CODES = frozenset({"ModelTimeoutException", "ModelErrorException"})
# Answers per shopper: the first, and one more when it was malformed.
ANSWER_TRIES = 2


class AnswerError(ValueError):
    """The model answered, but not with a valid tool call."""


class Analyst:
    """Analyses shoppers; thread-safe, so `analyze_all` runs several at once."""

    def __init__(self, settings: AnalysisSettings, taxonomy: Iterable[str], *,
                 budget: DailyBudget | None = None, history: AnalysisHistory | None = None,
                 bands: ValueBands | None = None, client: Any = None,
                 arms: ABConfig | None = None, models: ModelFallback | None = None) -> None:
        # `models`: the release bundle's models answer the fallback (else the rules do).
        self.settings, self.bands, self.models = settings, bands, models
        self.arms = arms if arms is not None else settings.ab
        self.taxonomy = frozenset(taxonomy)
        self.budget = budget or DailyBudget(settings.state_dir / "budget.sqlite",
                                            settings.costs.daily_budget_usd)
        self.history = history or AnalysisHistory(settings.state_dir / "history.sqlite")
        b = settings.bedrock
        self.breaker = CircuitBreaker(b.breaker_threshold, b.breaker_cooldown_s)
        self._slots = threading.BoundedSemaphore(b.concurrency)
        self._client = client
        self._client_lock = threading.Lock()
        self._configured: tuple[bool, str] | None = None
        for model in {b.model_id, *(arms.models() if arms else ())}:
            settings.costs.price(model)  # fail fast on an unpriced model

    def model_for(self, shopper_id: str) -> tuple[str, Arm | None]:
        """The model that analyses this shopper, and its A/B arm when an A/B runs."""
        if self.arms is None:
            return self.settings.bedrock.model_id, None
        arm = self.arms.assign(shopper_id)
        return self.arms.model(arm), arm

    # -------------------------------------------------------------- configuration
    def configured(self) -> tuple[bool, str]:
        """Is there a Bedrock to call? (answer, why not). Looked up once: the credential
        chain may ask the instance metadata service, which takes seconds off EC2."""
        if self._configured is None:
            b = self.settings.bedrock
            if not b.enabled:
                self._configured = (False, "Bedrock turned off for this run")
            elif (b.access_key_id and b.secret_access_key) or (
                    boto3.session.Session().get_credentials() is not None):
                self._configured = (True, "")
            else:
                where = f"endpoint {b.endpoint_url}" if b.endpoint_url else "no endpoint"
                self._configured = (False, f"no AWS credentials ({where})")
        return self._configured

    def client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                b = self.settings.bedrock
                # total_max_attempts counts the first call (`max_attempts` would not).
                retries = {"mode": "standard", "total_max_attempts": b.max_attempts}
                config = Config(retries=retries,  # type: ignore[arg-type]
                                connect_timeout=b.connect_timeout_s,
                                read_timeout=b.read_timeout_s,
                                max_pool_connections=max(10, b.concurrency))
                self._client = boto3.session.Session().client(
                    "bedrock-runtime", region_name=b.region, endpoint_url=b.endpoint_url,
                    aws_access_key_id=b.access_key_id,
                    aws_secret_access_key=b.secret_access_key, config=config)
            return self._client

    # -------------------------------------------------------------------- analysis
    def analyze_all(self, summaries: Iterable[ShopperSummary]) -> list[AnalysisResult]:
        with ThreadPoolExecutor(max_workers=self.settings.bedrock.concurrency) as pool:
            return list(pool.map(self.analyze, summaries))

    def analyze(self, summary: ShopperSummary) -> AnalysisResult:
        """The shopper's analysis: reused when the summary has not changed materially since
        the last Bedrock one, else asked for (or the fallback, saying why). Stored."""
        last = self.reusable(summary)
        if last is not None:
            return last
        result = self._analyze(summary)
        self.history.save(result)
        return result

    def reusable(self, summary: ShopperSummary) -> AnalysisResult | None:
        """The last Bedrock analysis, when the summary has not changed materially since."""
        last = self.history.latest(summary.shopper_id, producer="bedrock")
        if last is not None and last.summary_digest == summary_digest(summary):
            logger.info("shopper %s unchanged since %s: not re-analysed",
                        summary.shopper_id, last.created_at.isoformat())
            return last
        return None

    def fallback(self, summary: ShopperSummary, reason: FallbackReason, detail: str = "",
                 cost: Cost | None = None) -> AnalysisResult:
        logger.info("shopper %s: fallback (%s) %s", summary.shopper_id, reason, detail)
        return fallback_result(summary, reason, detail=detail or None, bands=self.bands,
                               cost=cost, arm=self.model_for(summary.shopper_id)[1],
                               models=self.models)

    def _analyze(self, summary: ShopperSummary) -> AnalysisResult:
        model_id, arm = self.model_for(summary.shopper_id)
        try:
            request = build_request(summary, self.taxonomy, model_id)
        except GuardError as exc:
            logger.warning("request for shopper %s refused: %s", summary.shopper_id, exc)
            return self.fallback(summary, "refused", str(exc))
        ok, why = self.configured()
        if not ok:
            return self.fallback(summary, "not configured", why)
        spent, detail = Cost(), ""
        for _ in range(ANSWER_TRIES):
            if not self.budget.allows():
                return self.fallback(summary, "budget",
                                      f"daily budget ${self.budget.limit_usd:g} spent", spent)
            if not self.breaker.allow():
                return self.fallback(summary, "circuit open", "Bedrock failing", spent)
            started = time.perf_counter()
            try:
                response = self._converse(request)
            except (ClientError, BotoCoreError) as exc:
                self.breaker.failure()
                return self.fallback(summary, "failed", _describe(exc), spent)
            self.breaker.success()
            cost = cost_of(response.get("usage", {}), model_id, self.settings.costs)
            self.budget.record(cost.dollars)
            spent = add_costs(spent, cost)
            try:
                analysis = parse_answer(response, summary)
            except AnswerError as exc:
                detail = str(exc)
                logger.warning("shopper %s: malformed answer: %s", summary.shopper_id, detail)
                continue
            return AnalysisResult(
                shopper_id=summary.shopper_id, producer="bedrock", model_id=model_id,
                analysis=analysis, cost=spent, summary_digest=summary_digest(summary),
                created_at=datetime.now(UTC), as_of=summary.as_of, arm=arm,
                latency_ms=round(1000 * (time.perf_counter() - started), 1))
        return self.fallback(summary, "malformed", detail, spent)

    def _converse(self, request: dict[str, Any]) -> dict[str, Any]:
        check_request(request, self.taxonomy)  # the last gate before the network
        for attempt in (1, 2):
            with self._slots:
                try:
                    return dict(self.client().converse(**request))
                except ClientError as exc:
                    code = exc.response.get("Error", {}).get("Code")
                    if attempt == 1 and code in OWN_RETRY_CODES:
                        logger.info("Bedrock %s: trying once more", code)
                        continue
                    raise
        raise AssertionError("unreachable")  # the loop returns or raises


def parse_answer(response: dict[str, Any], summary: ShopperSummary) -> ShopperAnalysis:
    """The forced tool's input of a Converse answer, validated; AnswerError says why not."""
    content = response.get("output", {}).get("message", {}).get("content", [])
    uses = [b["toolUse"] for b in content if "toolUse" in b]
    tool = next((u for u in uses if u.get("name") == TOOL_NAME), None)
    if tool is None:
        raise AnswerError(f"no {TOOL_NAME} tool call (stop reason "
                          f"{response.get('stopReason')})")
    return validate_tool_input(tool.get("input"), summary)


def validate_tool_input(tool_input: Any, summary: ShopperSummary) -> ShopperAnalysis:
    """The tool's input checked against the schema and the summary (both call paths)."""
    try:
        analysis = ShopperAnalysis.model_validate(tool_input)
    except ValidationError as exc:
        raise AnswerError(f"{exc.error_count()} schema error(s): "
                          + "; ".join(_where(e) for e in exc.errors()[:5])) from None
    known = {c.category for c in summary.categories}
    invented = sorted({f.category for f in analysis.forecasts} - known)
    if invented:
        raise AnswerError(f"forecasts for {len(invented)} category(ies) not in the summary")
    if any(f.next_purchase_date < summary.as_of for f in analysis.forecasts):
        raise AnswerError("a next purchase date before the summary's date")
    return analysis


def _where(error: Any) -> str:
    return f"{'.'.join(str(p) for p in error['loc']) or 'input'}: {error['msg']}"


def _describe(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code')}: {error.get('Message')}"
    return f"{type(exc).__name__}: {exc}"

"""A/B of the analysis models: which shopper each model analyses, how each arm did, and the
rule that names a winner.

Assignment: a salted SHA-256 of the pseudonym, read as a number in [0, 1), below `share_b`
is arm B: deterministic (a shopper stays in one arm across nights and workers), independent
of anything about the shopper, and changing the salt reshuffles everyone for a new test.

Per arm, from the stored analyses (history.py keeps each one's arm) and their prediction
scores (accuracy.py): analyses, Bedrock success rate, schema failures (malformed twice),
latency of on-demand calls, dollars per shopper, and accuracy (share within ±2 days, days
off). Tests: a two-proportion z-test on success and on within-±2; Mann–Whitney U on the
absolute days off. Predictions of one shopper are not independent: the tests on predictions
overstate the evidence somewhat, which the rule's α and minimum sample temper.

The rule (`decide`): the dearer arm (more dollars per shopper) wins only if (1) both arms
have at least `min_scored` scored predictions, (2) its within-±2 share is higher with
p < α, (3) its success rate is not significantly lower, and (4) its dollars per shopper are
within `max_cost_per_shopper_usd`. Otherwise the cheaper arm, with the reason.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from statistics import median
from typing import Any

from scipy.stats import mannwhitneyu

from cloud_sync.analysis.accuracy import AccuracyStats, Score, accuracy_stats
from cloud_sync.analysis.cost import HAIKU_4_5, SONNET_4_5
from cloud_sync.analysis.schema import AnalysisResult, Arm

ARMS: tuple[Arm, Arm] = ("A", "B")
HASH_SPACE = 2 ** 64
ALPHA = 0.05
# Below this many scored predictions an arm's accuracy is too noisy to pick a winner on.
MIN_SCORED = 30
# The target for a shopper's analysis (batch); the dearer arm must stay within it.
MAX_COST_PER_SHOPPER_USD = 0.01


@dataclass(frozen=True)
class ABConfig:
    model_a: str = HAIKU_4_5
    model_b: str = SONNET_4_5
    share_b: float = 0.5
    salt: str = "analysis-ab-1"

    def __post_init__(self) -> None:
        if not 0.0 <= self.share_b <= 1.0:
            raise ValueError(f"A/B share of arm B must be in [0, 1], not {self.share_b}")

    def assign(self, shopper_id: str) -> Arm:
        digest = hashlib.sha256(f"{self.salt}:{shopper_id}".encode()).digest()
        return "B" if int.from_bytes(digest[:8], "big") / HASH_SPACE < self.share_b else "A"

    def model(self, arm: Arm) -> str:
        return self.model_a if arm == "A" else self.model_b

    def models(self) -> tuple[str, str]:
        return self.model_a, self.model_b


@dataclass(frozen=True)
class ArmReport:
    arm: str
    analyses: int
    bedrock: int
    success_rate: float | None
    schema_failures: int
    median_latency_ms: float | None  # on-demand calls only (a batch record has none)
    dollars: float
    dollars_per_shopper: float | None
    accuracy: AccuracyStats


@dataclass(frozen=True)
class Test:
    name: str
    statistic: float | None
    p_value: float | None


def arm_report(arm: str, results: Sequence[AnalysisResult], scores: Sequence[Score]
               ) -> ArmReport:
    ok = [r for r in results if r.producer == "bedrock"]
    latencies = [r.latency_ms for r in ok if r.latency_ms is not None]
    dollars = sum(r.cost.dollars for r in results)
    shoppers = len({r.shopper_id for r in results})
    return ArmReport(
        arm=arm, analyses=len(results), bedrock=len(ok),
        success_rate=round(len(ok) / len(results), 4) if results else None,
        schema_failures=sum(r.fallback_reason == "malformed" for r in results),
        median_latency_ms=round(median(latencies), 1) if latencies else None,
        dollars=round(dollars, 6),
        dollars_per_shopper=round(dollars / shoppers, 6) if shoppers else None,
        accuracy=accuracy_stats(scores))


def two_proportions(x1: int, n1: int, x2: int, n2: int) -> Test:
    """Two-sided z-test of p1 = p2 with the pooled proportion; z > 0 when p2 > p1."""
    if not n1 or not n2:
        return Test("two-proportion z", None, None)
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return Test("two-proportion z", 0.0, 1.0)
    z = (x2 / n2 - x1 / n1) / se
    return Test("two-proportion z", round(z, 4), round(math.erfc(abs(z) / math.sqrt(2)), 6))


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> Test:
    if not a or not b:
        return Test("Mann-Whitney U", None, None)
    result = mannwhitneyu(a, b, alternative="two-sided")
    return Test("Mann-Whitney U", float(result.statistic), round(float(result.pvalue), 6))


@dataclass(frozen=True)
class ABReport:
    config: ABConfig
    arms: dict[str, ArmReport]
    tests: dict[str, Test]
    winner: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ab_report(config: ABConfig, results: Iterable[AnalysisResult], scores: Iterable[Score],
              *, alpha: float = ALPHA, min_scored: int = MIN_SCORED,
              max_cost_per_shopper_usd: float = MAX_COST_PER_SHOPPER_USD) -> ABReport:
    results, scores = list(results), list(scores)
    arms = {arm: arm_report(arm, [r for r in results if r.arm == arm],
                            [s for s in scores if s.arm == arm]) for arm in ARMS}
    a, b = arms["A"], arms["B"]
    offs = {arm: [abs(s.days_off) for s in scores if s.arm == arm and s.days_off is not None]
            for arm in ARMS}
    within = {arm: sum(s.within for s in scores if s.arm == arm) for arm in ARMS}
    tests = {"success": two_proportions(a.bedrock, a.analyses, b.bedrock, b.analyses),
             "within_2_days": two_proportions(within["A"], a.accuracy.scored,
                                              within["B"], b.accuracy.scored),
             "abs_days_off": mann_whitney(offs["A"], offs["B"])}
    winner, reason = decide(arms, tests, alpha, min_scored, max_cost_per_shopper_usd)
    return ABReport(config, arms, tests, winner, reason)


def decide(arms: dict[str, ArmReport], tests: dict[str, Test], alpha: float,
           min_scored: int, max_cost: float) -> tuple[str, str]:
    """The module docstring's rule: (winner, why)."""
    cost = {k: v.dollars_per_shopper or 0.0 for k, v in arms.items()}
    cheap, dear = ("B", "A") if cost["B"] < cost["A"] else ("A", "B")
    sign = 1 if dear == "B" else -1  # the tests' statistics are B minus A
    if min(arms[k].accuracy.scored for k in ARMS) < min_scored:
        return cheap, f"fewer than {min_scored} scored predictions in an arm: the cheaper arm"
    within, success = tests["within_2_days"], tests["success"]
    if within.p_value is None or within.statistic is None or not (
            sign * within.statistic > 0 and within.p_value < alpha):
        return cheap, (f"arm {dear} is not significantly more accurate (within ±2 days, "
                       f"p={within.p_value}): the cheaper arm")
    if success.statistic is not None and success.p_value is not None and (
            sign * success.statistic < 0 and success.p_value < alpha):
        return cheap, f"arm {dear} fails significantly more often: the cheaper arm"
    if cost[dear] > max_cost:
        return cheap, (f"arm {dear} is more accurate but costs ${cost[dear]:.4f} a shopper, "
                       f"over ${max_cost:g}: the cheaper arm")
    return dear, (f"arm {dear} is more accurate (within ±2 days, p={within.p_value}) "
                  f"at ${cost[dear]:.4f} a shopper")

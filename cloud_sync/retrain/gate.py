"""The quality gate: is the candidate worse than the champion beyond noise?

Both are scored on the same held-out shoppers (`evaluate.py`), so every comparison is a
paired bootstrap over those shoppers (`models.evaluation.bootstrap`, 1,000 resamples):

| metric | better | refused when the interval of candidate - champion is |
|---|---|---|
| Recall@10, NDCG@10 | higher | entirely below 0 |
| timing MAE (days) | lower | entirely above 0 |
| timing 80 % interval coverage | nearer 0.80 | entirely above 0, of abs(cov - 0.80) |

"Beyond noise" is the whole interval on the wrong side of zero. Each interval is 99 %:
four one-sided tests at 0.5 % each, so a candidate exactly as good as the champion is refused
by chance in at most ~2 % of runs (Bonferroni), while a real drop shows with a few hundred
shoppers. A candidate missing a model the champion has is refused; too few held-out
shoppers to compare is refused too (a champion exists, so nothing is lost by waiting).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cloud_sync.retrain.evaluate import K, Scores
from models.evaluation.bootstrap import N_RESAMPLES, paired_bootstrap

GATE_CONFIDENCE = 0.99
NOMINAL_COVERAGE = 0.80  # the timing model's interval is its 10 % to 90 % quantiles
PASS, REFUSE = "pass", "refuse"
# metric -> (Scores attribute, which way is better)
METRICS: dict[str, tuple[str, str]] = {
    f"recall@{K}": ("recall", "higher"),
    f"ndcg@{K}": ("ndcg", "higher"),
    "timing_mae_days": ("timing_abs_error", "lower"),
    "timing_coverage_80": ("timing_covered", "nearer 0.80"),
}


@dataclass(frozen=True)
class Verdict:
    verdict: str
    reason: str
    document: dict[str, Any]

    @property
    def passed(self) -> bool:
        return self.verdict == PASS


def judge(candidate: Scores, champion: Scores | None, *, champion_version: str | None,
          heldout_shoppers: int, min_heldout_shoppers: int, seed: int = 0) -> Verdict:
    base: dict[str, Any] = {
        "champion": champion_version, "heldout_shoppers": heldout_shoppers,
        "confidence": GATE_CONFIDENCE, "n_resamples": N_RESAMPLES,
        "candidate": candidate.summary(),
    }
    if champion is None:
        return _verdict(PASS, "first release: no champion to compare with", base)
    base["champion_scores"] = champion.summary()
    if heldout_shoppers < min_heldout_shoppers:
        return _verdict(REFUSE, f"only {heldout_shoppers} held-out shoppers (at least "
                        f"{min_heldout_shoppers} needed to compare with the champion)", base)
    comparisons: dict[str, Any] = {}
    refusals: list[str] = []
    for metric, (attribute, better) in METRICS.items():
        ours, theirs = getattr(candidate, attribute), getattr(champion, attribute)
        if theirs is None or not np.isfinite(theirs).any():
            comparisons[metric] = {"compared": False, "why": "the champion has no such model"}
            continue
        if ours is None or not np.isfinite(ours).any():
            comparisons[metric] = {"compared": False, "why": "the candidate has no such model"}
            refusals.append(f"{metric}: the candidate has no model for it, the champion has")
            continue
        if not (np.isfinite(ours) & np.isfinite(theirs)).any():
            comparisons[metric] = {"compared": False, "why": "no shopper scored by both"}
            continue
        result = compare(ours, theirs, better, seed)
        comparisons[metric] = result
        if result["worse_beyond_noise"]:
            low, high = result["ci"]
            refusals.append(f"{metric} {result['candidate']:.4f} vs champion "
                            f"{result['champion']:.4f} ({better} is better; difference "
                            f"{result['difference']:+.4f}, {GATE_CONFIDENCE:.0%} interval "
                            f"[{low:+.4f}, {high:+.4f}])")
    base["comparisons"] = comparisons
    if refusals:
        return _verdict(REFUSE, "worse than the champion beyond noise: " + "; ".join(refusals),
                        base)
    return _verdict(PASS, "not worse than the champion beyond noise on any metric", base)


def compare(candidate: np.ndarray, champion: np.ndarray, better: str, seed: int = 0
            ) -> dict[str, Any]:
    """Candidate minus champion over the shoppers both scored; for coverage, of the distance
    to the nominal 80 %."""
    ok = np.isfinite(candidate) & np.isfinite(champion)
    a, b = candidate[ok], champion[ok]
    if better == "nearer 0.80":
        difference, ci = _calibration_bootstrap(a, b, seed)
    else:
        boot = paired_bootstrap([a], [b], seed=seed, confidence=GATE_CONFIDENCE)
        difference, ci = float(boot["difference"]), [float(x) for x in boot["ci"]]  # type: ignore[union-attr]
    worse = ci[1] < 0 if better == "higher" else ci[0] > 0
    return {"compared": True, "better": better, "shoppers": int(ok.sum()),
            "candidate": float(a.mean()), "champion": float(b.mean()),
            "difference": difference, "ci": ci, "worse_beyond_noise": bool(worse)}


def _calibration_bootstrap(a: np.ndarray, b: np.ndarray, seed: int
                           ) -> tuple[float, list[float]]:
    """abs(cov_a - 0.80) - abs(cov_b - 0.80), and its percentile interval over resamples."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(N_RESAMPLES, len(a)))
    diffs = (np.abs(a[idx].mean(axis=1) - NOMINAL_COVERAGE)
             - np.abs(b[idx].mean(axis=1) - NOMINAL_COVERAGE))
    tail = 100 * (1 - GATE_CONFIDENCE) / 2
    observed = abs(a.mean() - NOMINAL_COVERAGE) - abs(b.mean() - NOMINAL_COVERAGE)
    return float(observed), [float(np.percentile(diffs, tail)),
                             float(np.percentile(diffs, 100 - tail))]


def _verdict(verdict: str, reason: str, document: dict[str, Any]) -> Verdict:
    return Verdict(verdict, reason, {"verdict": verdict, "reason": reason, **document})

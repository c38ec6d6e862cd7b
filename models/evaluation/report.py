"""The printed report of ``python -m models evaluate``: tables and the comparison."""

from __future__ import annotations

from models.evaluation.harness import MethodResult

TABLE_COLUMNS = (
    "recall@10", "ndcg@10", "recall@20", "ndcg@20", "phr@10", "phr@20",
    "repeat_recall@10", "explore_recall@10",
)


def format_table(results: list[MethodResult] | dict[str, dict[str, object]]) -> str:
    """Markdown table of the mean metrics of each method."""
    rows = (
        {r.name: r.mean for r in results}
        if isinstance(results, list)
        else {name: r["mean"] for name, r in results.items()}
    )
    header = "| method | " + " | ".join(TABLE_COLUMNS) + " |"
    lines = [header, "|---" * (len(TABLE_COLUMNS) + 1) + "|"]
    for name, mean in rows.items():
        assert isinstance(mean, dict)
        lines.append(f"| {name} | " + " | ".join(f"{mean[c]:.4f}" for c in TABLE_COLUMNS) + " |")
    return "\n".join(lines)


def format_per_split(methods: dict[str, dict[str, object]]) -> str:
    """Recall@10 / NDCG@10 of every method on every split."""
    lines = []
    for name, r in methods.items():
        per = r["per_split"]
        assert isinstance(per, list)
        cells = ", ".join(f"{s['recall@10']:.4f} / {s['ndcg@10']:.4f}" for s in per)
        lines.append(f"{name} per split R@10 / N@10: {cells}")
    return "\n".join(lines)


def format_comparison(comparison: dict[str, dict[str, object]]) -> str:
    """One line per ranker and metric: difference to the best baseline and its interval."""
    lines = []
    for metric, entry in comparison.items():
        best = entry["best_baseline"]
        for name, b in entry.items():
            if name == "best_baseline":
                continue
            assert isinstance(b, dict)
            lines.append(
                f"{name} vs {best} {metric}: {b['mean_a']:.4f} vs {b['mean_b']:.4f}, "
                f"diff {b['difference']:+.4f} [{b['ci'][0]:+.4f}, {b['ci'][1]:+.4f}], "
                f"{100 * b['relative']:+.1f}% [{100 * b['relative_ci'][0]:+.1f}%, "
                f"{100 * b['relative_ci'][1]:+.1f}%] (95%, paired bootstrap, users clustered "
                f"across splits)"
            )
    return "\n".join(lines)

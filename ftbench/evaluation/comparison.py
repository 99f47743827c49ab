"""Before/after comparison of two prediction sets over the same samples, by a scorer: every figure's delta with a
paired bootstrap CI, wins/losses/ties, McNemar's test for accuracies, and a per-sample table (improved / regressed
/ unchanged). Used by `train-and-compare`, `sweep` and `ftbench compare`. How a scorer compares is its own
(`Scorer.compare`: by default each side scored and paired, `ftbench.metrics.scorers.SampleScorer`); the statistics
live in `ftbench.metrics.uncertainty`.
"""

from __future__ import annotations

from ftbench.api.errors import InputError
from ftbench.api.metrics import Comparison
from ftbench.inference.chat import user_text
from ftbench.metrics.registry import SCORERS, scorer_for_figure


def score_figure(rows: list[dict], figure: str) -> tuple[float, list[float], list[float] | None]:
    """One figure of a prediction file's rows, named as the report names it: (value, per-sample values, 95% CI)."""
    result = scorer_for_figure(figure).score(rows)
    return result.metrics[figure], list(result.samples[figure]), result.ci95.get(figure)


def compare_scorer(scorer: str, before: list[dict], after: list[dict]) -> Comparison:
    """Compare two prediction lists (LLaMA-Factory rows: prompt/predict/label) with the scorer named ``scorer``.

    Rows are paired by position; their prompts and labels must agree, or the comparison is meaningless."""
    if len(before) != len(after):
        raise InputError(
            f"cannot compare {len(before)} predictions with {len(after)}: they must cover the same samples"
        )
    for i, (x, y) in enumerate(zip(before, after)):
        if x.get("label") != y.get("label") or x.get("prompt") != y.get("prompt"):
            raise InputError(
                f"row {i}: the two prediction files differ in prompt or label: they are not over the same samples"
            )
    comparison = SCORERS.create(scorer).compare(before, after)
    for row in comparison.rows:  # the report shows what the user asked, not the rendered chat template
        row["prompt"] = user_text(row.get("prompt", ""))
    return comparison

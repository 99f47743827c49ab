"""Before/after comparison of two prediction sets over the same samples: every figure's delta with a paired
bootstrap CI, wins/losses/ties, McNemar's test for accuracies, and a per-sample table (improved / regressed /
unchanged). Used by `train-and-compare` and `ftbench compare`; the statistics live in `ftbench.metrics.uncertainty`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ftbench.api.errors import InputError
from ftbench.inference.chat import user_text
from ftbench.metrics import gsm8k
from ftbench.metrics.scoring import score_pairs
from ftbench.metrics.uncertainty import mcnemar, paired_difference

PRIMARY = {"similarity": "rouge-l", "gsm8k": "strict-match"}  # decides improved/regressed per sample
# the figures a run can be judged by (sweep --metric, --select-by) and the eval set each is computed on
FIGURE_TASK = {"bleu-4": "similarity", "rouge-1": "similarity", "rouge-2": "similarity", "rouge-l": "similarity",
               "strict-match": "gsm8k", "flexible-extract": "gsm8k"}


def score_figure(rows: list[dict], figure: str) -> tuple[float, list[float], list[float] | None]:
    """One figure of a prediction file's rows, named as the report names it: (value, per-sample values, 95% CI)."""
    task = FIGURE_TASK[figure]
    result = score_pairs([r.get("predict", "") for r in rows], [r.get("label", "") for r in rows], scorer=task)
    if task == "gsm8k":
        gsm8k.add_report_figures(result)
    return result.metrics[figure], list(result.samples[figure]), result.ci95.get(figure)


@dataclass
class TaskComparison:
    """One task's before/after figures, deltas and per-sample rows."""

    task: str
    n: int
    figures: dict  # figure -> {before, after, delta, ci95, stderr, wins, losses, ties, [mcnemar]}
    signatures: dict
    before: dict  # ScoreResult.to_json() of each side
    after: dict
    rows: list  # per-sample rows for the report

    def to_json(self, with_rows: bool = False) -> dict:
        out = {"task": self.task, "n": self.n, "figures": self.figures, "signatures": self.signatures,
               "before": self.before, "after": self.after}
        if with_rows:
            out["rows"] = self.rows
        return out


def compare_task(task: str, before: list[dict], after: list[dict]) -> TaskComparison:
    """Score both prediction lists (LLaMA-Factory rows: prompt/predict/label) and compare them sample by sample.

    Rows are paired by position; their prompts and labels must agree, or the comparison is meaningless."""
    if len(before) != len(after):
        raise InputError(f"cannot compare {len(before)} predictions with {len(after)}: they must cover the same "
                         "samples")
    for i, (x, y) in enumerate(zip(before, after)):
        if x.get("label") != y.get("label") or x.get("prompt") != y.get("prompt"):
            raise InputError(f"row {i}: the two prediction files differ in prompt or label: they are not over the "
                             "same samples")
    labels = [r.get("label", "") for r in before]
    scored = {side: score_pairs([r.get("predict", "") for r in rows], labels, scorer=task)
              for side, rows in (("before", before), ("after", after))}
    sb, sa = scored["before"], scored["after"]
    if task == "gsm8k":
        for result in (sb, sa):
            gsm8k.add_report_figures(result)
    figures = {}
    for fig in sb.metrics:
        xb, xa = sb.samples.get(fig), sa.samples.get(fig)
        entry = {"before": sb.metrics[fig], "after": sa.metrics[fig], "delta": sa.metrics[fig] - sb.metrics[fig],
                 "before_ci95": sb.ci95.get(fig), "after_ci95": sa.ci95.get(fig)}
        if xb is not None and xa is not None:
            paired = paired_difference(xa, xb)
            entry.update(delta_ci95=paired["ci95"], delta_stderr=paired["stderr"],
                         wins=sum(1 for p, q in zip(xb, xa) if q > p), losses=sum(1 for p, q in zip(xb, xa) if q < p),
                         ties=sum(1 for p, q in zip(xb, xa) if q == p))
            if task == "gsm8k":
                entry["mcnemar"] = mcnemar([bool(v) for v in xb], [bool(v) for v in xa])
        figures[fig] = entry
    rows = _rows(task, before, after, sb, sa)
    return TaskComparison(task, len(before), figures, sb.signatures, sb.to_json(), sa.to_json(), rows)


def _rows(task: str, before: list[dict], after: list[dict], sb, sa) -> list[dict]:
    primary = PRIMARY.get(task)
    rows = []
    for i, (x, y) in enumerate(zip(before, after)):
        scores_b = {f: sb.samples[f][i] for f in sb.metrics if f in sb.samples}
        scores_a = {f: sa.samples[f][i] for f in sa.metrics if f in sa.samples}
        if task == "gsm8k":
            for side, s in (("before", scores_b), ("after", scores_a)):
                src = sb if side == "before" else sa
                s["strict"], s["flexible"] = src.samples["strict"][i], src.samples["flexible"][i]
        b, a = scores_b.get(primary, 0), scores_a.get(primary, 0)
        if task == "gsm8k" and a == b:  # same strict verdict: let flexible-extract break the tie
            b, a = scores_b.get("flexible-extract", 0), scores_a.get("flexible-extract", 0)
        status = "improved" if a > b else "regressed" if a < b else "unchanged"
        rows.append({"i": i, "task": task, "prompt": user_text(x.get("prompt", "")), "reference": x.get("label", ""),
                     "before": x.get("predict", ""), "after": y.get("predict", ""), "scores_before": scores_b,
                     "scores_after": scores_a, "status": status})
    return rows

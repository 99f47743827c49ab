"""Scoring tasks: which metrics a task runs, their aggregates, uncertainty, signatures and explanations.

`score_pairs` is the one entry point for every command (score, report, compare): give it predictions
and references, get a `ScoreResult` with figures, standard errors, 95% intervals, signatures and
per-sample values.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ftbench.api.metrics import CorpusMetric, Metric, SampleMetric, ScoreResult, get_metric
from ftbench.metrics import uncertainty


class ScoringTask:
    """A named way to score a prediction file: default metrics, plus optional explanation of the result."""

    name: str = ""
    description: str = ""
    default_metrics: tuple[str, ...] = ()

    def metric_options(self, metric_name: str, options: dict) -> dict:
        """Options for one metric constructor from the caller's options (unknown ones are not passed)."""
        return {}

    def explain(self, predictions: Sequence[str], references: Sequence[str], metrics: list[Metric],
                result: ScoreResult, lines: Sequence[int | None] | None) -> None:
        """Add task-specific per-sample fields and details to ``result`` (nothing by default)."""


class SimilarityTask(ScoringTask):
    """LLaMA-Factory's predict metrics: bleu-4, rouge-1, rouge-2, rouge-l (plus any standard metric asked for)."""

    name = "similarity"
    description = "LLaMA-Factory predict metrics"
    default_metrics = ("llamafactory",)

    def metric_options(self, metric_name, options):
        return {"jobs": options.get("jobs")} if metric_name in ("llamafactory", "bleu-4", "rouge-1", "rouge-2",
                                                                "rouge-l") else {}

    def explain(self, predictions, references, metrics, result, lines):
        from ftbench.metrics.llamafactory import FIGURES
        from ftbench.metrics.standard import RougeScore, has_cjk

        # do_predict prints round(np.mean(scores), 4); LLaMA-Factory's scripts/eval_bleu_rouge.py (after
        # vllm_infer) and lm-eval print sum(scores)/len(scores). The two floats can differ in the last bit,
        # and when the exact mean sits on a rounding boundary the 4th decimal differs: say so.
        for figure in FIGURES:
            values = result.samples.get(figure)
            if not values:
                continue
            plain = sum(values) / len(values)
            if f"{plain:.4f}" != f"{result.metrics[figure]:.4f}":
                result.details.setdefault("sum_len_means", {})[figure] = plain
                result.details.setdefault("notes", []).append(
                    f"{figure}: the exact mean lies on a rounding boundary; LLaMA-Factory's do_predict (np.mean) "
                    f"prints {result.metrics[figure]:.4f}, its scripts/eval_bleu_rouge.py and lm-eval "
                    f"(sum/len) print {plain:.4f}.")

        if any(isinstance(m, RougeScore) for m in metrics) and any(has_cjk(r) for r in references):
            result.details.setdefault("notes", []).append(
                "rouge-score's tokeniser keeps only a-z and 0-9, so Chinese text contributes nothing to "
                "rouge1/rouge2/rougeL/rougeLsum; LLaMA-Factory's rouge-1/2/l segment it with jieba.")


class Gsm8kTask(ScoringTask):
    """lm-eval's gsm8k: exact match under strict-match and flexible-extract, and why they disagree."""

    name = "gsm8k"
    description = "lm-eval gsm8k exact_match"
    default_metrics = ("gsm8k",)

    def metric_options(self, metric_name, options):
        return {"until": tuple(options.get("until") or ())} if metric_name == "gsm8k" else {}

    def explain(self, predictions, references, metrics, result, lines):
        from ftbench.metrics.gsm8k import STRICT_FIGURE, FLEXIBLE_FIGURE, Gsm8kExactMatch, truncate_at
        from ftbench.metrics.gsm8k_diagnosis import diagnose

        metric = next(m for m in metrics if isinstance(m, Gsm8kExactMatch))
        strict, flexible = metric.extracted["strict"], metric.extracted["flexible"]
        if metric.until:
            predictions = [truncate_at(p, metric.until) for p in predictions]
        targets = [str(r) for r in references]
        causes, summary = diagnose(predictions, strict, flexible, result.samples[STRICT_FIGURE],
                                   result.samples[FLEXIBLE_FIGURE], targets, lines)
        result.samples.update({
            "strict": strict, "flexible": flexible,
            "strict_correct": [bool(x) for x in result.samples[STRICT_FIGURE]],
            "flexible_correct": [bool(x) for x in result.samples[FLEXIBLE_FIGURE]],
            "target": targets, "cause": causes})
        result.details["disagreement"] = summary
        runaway = sum(1 for p in predictions if "Question:" in p)
        if runaway and "Question:" not in metric.until:
            result.details.setdefault("notes", []).append(
                f"{runaway} of {len(predictions)} predictions contain 'Question:'. lm-eval stops generating at "
                "'Question:' (gsm8k's `until`), so its filters never see what follows; to score these outputs "
                "as lm-eval would have generated them, add --until 'Question:'.")


TASKS: dict[str, ScoringTask] = {task.name: task for task in (SimilarityTask(), Gsm8kTask())}


def _resolve_metrics(task: ScoringTask, names: Sequence[str] | None, options: dict
                     ) -> tuple[list[Metric], list[str]]:
    """Metric objects for the names asked for (several figures of one metric share one object), and the
    figures to report, in the order asked for."""
    metrics: list[Metric] = []
    figures: list[str] = []
    by_type: dict[type, Metric] = {}
    for name in names or task.default_metrics:
        metric = get_metric(name, **task.metric_options(name, options))
        if type(metric) not in by_type:
            by_type[type(metric)] = metric
            metrics.append(metric)
        wanted = metric.figures if name == metric.name else (name,)
        figures += [f for f in wanted if f not in figures]
    return metrics, figures


def score_pairs(predictions: Sequence[str], references: Sequence[str], task: str = "similarity",
                metrics: Sequence[str] | None = None, *, jobs: int | None = None, until: Sequence[str] = (),
                lines: Sequence[int | None] | None = None) -> ScoreResult:
    """Score (prediction, reference) pairs with a task's metrics.

    ``metrics``: metric or figure names (default: the task's, e.g. LLaMA-Factory's four for "similarity").
    ``jobs``: worker processes for the LLaMA-Factory metrics (None: automatic). ``until``: stop sequences
    to cut GSM8K generations at, as lm-eval's generation does. ``lines``: source line per sample, used
    in the explanations. Per-sample values are in ``result.samples[figure]``.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    scoring_task = TASKS[task]
    chosen, figures = _resolve_metrics(scoring_task, metrics, {"jobs": jobs, "until": until})
    n = len(predictions)
    result = ScoreResult(task=task, n=n, metrics={}, stderr={}, ci95={}, signatures={},
                         uncertainty={"stderr": uncertainty.STDERR_METHOD, "ci95": uncertainty.CI_METHOD})
    per_sample: dict[str, np.ndarray] = {}
    for metric in chosen:
        result.signatures.update(metric.signatures() if not isinstance(metric, CorpusMetric) else {})
        if isinstance(metric, SampleMetric):
            for figure, values in metric.per_sample(predictions, references).items():
                per_sample[figure] = values
                result.metrics[figure] = metric.aggregate(figure, values) if n else float("nan")
                result.stderr[figure] = uncertainty.mean_stderr(values.tolist())
                result.samples[figure] = values.tolist()
        elif isinstance(metric, CorpusMetric):
            for figure, stats in metric.statistics(predictions, references).items():
                result.metrics[figure] = metric.from_totals(figure, stats.sum(axis=0)) if n else float("nan")
                result.stderr[figure], result.ci95[figure] = uncertainty.corpus_uncertainty(
                    stats, lambda totals, f=figure, m=metric: m.from_totals(f, totals))
            result.signatures.update(metric.signatures())
    result.ci95.update(uncertainty.mean_intervals(per_sample, n))
    scoring_task.explain(predictions, references, chosen, result, lines)
    # report the figures asked for, in that order (a metric may compute more than was asked for)
    for table in (result.metrics, result.stderr, result.ci95, result.signatures):
        kept = {figure: table.get(figure) for figure in figures}
        table.clear()
        table.update(kept)
    for figure in [k for k in per_sample if k not in figures]:
        result.samples.pop(figure, None)
    return result

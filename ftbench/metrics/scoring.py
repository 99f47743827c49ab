"""`score_pairs`: the one entry point every command (score, eval, compare, the report) uses to score predictions:
give it predictions, references and a scorer's name, get a `ScoreResult` with figures, standard errors, 95%
intervals, signatures and per-sample values."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ftbench.api.metrics import CorpusMetric, Metric, SampleMetric, Scorer, ScoreResult
from ftbench.metrics import uncertainty
from ftbench.metrics.registry import SCORERS, get_metric


def _resolve_metrics(scorer: Scorer, names: Sequence[str] | None, options: dict) -> tuple[list[Metric], list[str]]:
    """Metric objects for the names asked for (several figures of one metric share one object), and the
    figures to report, in the order asked for."""
    metrics: list[Metric] = []
    figures: list[str] = []
    by_type: dict[type, Metric] = {}
    for name in names or scorer.default_metrics:
        metric = get_metric(name, **scorer.metric_options(name, options))
        if type(metric) not in by_type:
            by_type[type(metric)] = metric
            metrics.append(metric)
        wanted = metric.figures if name == metric.name else (name,)
        figures += [f for f in wanted if f not in figures]
    return metrics, figures


def score_pairs(
    predictions: Sequence[str],
    references: Sequence[str],
    scorer: str = "similarity",
    metrics: Sequence[str] | None = None,
    *,
    jobs: int | None = None,
    until: Sequence[str] = (),
    lines: Sequence[int | None] | None = None,
) -> ScoreResult:
    """Score (prediction, reference) pairs with a scorer's metrics (a name in `ftbench.metrics.registry.SCORERS`:
    ``similarity``, ``gsm8k``, ...).

    ``metrics``: metric or figure names (default: the scorer's, e.g. LLaMA-Factory's four for "similarity").
    ``jobs``: worker processes for the LLaMA-Factory metrics (None: automatic). ``until``: stop sequences
    to cut GSM8K generations at, as lm-eval's generation does. ``lines``: source line per sample, used
    in the explanations. Per-sample values are in ``result.samples[figure]``.
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    chosen_scorer = SCORERS.create(scorer)
    chosen, figures = _resolve_metrics(chosen_scorer, metrics, {"jobs": jobs, "until": until})
    n = len(predictions)
    result = ScoreResult(
        scorer=scorer,
        n=n,
        metrics={},
        stderr={},
        ci95={},
        signatures={},
        uncertainty={"stderr": uncertainty.STDERR_METHOD, "ci95": uncertainty.CI_METHOD},
    )
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
                    stats, lambda totals, f=figure, m=metric: m.from_totals(f, totals)
                )
            result.signatures.update(metric.signatures())
    result.ci95.update(uncertainty.mean_intervals(per_sample, n))
    chosen_scorer.explain(predictions, references, chosen, result, lines)
    # report the figures asked for, in that order (a metric may compute more than was asked for)
    for table in (result.metrics, result.stderr, result.ci95, result.signatures):
        kept = {figure: table.get(figure) for figure in figures}
        table.clear()
        table.update(kept)
    for figure in [k for k in per_sample if k not in figures]:
        result.samples.pop(figure, None)
    return result

"""Metrics and scorers by name. Built-ins are listed here as ``"module:Class"`` strings, so naming one imports
only its module; packages add their own through the ``ftbench.metrics`` / ``ftbench.scorers`` entry-point groups.

A metric is asked for by its name (``llamafactory``) or by one of its figures (``bleu-4``): a figure runs its
metric and reports that figure only. Everything that lists scorers or their figures (command-line choices, the
run folder, train-and-compare, the sweep) asks `scorers()` / `judged_figures()` here.
"""

from __future__ import annotations

from typing import Any

from ftbench.api.errors import UsageError
from ftbench.api.metrics import Metric, Scorer
from ftbench.api.registry import Registry

METRICS: Registry[type[Metric]] = Registry(
    "metric",
    base=Metric,
    entry_point_group="ftbench.metrics",
    builtins={
        "llamafactory": "ftbench.metrics.similarity:LlamaFactorySimilarity",
        "gsm8k": "ftbench.metrics.gsm8k:Gsm8kExactMatch",
        "sacrebleu": "ftbench.metrics.standard:SacreBleu",
        "rouge-score": "ftbench.metrics.standard:RougeScore",
    },
)
SCORERS: Registry[type[Scorer]] = Registry(
    "scorer",
    base=Scorer,
    entry_point_group="ftbench.scorers",
    builtins={
        "similarity": "ftbench.metrics.scorers:SimilarityScorer",
        "gsm8k": "ftbench.metrics.scorers:Gsm8kScorer",
        "retention": "ftbench.metrics.retention:RetentionScorer",
        "retention-drift": "ftbench.evaluation.retention_drift:RetentionDriftScorer",
        "benchmark": "ftbench.evaluation.benchmark_scorer:BenchmarkScorer",
        "judge": "ftbench.evaluation.judge_scorer:JudgeScorer",
        "retention-judge": "ftbench.evaluation.judge_scorer:RetentionJudgeScorer",
    },
)
DEFAULT_SCORER = "similarity"  # `score` without --scorer; `compare` when no scorer recognises the labels


def scorers() -> dict[str, Scorer]:
    """name -> a scorer instance, in registration order (built-ins first): the report's order."""
    return {name: SCORERS.create(name) for name in SCORERS.targets()}


def judged_figures() -> dict[str, str]:
    """figure -> its scorer, for every figure a run can be judged by (`--select-by`, `sweep --metric`)."""
    return {figure: name for name, scorer in scorers().items() for figure in scorer.judged_figures()}


def scorer_for_figure(figure: str) -> Scorer:
    """The scorer reporting ``figure``; UsageError naming the figures there are."""
    figures = judged_figures()
    if figure not in figures:
        raise UsageError(f"unknown figure '{figure}'; choose from: {', '.join(figures)}")
    return SCORERS.create(figures[figure])


def recognise_scorer(labels: list[str]) -> str:
    """The scorer whose prediction files have such labels (`compare --scorer auto`), else the default."""
    return next((name for name, scorer in scorers().items() if scorer.recognises(labels)), DEFAULT_SCORER)


def figure_owners() -> dict[str, str]:
    """figure name -> the metric that computes it (every metric's own name maps to itself)."""
    owners: dict[str, str] = {}
    for name in METRICS.names():
        owners.setdefault(name, name)
        for figure in METRICS.load(name).figures:
            owners.setdefault(figure, name)
    return owners


def metric_names() -> list[str]:
    """Every metric and figure name that `get_metric` accepts."""
    return sorted(figure_owners())


def get_metric(name: str, **options: Any) -> Metric:
    """A new instance of the metric called ``name``, or of the metric that computes the figure ``name``."""
    owners = figure_owners()
    if name not in owners:
        raise UsageError(METRICS.unknown(name, owners))
    return METRICS.create(owners[name], **options)

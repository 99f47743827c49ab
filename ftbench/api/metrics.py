"""Metrics: the interfaces every metric and scorer implements, and the result every command shares.

A metric turns (prediction, reference) pairs into one or more named *figures*. Two kinds, as in lm-eval:

* `SampleMetric`: a value per sample, aggregated by the mean (BLEU/ROUGE as LLaMA-Factory averages them,
  exact match). Standard error as lm-eval reports it, bootstrap CI over samples.
* `CorpusMetric`: additive statistics per sample, turned into one figure for the whole corpus (sacreBLEU's
  corpus BLEU). Uncertainty by resampling the statistics.

Every figure carries a signature (`name|key:value|...`, like sacreBLEU's) naming the tokenisation,
smoothing, normalisation and library versions, so two runs can be checked for comparability.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np


def format_signature(name: str, **parts: Any) -> str:
    """``name|key:value|...`` in the order given (None values left out)."""
    return "|".join([name] + [f"{k.rstrip('_').replace('_', '-')}:{v}" for k, v in parts.items() if v is not None])


class Metric(ABC):
    """A named scorer producing the figures listed in ``figures``."""

    name: ClassVar[str]
    figures: ClassVar[tuple[str, ...]]
    higher_is_better: ClassVar[bool] = True

    @abstractmethod
    def signatures(self) -> dict[str, str]:
        """figure -> signature."""


class SampleMetric(Metric):
    """A metric with one value per sample per figure; each figure is the mean of its values."""

    @abstractmethod
    def per_sample(self, predictions: Sequence[str], references: Sequence[str]) -> dict[str, np.ndarray]:
        """figure -> float64 array of per-sample values, in input order."""

    def aggregate(self, figure: str, values: np.ndarray) -> float:
        return float(np.mean(values))


class CorpusMetric(Metric):
    """A metric computed over the whole corpus from per-sample additive statistics."""

    @abstractmethod
    def statistics(self, predictions: Sequence[str], references: Sequence[str]) -> dict[str, np.ndarray]:
        """figure -> (n_samples, k) array whose column sums determine the figure."""

    @abstractmethod
    def from_totals(self, figure: str, totals: np.ndarray) -> float:
        """The figure from column sums of its statistics (1-D, length k)."""


@dataclass
class ScoreResult:
    """Figures for one prediction file, with their uncertainty and signatures, and per-sample values.

    ``samples`` maps a figure (or a per-sample field such as "strict") to its list of per-sample values in
    input order; ``details`` holds task-specific explanations (e.g. the GSM8K disagreement diagnosis).
    """

    task: str
    n: int
    metrics: dict[str, float]
    stderr: dict[str, float | None]
    ci95: dict[str, list[float] | None]
    signatures: dict[str, str]
    samples: dict[str, list] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    uncertainty: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The `ftbench score --json` object (per-sample values are left out: see ``--samples``)."""
        out = {"task": self.task, "metrics": self.metrics, "n": self.n, "stderr": self.stderr,
               "ci95": self.ci95, "signatures": self.signatures, "uncertainty": self.uncertainty}
        out.update(self.details)
        return out


class Scorer(ABC):
    """A named way to score a prediction file (``similarity``, ``gsm8k``): which metrics run by default, how
    options reach them, and what is explained beside the figures (e.g. why two GSM8K extractions disagree)."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    default_metrics: ClassVar[tuple[str, ...]] = ()

    def metric_options(self, metric_name: str, options: dict) -> dict:
        """Options for one metric constructor from the caller's options (unknown ones are not passed)."""
        return {}

    def explain(self, predictions: Sequence[str], references: Sequence[str], metrics: list[Metric],
                result: ScoreResult, lines: Sequence[int | None] | None) -> None:
        """Add scorer-specific per-sample fields and details to ``result`` (nothing by default)."""

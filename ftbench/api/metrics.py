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


@dataclass(frozen=True)
class LoadedSide:
    """What a side's generation left in this process, for a ``takes_loaded_model`` scorer: the model (its
    adapter merged) and tokenizer, and for each eval set generated here (by scorer name) its answers' likelihoods
    under that model (`api.generation.PromptSet.scores`: index -> (summed NLL in nats, tokens))."""

    model: Any
    tokenizer: Any
    answer_scores: dict = field(default_factory=dict)


@dataclass
class ScoreResult:
    """Figures for one prediction file, with their uncertainty and signatures, and per-sample values.

    ``samples`` maps a figure (or a per-sample field such as "strict") to its list of per-sample values in
    input order; ``details`` holds scorer-specific explanations (e.g. the GSM8K disagreement diagnosis).
    """

    scorer: str
    n: int
    metrics: dict[str, float]
    stderr: dict[str, float | None]
    ci95: dict[str, list[float] | None]
    signatures: dict[str, str]
    samples: dict[str, list] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    uncertainty: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The `ftbench score --json` object (per-sample values are left out: see ``--samples``). Its "task" key
        names the scorer, as it always has (scripts read it)."""
        out = {
            "scorer": self.scorer,
            "task": self.scorer,
            "metrics": self.metrics,
            "n": self.n,
            "stderr": self.stderr,
            "ci95": self.ci95,
            "signatures": self.signatures,
            "uncertainty": self.uncertainty,
        }
        out.update(self.details)
        return out


@dataclass
class Comparison:
    """One scorer's before/after comparison over the same samples: every figure's before, after and delta (with
    its paired CI, wins/losses/ties, McNemar for accuracies), the signatures, each side's `ScoreResult.to_json()`
    and a per-sample row for the report (prompt, reference, both answers, scores, improved/regressed/unchanged)."""

    scorer: str
    n: int
    figures: dict  # figure -> {before, after, delta, ci95, stderr, wins, losses, ties, [mcnemar]}
    signatures: dict
    before: dict
    after: dict
    rows: list

    def to_json(self, with_rows: bool = False) -> dict:
        out = {
            "scorer": self.scorer,
            "n": self.n,
            "figures": self.figures,
            "signatures": self.signatures,
            "before": self.before,
            "after": self.after,
        }
        if with_rows:
            out["rows"] = self.rows
        return out


class Scorer(ABC):
    """A named way to score prediction files and to judge a fine-tune by them (``similarity``, ``gsm8k``).

    Everything that differs between scorers is declared here, so the commands, the run folder, the report and
    the sweep ask the scorer instead of testing its name: a new scorer is one class plus one registry line.

    * scoring a file: the metrics run by default and their options, whether labels may be numbers, what is
      explained beside the figures, and the figures as reports name them (``report_figures``);
    * judging: ``figures`` in report order, ``primary`` (decides improved/regressed per sample), which figures
      can choose a checkpoint or judge a sweep (``judged_figures``), which are 0/1 accuracies (McNemar);
    * in a train-and-compare run: the eval set it scores (``eval_samples``), the generation length setting
      it uses, its prediction file's name, what of its details goes into metrics.json;
    * comparing: ``compare`` scores both sides and pairs them (the default, in
      ``ftbench.metrics.scorers.SampleScorer``); a pairwise scorer (a judge that sees before and after together)
      implements ``compare`` itself;
    * a scorer of another scorer's answers (a judge of the held-out answers): ``answers_of`` names that scorer in
      a run, so nothing is generated twice, and ``compare_in_run`` gets the run's settings and folder (the
      judge, and the judgments file it resumes);
    * running the model itself (``runs_model``: lm-eval's benchmarks, whose loglikelihood requests are no
      generation): the run does not generate answers for it but calls ``run_model`` for each side, which writes
      that side's per-sample rows to the run folder's ``prediction_file(side)`` (and skips the work when the rows
      there were made from the same model, adapter and settings), after the side's answers are generated;
      ``read_rows`` reads them back for ``compare``.
      Its figures may depend on the run (one per task): then ``figures`` stays empty, ``judged`` too, and the
      comparison names them.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    default_metrics: ClassVar[tuple[str, ...]] = ()
    eval_set: ClassVar[str] = "its eval set"  # what it evaluates in a run, in words ("GSM8K problems")
    sample_unit: ClassVar[str] = "samples"  # what one of its samples is called in a verdict ("held-out samples")
    figures: ClassVar[tuple[str, ...]] = ()  # as reports name them, in report order
    primary: ClassVar[str] = ""  # decides improved/regressed per sample
    tie_breaker: ClassVar[str | None] = None  # decides when the primary figure ties
    judged: ClassVar[tuple[str, ...] | None] = None  # figures a run can be judged by (None: all of ``figures``)
    accuracies: ClassVar[tuple[str, ...]] = ()  # 0/1 per sample: McNemar's test beside the paired bootstrap
    higher_is_better: ClassVar[bool] = True
    percent: ClassVar[bool] = False  # figures on a 0-100 scale
    numeric_labels: ClassVar[bool] = False  # labels may be JSON numbers (read as lm-eval does, with str())
    predictions_file: ClassVar[str] = "{name}_predictions_{side}.jsonl"  # in the run folder
    length_setting: ClassVar[str] = "max_new_tokens"  # the run setting giving its generation length
    sample_fields: ClassVar[tuple[str, ...]] = ()  # per-sample fields shown beside the scores in report rows
    run_detail: ClassVar[str | None] = None  # a `ScoreResult.details` key metrics.json keeps per side
    runs_model: ClassVar[bool] = False  # runs the model itself (`run_model`) instead of scoring generated answers
    # a runs_model scorer that can score with the side's model as the generation engine holds it in this process
    # (the adapter merged): it runs while that engine is open, with ``loaded``, instead of loading its own copy
    takes_loaded_model: ClassVar[bool] = False
    # such a scorer that scores the base model's answers to another scorer's eval set by likelihood: that
    # scorer's name; on the before side those likelihoods come with the generation (`LoadedSide.answer_scores`)
    likelihood_of: ClassVar[str | None] = None

    def metric_options(self, metric_name: str, options: dict) -> dict:
        """Options for one metric constructor from the caller's options (unknown ones are not passed)."""
        return {}

    def explain(
        self,
        predictions: Sequence[str],
        references: Sequence[str],
        metrics: list[Metric],
        result: ScoreResult,
        lines: Sequence[int | None] | None,
    ) -> None:
        """Add scorer-specific per-sample fields and details to ``result`` (nothing by default)."""

    def report_figures(self, result: ScoreResult) -> None:
        """Rename or add figures of ``result`` as reports name them (nothing by default)."""

    def headline_lines(self, detail: Any, comparison: dict) -> list[str]:
        """Sentences for a run's headline from its ``run_detail`` in metrics.json (``{"before": ..., "after":
        ...}``, or None when it was not run or it keeps none) and the run's figures (metrics.json's
        ``comparison``: figure -> entry, None when not measured); none by default."""
        return []

    def recognises(self, labels: Sequence[str]) -> bool:
        """Whether prediction files with these labels are this scorer's (`compare --scorer auto`)."""
        return False

    @classmethod
    def judged_figures(cls) -> tuple[str, ...]:
        return cls.figures if cls.judged is None else cls.judged

    def eval_samples(self, held_out: list, settings: Any) -> list:
        """The samples a train-and-compare run evaluates with this scorer, given the training config's held-out
        split and the run's settings; empty: not part of the run (the default)."""
        return []

    def generation_length(self, settings: Any) -> int:
        """New tokens per answer for this scorer's eval set: its ``length_setting``, else max_new_tokens."""
        return getattr(settings, self.length_setting, None) or settings.max_new_tokens

    def prediction_file(self, side: str) -> str:
        """Its prediction file's name in a run folder, for ``side`` before or after."""
        return self.predictions_file.format(name=self.name, side=side)

    def run_model(
        self,
        samples: list,
        model: str,
        adapter: str | None,
        settings: Any,
        side: str,
        path: str,
        quiet: bool,
        loaded: LoadedSide | None = None,
    ) -> None:
        """A ``runs_model`` scorer: evaluate ``model`` (with the peft ``adapter``: the after side) on ``samples``
        (its `eval_samples`) under the run ``settings`` (device, limits) and write the per-sample rows of ``side``
        to ``path``; done already (the same model, adapter and settings made the rows there): nothing to do.
        ``loaded``: that side's model already in memory, for a ``takes_loaded_model`` scorer."""
        raise NotImplementedError(f"scorer {self.name} scores generated answers; it does not run the model")

    def read_rows(self, path: str) -> list[dict]:
        """A ``runs_model`` scorer: one side's rows as its `run_model` wrote them, as ``compare`` takes them (the
        other scorers' rows are prediction files: `evaluation.comparison.read_side`)."""
        raise NotImplementedError(f"scorer {self.name} compares prediction files")

    def score(self, rows: list[dict]) -> ScoreResult:
        """One side's prediction rows scored, figures named as reports name them (how `--select-by` and the sweep
        judge a run). A pairwise scorer has no per-side figures: it keeps ``judged`` empty and this unimplemented."""
        raise NotImplementedError(f"scorer {self.name} does not score one prediction file on its own")

    def answers_of(self, settings: Any) -> str | None:
        """In a run with ``settings``: the scorer whose prediction files this one scores instead of an eval set of
        its own (None: it scores its own eval set, the default)."""
        return None

    def compare_in_run(self, before: list[dict], after: list[dict], settings: Any, folder: Any) -> Comparison:
        """`compare` inside a run (``settings``: its RunSettings, ``folder``: its RunFolder), for a scorer that
        needs them; the default ignores them."""
        return self.compare(before, after)

    @abstractmethod
    def compare(self, before: list[dict], after: list[dict]) -> Comparison:
        """Compare two prediction lists (LLaMA-Factory rows: prompt/predict/label) over the same samples, paired
        by position (the caller has checked that prompts and labels agree)."""

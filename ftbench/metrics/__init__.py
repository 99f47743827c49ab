"""Scoring: LLaMA-Factory-identical BLEU/ROUGE, lm-eval-identical GSM8K, uncertainty and signatures.

Public entry points (what commands call):

* `score_pairs(predictions, references, task="similarity" | "gsm8k", metrics=None)` -> `ScoreResult`
  with figures, stderr, ci95, signatures, and per-sample values in ``result.samples[figure]``;
* `read_predictions(path)` -> `PredictionFile` (LLaMA-Factory generated_predictions.jsonl and friends);
* `llamafactory_scores(predictions, references)` -> (n, 4) per-sample bleu-4, rouge-1, rouge-2, rouge-l;
* `paired_difference(after, before)` -> mean difference with stderr and 95% CI, for before/after.

Importing this package registers the built-in metrics; it imports no heavy library (jieba, lm-eval,
sacrebleu and rouge-score are imported when a metric first runs).
"""

from __future__ import annotations

from ftbench.api.metrics import ScoreResult, get_metric, metric_names
from ftbench.metrics import gsm8k, similarity, standard  # noqa: F401  (register the metrics)
from ftbench.metrics.predictions import PredictionFile, read_predictions
from ftbench.metrics.scoring import TASKS, score_pairs
from ftbench.metrics.similarity import llamafactory_scores
from ftbench.metrics.uncertainty import mean_stderr, paired_difference

__all__ = ["ScoreResult", "PredictionFile", "TASKS", "get_metric", "llamafactory_scores", "mean_stderr",
           "metric_names", "paired_difference", "read_predictions", "score_pairs"]

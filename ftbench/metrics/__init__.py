"""Scoring: LLaMA-Factory-identical BLEU/ROUGE, lm-eval-identical GSM8K, uncertainty and signatures.

Where things are:

* `scoring.score_pairs(predictions, references, scorer="similarity" | "gsm8k", metrics=None)` -> `ScoreResult`
  with figures, stderr, ci95, signatures, and per-sample values in ``result.samples[figure]``;
* `registry`: metrics and scorers by name (``METRICS``, ``SCORERS``, `get_metric`; `scorers()`,
  `judged_figures()`, `scorer_for_figure`: what every command lists and chooses from);
* `scorers`: the built-in scorers and `SampleScorer`, the default before/after comparison;
* `similarity.llamafactory_scores(predictions, references)` -> (n, 4) per-sample bleu-4, rouge-1/2/l;
* `gsm8k`: lm-eval's gsm8k extraction and exact match; `gsm8k_diagnosis`: why strict and flexible disagree;
* `uncertainty`: stderr, bootstrap intervals, the paired difference and McNemar's test for before/after.

Nothing here imports a heavy library at import time (jieba, lm-eval, sacrebleu and rouge-score are imported when
a metric first runs).
"""

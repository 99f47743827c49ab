"""The `llamafactory` metric: LLaMA-Factory's bleu-4 / rouge-1 / rouge-2 / rouge-l, spread over CPU cores.

jieba segmentation dominates the cost, so pairs are scored in worker processes (forked after jieba has
loaded its dictionary, so each worker starts warm). Results come back in input order and are the exact
floats `ComputeSimilarity` stores per sample.
"""

from __future__ import annotations

import multiprocessing
import sys
from typing import Sequence

import numpy as np

from ftbench import __version__
from ftbench.api.metrics import SampleMetric, format_signature
from ftbench.metrics.environment import available_cpus, package_version
from ftbench.metrics.llamafactory import FIGURES, ROUGE_CHINESE_DEFINITION, score_pair
from ftbench.metrics.segment import segmenter

# Below this many pairs, starting workers costs more than it saves.
_MIN_PAIRS_PER_WORKER = 200


def _score_chunk(pairs: list[tuple[str, str]]) -> list[tuple[float, float, float, float]]:
    cut = segmenter().cut
    return [score_pair(predict, label, cut) for predict, label in pairs]


def _pool_context():
    # fork starts workers with jieba already loaded; but forking a process that runs torch's threads can
    # deadlock, so a caller that has imported torch gets fresh (spawned) workers instead
    if "fork" in multiprocessing.get_all_start_methods() and "torch" not in sys.modules:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def llamafactory_scores(predictions: Sequence[str], references: Sequence[str], jobs: int | None = None) -> np.ndarray:
    """(n, 4) array of per-sample bleu-4, rouge-1, rouge-2, rouge-l, as LLaMA-Factory stores them.

    ``jobs``: worker processes (None: one per available CPU when there are enough pairs; 1: in-process).
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    pairs = list(zip(predictions, references))
    n = len(pairs)
    if jobs is None:
        jobs = min(available_cpus(), max(1, n // _MIN_PAIRS_PER_WORKER))
    segmenter()  # load jieba's dictionary before any fork, so workers inherit it
    if jobs <= 1 or n < 2:
        rows = _score_chunk(pairs)
    else:
        size = max(16, min(1000, n // (jobs * 8) + 1))  # enough chunks to keep both cores busy to the end
        chunks = [pairs[i : i + size] for i in range(0, n, size)]
        with _pool_context().Pool(jobs) as pool:
            rows = [row for part in pool.imap(_score_chunk, chunks) for row in part]
    return np.array(rows, dtype=np.float64).reshape(n, len(FIGURES))


class LlamaFactorySimilarity(SampleMetric):
    """bleu-4 and rouge-1/2/l exactly as LLaMA-Factory's `do_predict` computes and averages them."""

    name = "llamafactory"
    figures = FIGURES

    def __init__(self, jobs: int | None = None):
        self.jobs = jobs

    def per_sample(self, predictions, references):
        table = llamafactory_scores(predictions, references, self.jobs)
        return {figure: table[:, i] for i, figure in enumerate(FIGURES)}

    def signatures(self) -> dict[str, str]:
        common = dict(scale=100, round=4, agg="mean", empty=None)
        bleu = format_signature(
            "bleu-4",
            def_="llamafactory",
            tok="char",
            order=4,
            smooth="nltk-method3",
            **common,
            nltk=package_version("nltk"),
            ftbench=__version__,
        )
        sigs = {"bleu-4": bleu}
        for figure in FIGURES[1:]:
            sigs[figure] = format_signature(
                figure,
                def_="llamafactory",
                tok=f"jieba-{package_version('jieba')}-hmm",
                ngram="distinct",
                stat="f",
                **dict(common, empty=0),
                rouge_chinese=ROUGE_CHINESE_DEFINITION,
                ftbench=__version__,
            )
        return sigs

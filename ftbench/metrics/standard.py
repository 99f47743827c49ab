"""Standard similarity metrics under their own names, never LLaMA-Factory's: sacreBLEU corpus BLEU and
rouge-score's rouge1/rouge2/rougeL/rougeLsum. Opt-in (`--metrics`), since they answer a different
question (corpus-level BLEU; Google's ROUGE with its own tokeniser) than LLaMA-Factory's figures.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from ftbench import __version__
from ftbench.api.metrics import CorpusMetric, SampleMetric, format_signature
from ftbench.metrics.environment import package_version

# Han, kana, hangul: text in these scripts needs sacreBLEU's "zh" tokeniser (13a leaves each clause one token)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def has_cjk(text: str) -> bool:
    return _CJK.search(text) is not None


class SacreBleu(CorpusMetric):
    """sacreBLEU corpus BLEU (0-100). Tokeniser "auto": `zh` if any reference has CJK text, else `13a`."""

    name = "sacrebleu"
    figures = ("sacrebleu",)

    def __init__(self, tokenize: str = "auto"):
        self.tokenize = tokenize
        self._bleu = None

    def _metric(self, references: Sequence[str]):
        from sacrebleu.metrics import BLEU

        tokenize = self.tokenize
        if tokenize == "auto":
            tokenize = "zh" if any(_CJK.search(r) for r in references) else "13a"
        self._bleu = BLEU(tokenize=tokenize)
        return self._bleu

    def statistics(self, predictions, references):
        bleu = self._metric(references)
        # per-segment [hyp_len, ref_len, correct_1..4, total_1..4]; summed, they give the corpus score
        stats = bleu._extract_corpus_statistics(list(predictions), [list(references)])
        return {"sacrebleu": np.array(stats, dtype=np.float64).reshape(len(predictions), -1)}

    def from_totals(self, figure, totals):
        return float(self._bleu._compute_score_from_stats([int(round(x)) for x in totals]).score)

    def signatures(self):
        if self._bleu is None:
            self._metric([])
        return {"sacrebleu": "sacrebleu|" + self._bleu.get_signature().format()}


class RougeScore(SampleMetric):
    """rouge-score (Google) F-measures ×100, averaged over samples, default tokeniser, no stemmer — what
    HF `evaluate.load("rouge")` computes per sample. Its tokeniser keeps only [a-z0-9]: Chinese text
    scores 0, use LLaMA-Factory's rouge-* for Chinese."""

    name = "rouge-score"
    figures = ("rouge1", "rouge2", "rougeL", "rougeLsum")

    def per_sample(self, predictions, references):
        from rouge_score import rouge_scorer

        scorer = rouge_scorer.RougeScorer(list(self.figures), use_stemmer=False)
        rows = [scorer.score(ref, pred) for pred, ref in zip(predictions, references)]
        return {f: np.array([row[f].fmeasure * 100 for row in rows], dtype=np.float64) for f in self.figures}

    def signatures(self):
        return {
            f: format_signature(
                f,
                def_="rouge-score",
                tok="rouge-score-default(a-z0-9-only)",
                stem="no",
                split="newline" if f == "rougeLsum" else None,
                stat="f",
                scale=100,
                agg="mean",
                rouge_score=package_version("rouge_score"),
                ftbench=__version__,
            )
            for f in self.figures
        }

"""ftbench's similarity scorer as a Hugging Face `evaluate` module: LLaMA-Factory's per-sample BLEU-4 and ROUGE-1/2/L (jieba tokenisation, x100, averaged), exactly as ftbench score and LLaMA-Factory's do_predict compute them."""

import evaluate

import datasets
from ftbench.metrics.scoring import score_pairs

_DESCRIPTION = "LLaMA-Factory's per-sample BLEU-4 and ROUGE-1/2/L (jieba tokenisation, x100, averaged), exactly as ftbench score and LLaMA-Factory's do_predict compute them."
_KWARGS = """predictions: list of generated texts; references: list of reference texts (same length).
Returns a dict figure -> value, the figures of `ftbench score --task similarity`."""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class FtbenchSimilarity(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references):
        return dict(score_pairs(list(predictions), list(references), scorer="similarity").metrics)

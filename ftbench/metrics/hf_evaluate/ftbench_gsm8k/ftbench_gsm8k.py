"""ftbench's gsm8k scorer as a Hugging Face `evaluate` module: lm-eval's GSM8K strict-match and flexible-extract exact match, exactly as ftbench score computes them."""

import evaluate

import datasets
from ftbench.metrics.scoring import score_pairs

_DESCRIPTION = "lm-eval's GSM8K strict-match and flexible-extract exact match, exactly as ftbench score computes them."
_KWARGS = """predictions: list of generated texts; references: list of reference texts (same length).
Returns a dict figure -> value, the figures of `ftbench score --task gsm8k`."""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class FtbenchGsm8k(evaluate.Metric):
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
        return dict(score_pairs(list(predictions), list(references), scorer="gsm8k").metrics)

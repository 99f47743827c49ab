"""An example scorer plug-in (docs/architecture.md, "Where to add"): one module holding a metric and the scorer
that uses it, installed through entry points in the `ftbench.metrics` and `ftbench.scorers` groups. A
train-and-compare run then evaluates its held-out split with it, beside the built-in scorers."""

from __future__ import annotations

import numpy as np

from ftbench.api.metrics import SampleMetric
from ftbench.metrics.scorers import SampleScorer


class ExactText(SampleMetric):
    """1 when the prediction equals the reference after stripping spaces, else 0."""

    name = "exact-text"
    figures = ("exact",)

    def per_sample(self, predictions, references):
        return {"exact": np.array([float(p.strip() == r.strip()) for p, r in zip(predictions, references)])}

    def signatures(self):
        return {"exact": "exact|strip:yes|example-plugin"}


class ExactScorer(SampleScorer):
    """Exact match of the whole answer on the held-out split (an accuracy: McNemar applies)."""

    name = "exact"
    description = "exact match of the whole answer (the example scorer plug-in)"
    default_metrics = ("exact-text",)
    figures = ("exact",)
    primary = "exact"
    accuracies = ("exact",)
    eval_set = "the held-out split"

    def eval_samples(self, held_out, settings):
        return list(held_out)

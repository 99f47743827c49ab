"""The `retention-drift` scorer: how far the fine-tune moved the model from itself, without generating anything.
The base model's own answers to the retention prompts are scored by likelihood, under the base model (before)
and under the fine-tuned one (after): ``base-answer-nll`` is the mean over prompts of the per-token negative
log-likelihood (nats) of those answers. Its delta, the NLL increase, is how much less the fine-tuned model would
say what the base model said; 0 when nothing moved. One forward pass per batch (`inference.likelihood`).

It runs the model itself (`Scorer.runs_model`), after the retention answers of the same side exist, with the
model the side generated with (`takes_loaded_model`): each side writes `retention-drift_<side>.json` (the model,
the adapter's hash, a row per prompt), kept while those match. On the before side the base model has just
generated those answers: their likelihoods come from the log-probabilities each token was chosen with
(`api.generation.PromptSet.scores`; the same figure up to float rounding, where the answer's text tokenizes back
to the tokens chosen), and only the other answers take a forward pass.
"""

from __future__ import annotations

import os

from ftbench.api.metrics import Comparison, Scorer, format_signature
from ftbench.metrics.retention import RetentionScorer

BATCH = 8


class RetentionDriftScorer(Scorer):
    """The base model's answers to the retention prompts, scored by likelihood before and after the fine-tune."""

    name = "retention-drift"
    description = "per-token NLL of the base model's own retention answers, under the base and the fine-tuned model"
    eval_set = "general prompts (retention), the base model's answers scored by likelihood"
    sample_unit = "general prompts"
    figures = ("base-answer-nll",)
    primary = "base-answer-nll"
    judged = ()
    higher_is_better = False
    runs_model = True
    takes_loaded_model = True
    likelihood_of = RetentionScorer.name
    predictions_file = "{name}_{side}.json"

    def eval_samples(self, held_out, settings):
        return RetentionScorer().eval_samples(held_out, settings)

    def run_model(self, samples, model, adapter, settings, side, path, quiet, loaded=None):
        from ftbench.data.predictions import adapter_sha256, read_prediction_rows
        from ftbench.io import sha256_of_texts, write_json

        answers_file = os.path.join(os.path.dirname(path), RetentionScorer().prediction_file("before"))
        base = read_prediction_rows(answers_file)
        made_by = {
            "model": model,
            "adapter": adapter,
            "adapter_sha256": adapter_sha256(adapter),
            "n": len(base),
            # other base answers (another prompt set): scored again
            "answers_sha256": sha256_of_texts(t for r in base for t in (r["prompt"], r["predict"])),
        }
        if os.path.exists(path) and _header(path) == made_by:
            return
        # the before side's answers are the loaded model's own: their likelihoods came with them, where known
        known = (loaded.answer_scores.get(self.likelihood_of) or {}) if loaded is not None and side == "before" else {}
        write_json(path, {**made_by, "rows": _score(base, model, adapter, settings, loaded, known)})

    def read_rows(self, path):
        """One side's rows, checked: a damaged or hand-edited file is one line asking for a rerun."""
        from ftbench.api.errors import InputError
        from ftbench.data.run_files import read_json_file

        value = read_json_file(path)
        rows = value.get("rows") if isinstance(value, dict) else None
        fields = {"prompt": str, "answer": str, "nll": (int, float), "tokens": int}
        if not isinstance(rows, list) or not all(
            isinstance(r, dict)
            and all(isinstance(r.get(k), t) and not isinstance(r.get(k), bool) for k, t in fields.items())
            for r in rows
        ):
            raise InputError(
                f"{path}: not a retention-drift file (rows of prompt/answer/nll/tokens): delete it and rerun"
            )
        return rows

    def headline_lines(self, detail, comparison):
        """How much less likely the fine-tuned model finds the base model's own answers, in words."""
        e = comparison.get(self.primary)
        if not e:
            return []
        ci, delta = e.get("delta_ci95"), e["delta"]
        interval = f", 95% CI of the change {ci[0]:+.3g}…{ci[1]:+.3g}" if ci else ""
        return [
            f"Drift: the fine-tuned model finds the base model's own answers {abs(delta):.3g} nats per token "
            f"{'less' if delta >= 0 else 'more'} likely (perplexity {_perplexity_ratio(delta)}{interval})."
        ]

    def compare(self, before, after):
        from ftbench import __version__
        from ftbench.metrics.uncertainty import paired_difference

        def per_token(rows):
            return [r["nll"] / r["tokens"] if r["tokens"] else 0.0 for r in rows]

        xs, ys = per_token(before), per_token(after)
        n = len(xs)
        paired = paired_difference(ys, xs) if n else {"ci95": None, "stderr": None}
        figure = self.primary
        entry = {
            "before": _mean(xs),
            "after": _mean(ys),
            "delta": _mean(ys) - _mean(xs),
            "before_ci95": _interval(xs),
            "after_ci95": _interval(ys),
            "delta_ci95": paired["ci95"],
            "delta_stderr": paired["stderr"],
            "wins": sum(y < x for x, y in zip(xs, ys)),
            "losses": sum(y > x for x, y in zip(xs, ys)),
            "ties": sum(y == x for x, y in zip(xs, ys)),
        }
        rows = [
            {
                "i": i,
                "scorer": self.name,
                "primary": figure,
                "prompt": before[i]["prompt"],
                "reference": "",
                "before": before[i]["answer"],
                "after": before[i]["answer"],  # the same answer, scored by the other model
                "scores_before": {figure: xs[i]},
                "scores_after": {figure: ys[i]},
                "status": "improved" if ys[i] < xs[i] else "regressed" if ys[i] > xs[i] else "unchanged",
            }
            for i in range(n)
        ]
        signature = format_signature(
            figure, answers="base-greedy", unit="nats-per-token", mean="over-prompts", ftbench=__version__
        )
        side = {"scorer": self.name, "n": n}
        return Comparison(self.name, n, {figure: entry}, {figure: signature}, side, dict(side), rows)


def _perplexity_ratio(delta: float) -> str:
    import math

    return f"×{math.exp(delta):.2f}" if delta < 50 else "beyond ×e^50"


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _interval(values: list[float]) -> list[float] | None:
    """The mean's 95% percentile-bootstrap interval over prompts."""
    import numpy as np

    from ftbench.metrics.uncertainty import Bootstrap, percentile_interval

    return percentile_interval(Bootstrap(len(values)).means(np.array(values))[:, 0]) if len(values) >= 2 else None


def _header(path: str) -> dict | None:
    """What made a drift file (its keys but the rows), None when it cannot be read (then it is made again)."""
    from ftbench.api.errors import FtbenchError
    from ftbench.data.run_files import read_json_file

    try:
        value = read_json_file(path)
    except FtbenchError:
        return None
    return {k: v for k, v in value.items() if k != "rows"} if isinstance(value, dict) else None


def _score(base: list[dict], model: str, adapter: str | None, settings, loaded, known: dict) -> list[dict]:
    """A row per retention prompt: its base answer's summed NLL and token count under ``model`` (+ ``adapter``):
    ``known`` ones (row index -> (NLL, tokens), from the log-probabilities the answers were generated with), the
    others in forward passes, with the ``loaded`` side's model when the run holds it, else a copy loaded here."""
    from ftbench.inference.likelihood import answer_nll
    from ftbench.inference.models import load_model_for_generation, load_tokenizer

    missing = [k for k in range(len(base)) if k not in known]
    scored = dict(known)
    if missing:
        if loaded is None:
            lm, tokenizer = load_model_for_generation(model, adapter, device=settings.device), load_tokenizer(model)
        else:
            lm, tokenizer = loaded.model, loaded.tokenizer
        prompts, answers = [base[k]["prompt"] for k in missing], [base[k]["predict"] for k in missing]
        scored.update(zip(missing, answer_nll(lm, tokenizer, prompts, answers, BATCH)))
        del lm
    return [
        {
            "prompt": r["prompt"],
            "answer": r["predict"],
            "nll": float(scored[k][0]),
            "tokens": scored[k][1],
            "scored_by": "generation" if k in known else "forward pass",
        }
        for k, r in enumerate(base)
    ]

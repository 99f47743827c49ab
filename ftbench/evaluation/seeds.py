"""Several trainings that differ only in their seed, read as one answer: every figure is the mean over the seeds,
its delta's 95% interval resamples the training seeds and the held-out samples together (the two-level bootstrap
of `metrics.uncertainty.seed_and_sample_means`), and each seed's own value and the seed-to-seed spread are kept,
so "did it help?" is decided against training noise as well as sample noise.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from ftbench.api.metrics import Comparison
from ftbench.evaluation.comparison import figure_evidence
from ftbench.metrics.registry import SCORERS
from ftbench.metrics.uncertainty import SEED_CI_METHOD, percentile_interval, seed_and_sample_means, seed_spread


def combine_seeds(scorer: str, per_seed: list[Comparison], seeds: list[int]) -> dict:
    """figure -> the comparison entry over every seed (``per_seed[k]``: seed ``seeds[k]``'s before/after
    comparison, the same base predictions on each): before, the mean after and delta, the two-level 95% CI of
    the delta, each seed's after and delta, their standard deviation, and the verdict in words."""
    scoring = SCORERS.create(scorer)
    first = per_seed[0]
    out = {}
    for figure, entry in first.figures.items():
        if entry is None:
            out[figure] = None
            continue
        deltas = _per_sample_deltas(per_seed, figure)
        ci = percentile_interval(seed_and_sample_means([deltas])[:, 0]) if deltas is not None else None
        seed_delta = [c.figures[figure]["delta"] for c in per_seed]
        n = entry.get("n", first.n)  # a figure over part of the samples (a benchmark task's documents) says so
        combined = {
            "before": entry["before"],
            "after": float(np.mean([c.figures[figure]["after"] for c in per_seed])),
            "delta": float(np.mean(seed_delta)),
            "delta_ci95": ci,
            "before_ci95": entry.get("before_ci95"),
            "ci_covers": f"{n} {scoring.sample_unit} and {len(seeds)} training seeds ({SEED_CI_METHOD})",
            "seeds": {
                "seeds": list(seeds),
                "after": [c.figures[figure]["after"] for c in per_seed],
                "delta": seed_delta,
                "delta_sd": seed_spread(seed_delta),
                "sample_ci95": [c.figures[figure].get("delta_ci95") for c in per_seed],
            },
        }
        evidence = figure_evidence(scoring, combined, n, seeds=len(seeds))
        combined["verdict"] = asdict(evidence)
        out[figure] = combined
    return out


def _per_sample_deltas(per_seed: list[Comparison], figure: str) -> np.ndarray | None:
    """(seeds, samples) after − before of one figure, from the per-sample rows that hold it (a benchmark's rows
    hold their own task's figures); None where a figure has no per-sample values (its interval cannot be
    resampled)."""
    try:
        deltas = [
            [
                float(r["scores_after"][figure]) - float(r["scores_before"][figure])
                for r in c.rows
                if figure in r["scores_after"]
            ]
            for c in per_seed
        ]
    except (KeyError, TypeError, ValueError):
        return None
    return np.array(deltas) if deltas and deltas[0] and len({len(d) for d in deltas}) == 1 else None

"""How uncertain a figure is: lm-eval's standard error, a seeded, vectorised 95% bootstrap interval, and for
before/after comparisons the paired difference and McNemar's test.

The standard error is lm-eval's `mean_stderr` (sample standard deviation with Bessel's correction over
sqrt(n)), computed with the same Python arithmetic so the printed value matches lm-eval's. The bootstrap
draws the same resamples for every figure of a run (fixed seed), so intervals of different figures, and of
two runs over the same number of samples, are computed from identical draws.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator, Sequence

import numpy as np

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 1234
STDERR_METHOD = "lm-eval mean_stderr: sample std (ddof=1) / sqrt(n)"
CI_METHOD = f"percentile bootstrap over samples, {BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}"


def mean_stderr(values: Sequence[float]) -> float | None:
    """lm-eval's ``mean_stderr`` (None for fewer than two values, where lm-eval has no estimate)."""
    arr = [float(x) for x in values]
    if len(arr) < 2:
        return None
    mu = sum(arr) / len(arr)
    return math.sqrt(sum([(x - mu) ** 2 for x in arr]) / (len(arr) - 1)) / math.sqrt(len(arr))


class Bootstrap:
    """Resamples of n sample indices, regenerated identically from the seed for every use."""

    def __init__(self, n: int, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED):
        self.n, self.resamples, self.seed = n, resamples, seed

    def _index_chunks(self, width: int) -> Iterator[np.ndarray]:
        rng = np.random.default_rng(self.seed)
        # bound the (chunk, n, width) gather to ~32 MB
        chunk = max(1, min(self.resamples, 4_000_000 // max(1, self.n * width)))
        done = 0
        while done < self.resamples:
            size = min(chunk, self.resamples - done)
            yield rng.integers(0, self.n, size=(size, self.n))
            done += size

    def means(self, values: np.ndarray) -> np.ndarray:
        """(resamples, figures) means of a (n, figures) value matrix."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        out = [values[idx].sum(axis=1) / self.n for idx in self._index_chunks(values.shape[1])]
        return np.concatenate(out, axis=0)

    def totals(self, stats: np.ndarray) -> np.ndarray:
        """(resamples, k) column sums of resampled (n, k) statistics."""
        stats = np.asarray(stats, dtype=np.float64)
        return np.concatenate([stats[idx].sum(axis=1) for idx in self._index_chunks(stats.shape[1])], axis=0)


def percentile_interval(draws: np.ndarray) -> list[float] | None:
    """The 2.5th and 97.5th percentiles of bootstrap draws, or None if there are none."""
    if draws.size == 0:
        return None
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return [float(lo), float(hi)]


def mean_intervals(columns: dict[str, np.ndarray], n: int) -> dict[str, list[float] | None]:
    """figure -> 95% bootstrap interval of the mean, all figures from the same resamples."""
    if n < 2 or not columns:
        return {name: None for name in columns}
    names = list(columns)
    draws = Bootstrap(n).means(np.column_stack([np.asarray(columns[k], dtype=np.float64) for k in names]))
    return {name: percentile_interval(draws[:, i]) for i, name in enumerate(names)}


def corpus_uncertainty(
    stats: np.ndarray, from_totals: Callable[[np.ndarray], float]
) -> tuple[float | None, list[float] | None]:
    """(bootstrap standard error, 95% bootstrap interval) of a corpus figure from per-sample statistics.

    lm-eval also bootstraps the standard error of corpus-level figures (BLEU, chrF, TER).
    """
    n = len(stats)
    if n < 2:
        return None, None
    draws = np.array([from_totals(row) for row in Bootstrap(n).totals(stats)])
    return float(np.std(draws, ddof=1)), percentile_interval(draws)


def paired_difference(after: Sequence[float], before: Sequence[float]) -> dict[str, float | list[float] | None]:
    """Mean of after-before over the same samples, its standard error and 95% bootstrap interval.

    For before/after comparisons: on 100 samples a 0.5-point gain usually has an interval spanning 0.
    """
    a, b = np.asarray(after, dtype=np.float64), np.asarray(before, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired difference needs the same samples: {a.shape} vs {b.shape}")
    diff = a - b
    n = len(diff)
    ci = percentile_interval(Bootstrap(n).means(diff)[:, 0]) if n >= 2 else None
    return {"difference": float(np.mean(diff)) if n else float("nan"), "stderr": mean_stderr(diff.tolist()), "ci95": ci}


def mcnemar(before: Sequence[bool], after: Sequence[bool]) -> dict:
    """McNemar's exact test on paired correctness: b = wrong→right, c = right→wrong; two-sided binomial p."""
    b = sum(1 for x, y in zip(before, after) if not x and y)
    c = sum(1 for x, y in zip(before, after) if x and not y)
    return {
        "wrong_to_right": b,
        "right_to_wrong": c,
        "p_value": sign_test(b, c)["p_value"],
        "method": "McNemar exact (two-sided binomial on discordant pairs)",
    }


def sign_test(wins: int, losses: int) -> dict:
    """Two-sided exact sign test of wins against losses (ties left out): the binomial probability of a split at
    least this uneven if either side were as likely to win."""
    n = wins + losses
    p = 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2**n)
    return {"wins": wins, "losses": losses, "p_value": p, "method": "exact two-sided sign test (ties left out)"}


SEED_CI_METHOD = (
    f"two-level percentile bootstrap, {BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}: each "
    "resample draws the held-out samples (shared by every run) and, independently for each setting, "
    "its training seeds, both with replacement"
)


def seed_and_sample_means(
    per_run: list, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> np.ndarray:
    """(resamples, runs) bootstrap means of runs trained with several seeds and scored on the same samples.

    ``per_run[r]`` is a (seeds, n) array: run r's per-sample values under each of its training seeds. Every
    resample draws one set of sample indices for all runs (the held-out samples are shared, so differences stay
    paired) and, for each run independently, a resample of its seeds (trainings with other seeds are independent);
    the run's value is the mean over those seeds and samples. With one seed per run this is the sample bootstrap
    alone (`Bootstrap.means`), the same draws."""
    arrays = [np.atleast_2d(np.asarray(v, dtype=np.float64)) for v in per_run]
    n = arrays[0].shape[1]
    if any(a.shape[1] != n for a in arrays):
        raise ValueError("every run must be scored on the same samples")
    if n < 2:
        return np.array([[a.mean() for a in arrays]])
    sample_means = Bootstrap(n, resamples, seed).means(np.concatenate(arrays, axis=0).T)  # (resamples, all seeds)
    rng = np.random.default_rng(seed + 1)
    out, start = np.empty((len(sample_means), len(arrays))), 0
    for r, a in enumerate(arrays):
        block = sample_means[:, start : start + len(a)]
        start += len(a)
        if len(a) == 1:
            out[:, r] = block[:, 0]
        else:
            picks = rng.integers(0, len(a), size=(len(block), len(a)))
            out[:, r] = np.take_along_axis(block, picks, axis=1).mean(axis=1)
    return out


def seed_spread(per_seed_means) -> float | None:
    """The seed-to-seed standard deviation (ddof=1) of a figure, or None with fewer than two seeds."""
    values = [float(x) for x in per_seed_means]
    return float(np.std(values, ddof=1)) if len(values) >= 2 else None

"""Standard errors as lm-eval reports them, and reproducible bootstrap intervals."""

from __future__ import annotations

import random

import numpy as np
import pytest

from ftbench.metrics.scoring import score_pairs
from ftbench.metrics.uncertainty import Bootstrap, mean_intervals, mean_stderr, paired_difference


def test_stderr_is_lm_evals():
    lm_metrics = pytest.importorskip("lm_eval.api.metrics")
    rng = random.Random(5)
    for n in (2, 3, 10, 101, 1319):
        values = [round(rng.random() * 100, 4) for _ in range(n)]
        assert mean_stderr(values) == lm_metrics.mean_stderr(values)
        binary = [float(rng.random() < 0.4) for _ in range(n)]
        assert mean_stderr(binary) == lm_metrics.mean_stderr(binary)
    assert mean_stderr([1.0]) is None and mean_stderr([]) is None


def test_bootstrap_is_seeded_vectorised_resampling():
    values = np.random.default_rng(0).random((57, 2))
    draws = Bootstrap(57, resamples=200).means(values)
    rng = np.random.default_rng(Bootstrap(57).seed)  # same draws, done naively
    naive = np.array([values[rng.integers(0, 57, size=57)].mean(axis=0) for _ in range(200)])
    assert draws.shape == (200, 2)
    assert np.allclose(draws, naive, rtol=0, atol=1e-12)
    assert np.array_equal(Bootstrap(57, resamples=200).means(values), draws)


def test_intervals_are_reproducible_and_sensible():
    rng = np.random.default_rng(1)
    x = rng.normal(50, 10, size=400)
    ci = mean_intervals({"x": x}, 400)["x"]
    assert ci == mean_intervals({"x": x}, 400)["x"]
    lo, hi = ci
    assert lo < x.mean() < hi
    # a normal-theory interval from the standard error is close to the bootstrap one
    se = mean_stderr(x.tolist())
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_small_improvements_on_few_samples_are_not_significant():
    rng = np.random.default_rng(2)
    before = rng.normal(40, 15, size=100)
    after = before + rng.normal(0.5, 8, size=100)
    diff = paired_difference(after, before)
    lo, hi = diff["ci95"]
    assert lo < 0 < hi  # a 0.5-point "gain" on 100 samples is within the noise
    with pytest.raises(ValueError):
        paired_difference([1.0, 2.0], [1.0])


def test_every_figure_has_uncertainty_and_single_sample_has_none():
    result = score_pairs(["a b c", "今天很好"], ["a b d", "今天不好"])
    assert all(result.stderr[f] is not None and result.ci95[f] is not None for f in result.metrics)
    single = score_pairs(["a"], ["a"])
    assert all(single.stderr[f] is None and single.ci95[f] is None for f in single.metrics)


def test_corpus_metric_interval_brackets_the_corpus_figure():
    pytest.importorskip("sacrebleu")
    rng = random.Random(3)
    words = "the cat sat on a mat dog ran in park".split()
    refs = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(60)]
    preds = [" ".join(w if rng.random() < 0.7 else rng.choice(words) for w in r.split()) for r in refs]
    result = score_pairs(preds, refs, metrics=["sacrebleu"])
    lo, hi = result.ci95["sacrebleu"]
    assert lo < result.metrics["sacrebleu"] < hi and result.stderr["sacrebleu"] > 0

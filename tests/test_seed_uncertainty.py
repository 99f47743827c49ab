"""Training-seed noise in the verdicts (synthetic per-seed results whose true answer is known): the two-level
bootstrap covers seed and sample noise together, so a "winner" made by seed luck is no clear winner, while a real
difference stays clear; with one seed it is the sample bootstrap unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from ftbench.evaluation.sweep import RunOutcome, compare_settings
from ftbench.metrics.uncertainty import Bootstrap, seed_and_sample_means, seed_spread

N = 200
SAMPLES = np.random.default_rng(0).normal(50, 1, N)  # per-sample difficulty, shared by every run


def _run(name: str, lr: float, offsets: list[float]) -> RunOutcome:
    noise = np.random.default_rng(int(lr * 1e6))
    seeds = [(SAMPLES + o + noise.normal(0, 0.5, N)).tolist() for o in offsets]
    return RunOutcome(
        name,
        "lr" if name != "baseline" else "baseline",
        {"lr": lr},
        100,
        np.mean(seeds, axis=0).tolist(),
        seed_scores=seeds if len(seeds) > 1 else [],
    )


def test_a_seed_luck_winner_is_no_clear_winner():
    # the same true quality; seed offsets (LoRA init, data order) as large as the gap between the settings' means
    runs = [_run("baseline", 1e-4, [3.0, -3.0]), _run("lr-3e-4", 3e-4, [4.0, -1.0])]
    single = [RunOutcome(r.name, r.lever, r.settings, 100, r.scores) for r in runs]  # seeds collapsed: samples only
    assert compare_settings(single, "lr")["clear"]  # the old reading: a "winner" from 1.5 points of seed luck
    cmp = compare_settings(runs, "lr")
    assert cmp["best"] == "lr-3e-4" and not cmp["clear"]
    lo, hi = cmp["margin_ci95"]
    assert lo < 0 < hi


def test_a_real_difference_stays_clear_under_seed_noise():
    runs = [_run("baseline", 1e-4, [0.0, 1.0, -0.5]), _run("lr-3e-4", 3e-4, [10.0, 11.0, 9.5])]
    cmp = compare_settings(runs, "lr")
    assert cmp["best"] == "lr-3e-4" and cmp["clear"]
    assert 8 < cmp["margin_ci95"][0] < cmp["margin"] < cmp["margin_ci95"][1] < 12


def test_one_seed_is_the_sample_bootstrap():
    values = np.random.default_rng(1).normal(0, 1, (N, 3))
    assert np.array_equal(seed_and_sample_means([values[:, i][None, :] for i in range(3)]), Bootstrap(N).means(values))


def test_the_two_level_interval_covers_the_seed_spread():
    # 4 seeds whose means are 0, 2, 4, 6 and no sample noise: the interval is about the seeds alone
    seeds = np.array([[float(o)] * N for o in (0, 2, 4, 6)])
    draws = seed_and_sample_means([seeds])[:, 0]
    assert draws.mean() == pytest.approx(3.0, abs=0.2)
    assert np.percentile(draws, 2.5) <= 1.0 and np.percentile(draws, 97.5) >= 5.0
    assert seed_spread([0, 2, 4, 6]) == pytest.approx(np.std([0, 2, 4, 6], ddof=1)) and seed_spread([1]) is None

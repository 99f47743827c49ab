"""The loss-curve diagnosis rules on synthetic curves with a known answer."""

from __future__ import annotations

import math

from ftbench.training.diagnosis import diagnose_training


def _rows(train, evals=(), every=10):
    rows = [{"current_steps": (i + 1) * every, "loss": v} for i, v in enumerate(train)]
    rows += [{"current_steps": s, "eval_loss": v} for s, v in evals]
    return sorted(rows, key=lambda r: r["current_steps"])


def test_still_falling_is_under_trained():
    train = [3.0 * math.exp(-i / 30) + 0.5 for i in range(40)]  # far from its floor at step 400
    evals = [(100, 2.2), (200, 1.6), (300, 1.3), (400, 1.1)]
    d = diagnose_training(_rows(train, evals))
    assert d.kind == "under-trained" and "more epochs" in d.message
    assert d.keep_step == 400


def test_eval_rising_while_train_falls_is_overfitting_from_the_minimum():
    train = [3.0 * math.exp(-i / 8) + 0.1 for i in range(60)]
    evals = [(100, 2.0), (200, 1.5), (300, 1.62), (400, 1.8), (500, 2.1), (600, 2.4)]
    d = diagnose_training(_rows(train, evals))
    assert d.kind == "overfitting"
    assert d.keep_step == 200 and "step 200" in d.message and "checkpoint 200" in d.message


def test_flat_loss_is_not_converging():
    train = [2.5 + 0.02 * math.sin(i) for i in range(50)]
    d = diagnose_training(_rows(train, [(250, 2.49), (500, 2.5)]))
    assert d.kind == "not-converging" and "learning rate" in d.message


def test_flattened_loss_is_converged():
    train = [2.0 * math.exp(-i / 5) + 0.8 for i in range(60)]
    evals = [(200, 1.0), (400, 0.95), (600, 0.95)]
    d = diagnose_training(_rows(train, evals))
    assert d.kind == "converged"


def test_nan_is_diverged():
    d = diagnose_training(_rows([2.0, 1.5, float("nan"), float("nan")]))
    assert d.kind == "diverged" and "step 30" in d.message


def test_a_single_noisy_late_bump_is_not_overfitting():
    train = [3.0 * math.exp(-i / 8) + 0.1 for i in range(60)]
    evals = [(100, 2.0), (200, 1.5), (300, 1.4), (400, 1.45), (500, 1.39), (600, 1.38)]
    assert diagnose_training(_rows(train, evals)).kind != "overfitting"


def test_too_few_points():
    assert diagnose_training(_rows([2.0, 1.9])).kind == "too-short"

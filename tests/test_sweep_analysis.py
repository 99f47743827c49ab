"""The sweep's reading rules on synthetic results with known answers: the learning-curve fit recovers the slope
it was built with, and each verdict says what the numbers say (and "no clear winner" when they do not)."""

from __future__ import annotations

import numpy as np
import pytest

from ftbench.evaluation.sweep import (
    RunOutcome,
    analyse,
    compare_settings,
    epoch_curve,
    learning_curve,
    metric_by_checkpoint,
)
from ftbench.training.diagnosis import diagnose_training, divergence_step

N = 60


def _scores(mean: float, spread: float, seed: int) -> list[float]:
    """N per-sample scores with exactly this mean."""
    x = np.random.default_rng(seed).normal(0, spread, N)
    return (x - x.mean() + mean).tolist()


def _data_runs(slope: float, spread: float = 5.0, shared_noise: bool = True) -> list[RunOutcome]:
    noise = np.random.default_rng(0).normal(0, spread, N)
    runs = []
    for i, (size, lever) in enumerate(((100, "data"), (200, "data"), (400, "baseline"))):
        mean = 30 + slope * np.log2(size / 100)
        scores = (noise - noise.mean() + mean) if shared_noise else np.array(_scores(mean, spread, i))
        runs.append(RunOutcome(f"data-{size}", lever, {"data": size / 400}, size, scores.tolist()))
    return runs


def test_learning_curve_recovers_the_slope_per_doubling():
    curve = learning_curve(_data_runs(slope=6.0))
    assert curve["slope"] == pytest.approx(6.0)
    assert curve["intercept"] + curve["slope"] * np.log2(100) == pytest.approx(30.0)
    lo, hi = curve["slope_ci95"]
    assert lo <= 6.0 <= hi and lo > 0
    assert curve["next_size"] == 800 and curve["next_predicted"] == pytest.approx(48.0)
    assert [p["size"] for p in curve["points"]] == [100, 200, 400]


def test_more_data_pays_verdict_and_its_evidence():
    result = analyse(_data_runs(slope=6.0), "rouge-l")
    (verdict,) = [v for v in result["verdicts"] if v["lever"] == "data"]
    assert verdict["text"].startswith("more data still pays: +6.0 rouge-l per doubling (95% CI +")
    assert "collect more before tuning" in verdict["text"] and verdict["clear"]
    assert any("per doubling" in e for e in verdict["evidence"])


def test_a_flat_noisy_curve_is_no_clear_effect():
    runs = _data_runs(slope=0.0, spread=20.0, shared_noise=False)
    (verdict,) = [v for v in analyse(runs, "rouge-l")["verdicts"] if v["lever"] == "data"]
    assert (
        verdict["text"].startswith("more data: no detectable effect on 60 held-out samples (") and not verdict["clear"]
    )
    assert "spans 0" in verdict["text"] and "cannot tell whether more data would help" in verdict["text"]
    assert "held-out samples to show" in verdict["text"] or "no sign of a change" in verdict["text"]
    assert "rests on 60 held-out samples and one training seed per setting" in verdict["evidence"][-1]


def test_a_curve_identical_at_every_size_is_not_called_an_interval_spanning_0():
    """Every run scoring the same on every sample gives a zero-width interval: "the same at every size", never
    "spans 0", and never a finding that data does not matter (issue 24, point 2)."""
    same = [0.0] * 8
    runs = [RunOutcome(f"data-{n}", "data" if n < 72 else "baseline", {"data": n / 72}, n, same) for n in (18, 36, 72)]
    (verdict,) = [v for v in analyse(runs, "strict-match", scale100=False, unit="GSM8K problems")["verdicts"]]
    assert "spans 0" not in verdict["text"] and "not what holds it back" not in verdict["text"]
    assert "no detectable effect on 8 GSM8K problems (the same strict-match at every data size" in verdict["text"]
    assert not verdict["clear"]


def test_no_clear_winner_names_what_eval_loss_says():
    """The metric cannot separate two learning rates, but eval loss fell from 2.06 to 1.74 at one of them: the
    verdict says so instead of ignoring it (issue 24, point 2)."""
    runs = [
        RunOutcome(
            "base", "baseline", {"lr": 1e-4}, 72, _scores(11.7, 8, 1), checkpoints=[{"step": 4, "eval_loss": 2.06}]
        ),
        RunOutcome("lr-x3", "lr", {"lr": 3e-4}, 72, _scores(11.9, 8, 2), checkpoints=[{"step": 4, "eval_loss": 1.74}]),
    ]
    (verdict,) = [v for v in analyse(runs, "rouge-l")["verdicts"] if v["lever"] == "lr"]
    assert verdict["text"].startswith("learning rate: no clear winner by rouge-l") and not verdict["clear"]
    assert "eval loss, over every held-out token, is lowest at 0.0003 (1.74 against 2.06 at 0.0001)" in verdict["text"]


def test_learning_rate_winner_and_divergence():
    log_ok = [{"current_steps": s, "loss": 3.0 - 0.1 * s / 10} for s in range(10, 60, 10)]
    log_bad = [
        {"current_steps": 10, "loss": 3.0},
        {"current_steps": 20, "loss": 3.5},
        {"current_steps": 40, "loss": float("nan")},
    ]
    runs = [
        RunOutcome("base", "baseline", {"lr": 1e-3}, 100, _scores(40, 3, 1), log_ok),
        RunOutcome("lr-low", "lr", {"lr": 3e-4}, 100, _scores(48, 3, 2), log_ok),
        RunOutcome(
            "lr-high",
            "lr",
            {"lr": 3e-3},
            100,
            _scores(5, 3, 3),
            log_bad,
            diverged_at=diagnose_training(log_bad).diverged_at,
        ),
    ]
    (verdict,) = [v for v in analyse(runs, "rouge-l")["verdicts"] if v["lever"] == "lr"]
    assert verdict["text"] == "learning rate: 0.0003 best; 0.003 diverged at step 40"
    assert verdict["clear"]
    assert divergence_step(log_ok) is None
    assert divergence_step([{"current_steps": 5, "loss": 2.0}, {"current_steps": 10, "loss": 3.1}]) == 10


def test_a_runs_report_and_the_sweep_agree_on_a_diverging_log(tmp_path):
    """One rule decides "diverged": a loss that climbs past 1.5x its start (finite all along) is diverged in the
    run's own diagnosis and in the sweep's verdict, at the same step; a NaN written as null reads as diverged."""
    import json

    from ftbench.io import write_jsonl
    from ftbench.training.trainer_log import read_trainer_log

    rising = [{"current_steps": s, "loss": 2.0 + 0.1 * s} for s in range(10, 110, 10)]  # 3.0 ... 12.0
    path = tmp_path / "trainer_log.jsonl"
    write_jsonl(str(path), rising)
    log = read_trainer_log(str(path))
    report = diagnose_training(log)
    assert report.kind == "diverged" and report.diverged_at == 30 and "step 30" in report.message
    ok = [{"current_steps": s, "loss": 3.0 - 0.01 * s} for s in range(10, 110, 10)]
    runs = [
        RunOutcome(
            "base", "baseline", {"lr": 1e-3}, 100, _scores(40, 3, 1), ok, diverged_at=diagnose_training(ok).diverged_at
        ),
        RunOutcome("lr-high", "lr", {"lr": 3e-3}, 100, _scores(5, 3, 3), log, diverged_at=report.diverged_at),
    ]
    (verdict,) = [v for v in analyse(runs, "rouge-l")["verdicts"] if v["lever"] == "lr"]
    assert verdict["text"].endswith("0.003 diverged at step 30")
    assert diagnose_training(ok).kind != "diverged"
    write_jsonl(str(path), ok[:3] + [{"current_steps": 40, "loss": float("nan")}])
    assert json.loads(path.read_text().splitlines()[3])["loss"] is None
    assert diagnose_training(read_trainer_log(str(path))).diverged_at == 40


def test_overlapping_settings_are_no_clear_winner():
    runs = [
        RunOutcome("a", "baseline", {"rank": 8}, 100, _scores(40.0, 15, 5)),
        RunOutcome("b", "rank", {"rank": 16}, 100, _scores(40.5, 15, 6)),
    ]
    cmp = compare_settings(runs, "rank")
    assert not cmp["clear"] and cmp["margin_ci95"][0] < 0 < cmp["margin_ci95"][1]
    (verdict,) = [v for v in analyse(runs, "rouge-l")["verdicts"] if v["lever"] == "rank"]
    assert verdict["text"].startswith("LoRA rank: no clear winner")


def test_overfitting_after_an_epoch_at_every_data_size():
    def ckpts(losses):
        return [{"step": 10 * (i + 1), "epoch": float(i + 1), "eval_loss": v} for i, v in enumerate(losses)]

    runs = _data_runs(slope=6.0)
    for r in runs:
        r.checkpoints = ckpts([2.0, 1.5, 1.8, 2.2])
    curve = epoch_curve(runs[0].checkpoints)
    assert curve["overfit"] and curve["best_epoch"] == 2.0 and not curve["still_falling"]
    (verdict,) = [v for v in analyse(runs, "rouge-l")["verdicts"] if v["lever"] == "epochs"]
    assert verdict["text"].startswith("overfits after epoch 2 at every data size")
    for r in runs:
        r.checkpoints = ckpts([2.0, 1.5, 1.2])
    (verdict,) = [v for v in analyse(runs, "rouge-l")["verdicts"] if v["lever"] == "epochs"]
    assert "still falling" in verdict["text"]


def test_a_larger_model_against_one_doubling_of_data():
    runs = _data_runs(slope=3.0)
    runs.append(RunOutcome("model-big", "model", {"model": "big-model"}, 400, _scores(60, 5, 9)))
    texts = [v["text"] for v in analyse(runs, "rouge-l")["verdicts"] if v["lever"] == "model"]
    assert "the model big-model gains more than doubling the data would" in texts
    slope_ci = learning_curve(runs[:3])["slope_ci95"]
    for mean, expected in (
        (
            30 + 3 * 2 + (slope_ci[0] + slope_ci[1]) / 2,
            "moving to big-model is worth about one doubling of the data (within its CI)",
        ),
        (30 + 3 * 2 + slope_ci[0] / 2, "doubling the data is worth more than moving to big-model"),
    ):
        runs[3] = RunOutcome("model-big", "model", {"model": "big-model"}, 400, _scores(mean, 5, 9))
        texts = [v["text"] for v in analyse(runs, "rouge-l")["verdicts"] if v["lever"] == "model"]
        assert expected in texts


def test_gsm8k_scale_uses_three_decimals():
    runs = [
        RunOutcome(
            f"d{s}",
            "baseline" if s == 400 else "data",
            {"data": s},
            s,
            ([1.0] * int(N * (0.1 + 0.1 * np.log2(s / 100))) + [0.0] * N)[:N],
        )
        for s in (100, 200, 400)
    ]
    (verdict,) = [v for v in analyse(runs, "strict-match", scale100=False)["verdicts"] if v["lever"] == "data"]
    assert "+0.100 strict-match per doubling" in verdict["text"]


def test_metric_by_checkpoint_peaks_and_rises():
    def ckpts(means, spread=2.0):
        return [
            {"step": 10 * (i + 1), "epoch": float(i + 1), "eval_loss": None, "scores": _scores(m, spread, i)}
            for i, m in enumerate(means)
        ]

    peaked = metric_by_checkpoint(ckpts([20, 40, 30]))
    assert peaked["peaked"] and not peaked["rising"] and peaked["best_epoch"] == 2.0
    assert peaked["change"] == pytest.approx(10.0) and peaked["change_ci95"][0] > 0
    rising = metric_by_checkpoint(ckpts([20, 30, 40]))
    assert rising["rising"] and not rising["peaked"]
    flat = metric_by_checkpoint(ckpts([30, 30.2, 30.1], spread=15.0))
    assert not flat["peaked"] and not flat["rising"]
    runs = _data_runs(slope=6.0)
    for r in runs:
        r.checkpoints = ckpts([20, 40, 30])
    (verdict,) = [v for v in analyse(runs, "rouge-l")["verdicts"] if v["lever"] == "epochs"]
    assert verdict["text"].startswith("rouge-l peaks at epoch 2 at every data size and falls after it (by up to 10.0)")
    assert any("rouge-l by checkpoint step 10 (epoch 1) 20.00" in e for e in verdict["evidence"])


def test_a_prediction_past_the_metrics_maximum_is_capped():
    """The default SmolLM2 sweep's curve (rouge-l 33 at 39 samples, 62 at 78) predicted 90.6 at 156 samples with a
    95% CI up to 102: a straight line promising more than ROUGE can give. Predictions stay within 0-100, and the
    verdict says the cap was applied."""
    rng = np.random.default_rng(3)
    runs = [
        RunOutcome("data-50pct", "data", {"data": 0.5}, 39, list(np.clip(rng.normal(40, 5, 12), 0, 100))),
        RunOutcome("baseline", "baseline", {"data": 1.0}, 78, list(np.clip(rng.normal(80, 5, 12), 0, 100))),
    ]
    curve = learning_curve(runs, ceiling=100.0)
    assert curve["next_predicted"] == 100.0 and curve["next_capped"] and curve["next_ci95"][1] <= 100.0
    assert learning_curve(runs)["next_predicted"] > 100.0  # uncapped: the straight line
    verdict = next(v for v in analyse(runs, "rouge-l", scale100=True)["verdicts"] if v["lever"] == "data")
    assert any("capped at 100" in e for e in verdict["evidence"])

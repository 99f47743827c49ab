"""`--seeds N`: N trainings that differ only in their seed, read as one answer (issue 21). End to end on the tiny
model through the CLI: every seed is a run folder of its own, the base model is evaluated once, each figure is the
mean over the seeds with their spread and an interval over seeds and samples, a rerun keeps finished seeds and adds
new ones, the sweep carries per-seed values; and on synthetic comparisons whose truth is known, a "gain" made of
seed luck is not called better."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

import numpy as np
import pytest
import yaml
from helpers import REPO, run_cli

from ftbench.api.metrics import Comparison
from ftbench.evaluation.seeds import combine_seeds
from ftbench.metrics.uncertainty import paired_difference

QUICK = ["num_train_epochs=1", "--gsm8k", "none", "--max-new-tokens", "24"]


def _ftbench(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "ftbench", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _json(path) -> dict:
    return json.loads(open(path, encoding="utf-8").read())


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory, tiny_model):
    out = tmp_path_factory.mktemp("seeds") / "run"
    proc = _ftbench("train-and-compare", "--model", "tiny", "--seeds", "2", "--output-dir", str(out), *QUICK)
    return out, proc


def test_every_seed_is_a_run_and_the_base_model_is_evaluated_once(two_seeds):
    out, _ = two_seeds
    seeds = [out / "seeds" / "seed-42", out / "seeds" / "seed-43"]
    for folder in seeds:
        assert (folder / "metrics.json").is_file() and (folder / "report.html").is_file()
    for folder, seed in zip(seeds, (42, 43)):  # each trained with its own seed, into its own folder
        assert yaml.safe_load((folder / "train" / "ftbench_config.yaml").read_text())["seed"] == seed
    base = (out / "predictions_before.jsonl").read_bytes()
    assert base and all((f / "predictions_before.jsonl").read_bytes() == base for f in seeds)
    first, second = (_json(f / "durations.json")["evaluate_before"] for f in seeds)
    assert second < first / 10  # the second seed read the first one's base predictions
    answers = [(f / "predictions_after.jsonl").read_text() for f in seeds]
    assert answers[0] != answers[1]  # two trainings, not one run twice


def test_the_figures_are_the_mean_over_seeds_with_their_spread(two_seeds):
    out, proc = two_seeds
    metrics = _json(out / "metrics.json")
    each = [_json(out / "seeds" / f"seed-{s}" / "metrics.json") for s in (42, 43)]
    assert metrics["seeds"]["n"] == 2 and metrics["seeds"]["seeds"] == [42, 43]
    for figure, e in metrics["comparison"].items():
        if e is None:
            continue
        deltas = [m["comparison"][figure]["delta"] for m in each]
        assert e["seeds"]["delta"] == pytest.approx(deltas)
        assert e["after"] == pytest.approx(statistics.mean(m["comparison"][figure]["after"] for m in each))
        assert e["delta"] == pytest.approx(statistics.mean(deltas))
        assert e["seeds"]["delta_sd"] == pytest.approx(statistics.stdev(deltas))
        lo, hi = e["delta_ci95"]
        assert lo <= e["delta"] <= hi
        up, down = ("better", "worse") if lo > 0 or hi < 0 else (None, None)
        if figure == "base-answer-nll":  # lower is better: the base answers' loss under the fine-tuned model
            up, down = down, up
        assert e["verdict"]["kind"] in ((up,) if lo > 0 else (down,) if hi < 0 else ("unclear", "unchanged"))
        assert "2 training seeds" in e["verdict"]["words"]
        assert metrics["signatures"][figure].endswith("|seeds:2")
    page = (out / "report.html").read_text()
    assert 'id="seeds-table"' in page and "Training noise: rouge-l changed" in page
    assert 'href="seeds/seed-42/report.html"' in page and 'href="seeds/seed-43/report.html"' in page
    assert "Training noise: rouge-l changed" in proc.stdout
    single = (out / "seeds" / "seed-42" / "report.html").read_text()
    assert "One training seed: the intervals cover the held-out samples, not training noise" in single


def test_a_rerun_keeps_finished_seeds_and_adds_new_ones(two_seeds):
    out, _ = two_seeds
    kept = {s: os.path.getmtime(out / "seeds" / f"seed-{s}" / "train_result.json") for s in (42, 43)}
    proc = _ftbench("train-and-compare", "--model", "tiny", "--seeds", "3", "--output-dir", str(out), *QUICK)
    assert "seed 42 (1/3): finished earlier, kept" in proc.stdout + proc.stderr
    assert "seed 43 (2/3): finished earlier, kept" in proc.stdout + proc.stderr
    assert all(os.path.getmtime(out / "seeds" / f"seed-{s}" / "train_result.json") == t for s, t in kept.items())
    metrics = _json(out / "metrics.json")
    assert metrics["seeds"]["seeds"] == [42, 43, 44] and len(metrics["comparison"]["rouge-l"]["seeds"]["delta"]) == 3


def test_seeds_auto_adds_a_third_seed_only_on_the_edge(two_seeds):
    """--seeds auto on the same folder: 2 seeds (both kept), and the third (kept from the rerun above) only when
    the primary figure's two-seed interval is on the edge of 0, as computed here from the seeds' own files."""
    from ftbench.data.predictions import read_prediction_rows
    from ftbench.evaluation.comparison import compare_scorer
    from ftbench.metrics.evidence import on_the_edge

    out, _ = two_seeds
    proc = _ftbench("train-and-compare", "--model", "tiny", "--seeds", "auto", "--output-dir", str(out), *QUICK)
    before = read_prediction_rows(str(out / "predictions_before.jsonl"))
    two = [
        compare_scorer(
            "similarity", before, read_prediction_rows(str(out / "seeds" / f"seed-{s}" / "predictions_after.jsonl"))
        )
        for s in (42, 43)
    ]
    edge = on_the_edge(combine_seeds("similarity", two, [42, 43])["rouge-l"]["delta_ci95"])
    assert _json(out / "metrics.json")["seeds"]["seeds"] == ([42, 43, 44] if edge else [42, 43])
    assert ("a third seed decides" in proc.stdout + proc.stderr) == edge


def test_the_edge_of_an_interval():
    from ftbench.metrics.evidence import on_the_edge
    from ftbench.recipes.sweep import PlannedRun, _on_the_edge

    assert on_the_edge([-0.5, 4.0]) and on_the_edge([0.5, 4.0]) and on_the_edge([-4.0, 0.2])
    assert not on_the_edge([2.0, 4.0]) and not on_the_edge([-3.0, 3.0]) and not on_the_edge(None)
    assert not on_the_edge([0.0, 0.0])  # the same on every sample: no seed changes that
    runs = [
        PlannedRun(n, lever, {}) for n, lever in (("baseline", "baseline"), ("data-50pct", "data"), ("lr-3e-4", "lr"))
    ]
    lr = {"best": "lr-3e-4", "runner_up": "baseline", "margin_ci95": [-0.1, 2.0]}
    assert _on_the_edge({"levers": {"lr": lr, "data": {"slope_ci95": [1.0, 3.0]}}}, runs) == {"lr-3e-4", "baseline"}
    data = {"slope_ci95": [0.1, 3.0]}
    assert _on_the_edge({"levers": {"data": data}}, runs) == {"baseline", "data-50pct"}


def test_a_folder_holding_one_seeds_run_is_not_overwritten(tmp_path, tiny_model):
    (tmp_path / "train_result.json").write_text("{}")
    result = run_cli("train-and-compare", "--model", "tiny", "--seeds", "2", "--output-dir", str(tmp_path), *QUICK)
    assert result.exit_code == 2 and "holds a run of one training seed" in result.output
    assert "Traceback" not in result.output and (tmp_path / "train_result.json").read_text() == "{}"


def _comparison(deltas: np.ndarray) -> Comparison:
    """A rouge-l comparison whose per-sample after − before values are ``deltas`` (before 50 on every sample)."""
    rows = [{"scores_before": {"rouge-l": 50.0}, "scores_after": {"rouge-l": 50.0 + float(d)}} for d in deltas]
    paired = paired_difference(50.0 + deltas, np.full(len(deltas), 50.0))
    figure = {"before": 50.0, "after": 50.0 + deltas.mean(), "delta": deltas.mean(), "delta_ci95": paired["ci95"]}
    return Comparison("similarity", len(deltas), {"rouge-l": figure}, {}, {}, {}, rows)


def test_a_gain_made_of_seed_luck_is_not_called_better():
    # two seeds of the same recipe: one lands +6, the other -4 (LoRA init, data order), sample noise small; each
    # seed alone has an interval that excludes 0, but the recipe's effect cannot be told from training noise
    noise = np.random.default_rng(7)
    lucky, unlucky = 6 + noise.normal(0, 1, 100), -4 + noise.normal(0, 1, 100)
    assert _comparison(lucky).figures["rouge-l"]["delta_ci95"][0] > 0
    luck = combine_seeds("similarity", [_comparison(lucky), _comparison(unlucky)], [42, 43])["rouge-l"]
    assert luck["verdict"]["kind"] == "unclear" and luck["delta_ci95"][0] < 0 < luck["delta_ci95"][1]
    # a recipe that helps under every seed stays "better"
    real = [_comparison(g + noise.normal(0, 1, 100)) for g in (6, 5, 7)]
    gain = combine_seeds("similarity", real, [42, 43, 44])["rouge-l"]
    assert gain["verdict"]["kind"] == "better" and 4 < gain["delta_ci95"][0] < gain["delta"] < gain["delta_ci95"][1]


def test_a_sweep_with_two_seeds_carries_each_seeds_value(tmp_path, tiny_model):
    out = tmp_path / "sweep"
    args = ["sweep", "--model", "tiny", "--seeds", "2", "--vary", "lr", "--lr-factors", "1,3", *QUICK]
    _ftbench(*args, "--output-dir", str(out), timeout=1200)
    sweep = _json(out / "sweep.json")
    assert sweep["seeds"] == 2
    for row in sweep["runs"]:
        per_seed = [_json(out / "runs" / row["name"] / "seeds" / f"seed-{s}" / "metrics.json") for s in (42, 43)]
        assert row["seeds"]["values"] == pytest.approx([m["after"]["rouge-l"] for m in per_seed])
        assert row["value"] == pytest.approx(statistics.mean(row["seeds"]["values"]))
    lr = next(v for v in sweep["analysis"]["verdicts"] if v["lever"] == "lr")
    assert any("2 training seeds per setting" in e for e in lr["evidence"])
    # the base model was evaluated by the baseline's first seed only
    durations = {
        (r, s): _json(out / "runs" / r / "seeds" / f"seed-{s}" / "durations.json")["evaluate_before"]
        for r in ("baseline", "lr-0.03")
        for s in (42, 43)
    }
    assert all(v < durations["baseline", 42] / 10 for k, v in durations.items() if k != ("baseline", 42))
    assert "per seed (sd)" in (out / "report.html").read_text()


def test_seeds_with_val_size_share_one_split(tmp_path, tiny_model):
    """val_size draws the held-out samples with the training seed (as LLaMA-Factory does): the seeds train and are
    evaluated on the first seed's split, written once, so the second seed no longer fails on "a different data
    file", and the first seed is the very run a one-seed train-and-compare of the same YAML makes."""
    config = tmp_path / "c.yaml"
    config.write_text(
        f"model_name_or_path: tiny\ndataset: {os.path.join(REPO, 'datasets', 'identity.json')}\nmax_samples: 20\n"
        "val_size: 4\nnum_train_epochs: 1\nper_device_train_batch_size: 4\nretention: none\n"
    )
    common = ["train-and-compare", "--config", str(config), "--gsm8k", "none", "--max-new-tokens", "8", "--quiet"]
    result = run_cli(*common, "--seeds", "2", "--output-dir", str(tmp_path / "seeds"))
    assert result.exit_code == 0, result.output
    result = run_cli(*common, "--output-dir", str(tmp_path / "one"))
    assert result.exit_code == 0, result.output
    seed_runs = [tmp_path / "seeds" / "seeds" / f"seed-{s}" for s in (42, 43)]
    prompts = [
        [json.loads(x)["prompt"] for x in (f / "predictions_after.jsonl").read_text().splitlines()] for f in seed_runs
    ]
    assert prompts[0] == prompts[1] and len(prompts[0]) == 4  # one held-out split
    assert (seed_runs[0] / "predictions_after.jsonl").read_bytes() == (
        tmp_path / "one" / "predictions_after.jsonl"
    ).read_bytes()
    trained = [_json(f / "metrics.json")["validation"]["trained"]["samples"] for f in seed_runs]
    assert trained == [16, 16] == [_json(tmp_path / "one" / "metrics.json")["validation"]["trained"]["samples"]] * 2

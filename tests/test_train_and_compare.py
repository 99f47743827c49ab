"""The main command end to end, as a user runs it: the tiny model's embedded demo (`--model tiny`), offline.

One real run (a subprocess of the installed console script) is shared by the tests of this file; a second
invocation on the same folder must resume (skip every finished stage) and reproduce the same figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO

from ftbench.cpu_kernels import MKL_SETTING, use_avx2_mkl

REPO_DATASETS = Path(REPO) / "datasets"

FIGURES = ("bleu-4", "rouge-1", "rouge-2", "rouge-l", "strict-match", "flexible-extract")


def _ftbench() -> str:
    return os.path.join(os.path.dirname(sys.executable), "ftbench")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, tiny_model):
    out = tmp_path_factory.mktemp("run") / "demo"
    # fewer epochs than the default demo keep the suite fast; the pipeline is the same
    cmd = [_ftbench(), "train-and-compare", "--model", "tiny", "--output-dir", str(out), "num_train_epochs=4"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc, seconds, cmd


def test_run_folder_holds_every_artefact(demo_run):
    out, _, _, _ = demo_run
    for name in (
        "report.html",
        "metrics.json",
        "predictions_before.jsonl",
        "predictions_after.jsonl",
        "gsm8k_predictions_before.jsonl",
        "gsm8k_predictions_after.jsonl",
        "trainer_log.jsonl",
        "run_config.json",
        "validation.json",
        "train/ftbench_config.yaml",
    ):
        assert (out / name).is_file(), name


def test_metrics_show_a_real_measured_improvement(demo_run):
    out, _, _, _ = demo_run
    metrics = json.loads((out / "metrics.json").read_text())
    for side in ("before", "after"):
        assert set(FIGURES) <= set(metrics[side])
    rouge = metrics["comparison"]["rouge-l"]
    assert rouge["after"] > rouge["before"] + 10 and rouge["delta_ci95"][0] > 0  # the CI excludes no change
    parsable = metrics["comparison"]["strict-parsable"]
    assert parsable["before"] < 0.2 and parsable["after"] > 0.5  # GSM8K's '#### N' answer format was learned


def test_gsm8k_strict_match_rises(demo_run):
    """After training, the tiny model gets some of its synthetic GSM8K problems right (2 of 64 at 4 epochs).
    Its labels are LLaMA-Factory's, ending in the chat template's "\\n": scored against that, no answer was ever
    right and strict-match read 0.000 -> 0.000."""
    out, _, _, _ = demo_run
    metrics = json.loads((out / "metrics.json").read_text())
    rows = [json.loads(line) for line in (out / "gsm8k_predictions_after.jsonl").read_text().splitlines()]
    assert all(r["label"].endswith("\n") for r in rows)
    for figure in ("strict-match", "flexible-extract"):
        entry = metrics["comparison"][figure]
        assert entry["before"] == 0 and entry["after"] > 0 and entry["wins"] > 0 and entry["losses"] == 0, figure
        assert entry["mcnemar"]["wrong_to_right"] == entry["wins"]


def test_checkpoint_is_the_lowest_eval_loss(demo_run):
    out, _, _, _ = demo_run
    metrics = json.loads((out / "metrics.json").read_text())
    table = json.loads((out / "train" / "checkpoints.json").read_text())["checkpoints"]
    lowest = min(c["eval_loss"] for c in table if c["eval_loss"] is not None)
    assert metrics["checkpoint"]["eval_loss"] == lowest
    assert "lowest eval loss" in metrics["checkpoint"]["reason"]
    assert metrics["training"]["diagnosis"]["kind"] in {"under-trained", "converged", "overfitting"}


def test_predictions_are_llamafactory_rows_in_order(demo_run):
    out, _, _, _ = demo_run
    rows = [json.loads(line) for line in (out / "predictions_after.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(len(rows)))
    assert all({"prompt", "predict", "label"} <= set(r) for r in rows)


def test_rerun_resumes_and_reproduces(demo_run):
    out, _, _, cmd = demo_run
    before = json.loads((out / "metrics.json").read_text())
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "already done" in proc.stderr
    after = json.loads((out / "metrics.json").read_text())
    assert after["before"] == before["before"] and after["after"] == before["after"]
    # the stages' times add up over segments: a resumed run does not report evaluate_before: 0.0 (issue 24, point 6)
    for stage, seconds in before["run"]["durations"].items():
        assert after["run"]["durations"][stage] >= seconds > 0, stage
    assert after["run"]["cost"]["seconds"] == pytest.approx(sum(after["run"]["durations"].values()), abs=0.1)
    parts = after["run"]["duration_parts"]  # inside the evaluation stages: the model load and each eval set
    for side in ("evaluate_before", "evaluate_after"):  # the eval sets are generated together, as one part
        generated = [part for part in parts[side] if part.startswith("generation (")]
        assert len(generated) == 1 and "similarity, gsm8k" in generated[0], parts[side]
    assert "load" in parts["evaluate_before"]
    # the CLI chose MKL's kernels for this CPU before torch loaded (`cpu_kernels`), and the run records it
    assert before["run"]["hardware"]["mkl_cbwr"] == os.environ.get(MKL_SETTING, use_avx2_mkl({}))
    assert "Cost of this verdict: " in (out / "report.html").read_text()
    assert after["run"]["cost"]["seconds"] >= before["run"]["cost"]["seconds"]
    assert "evaluate_before: {" not in (out / "report.html").read_text()  # no raw Python dicts in the Run section


def test_every_prediction_file_resumes_by_its_sidecar_as_ftbench_predict_does(demo_run):
    """One resume mechanism: each prediction file of the run has the sidecar `ftbench predict` writes, naming the
    model and adapter its rows came from; a file whose sidecar names another adapter is never extended."""
    out, _, _, cmd = demo_run
    metrics = json.loads((out / "metrics.json").read_text())
    for name in ("predictions", "gsm8k_predictions"):
        before = json.loads((out / f"{name}_before.jsonl.meta.json").read_text())
        after = json.loads((out / f"{name}_after.jsonl.meta.json").read_text())
        assert before["kind"] == after["kind"] == "ftbench-predict" and before["adapter"] is None
        assert after["adapter"] == os.path.abspath(metrics["checkpoint"]["path"]) and after["adapter_sha256"]
        assert before["data_sha256"] == after["data_sha256"] and before["generation"] == after["generation"]
    sidecar = out / "predictions_after.jsonl.meta.json"
    kept = sidecar.read_text()
    try:
        sidecar.write_text(kept.replace(after["adapter_sha256"], "0" * 64))
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert "predictions_after.jsonl was made from a different adapter (its weights changed)" in proc.stderr
    finally:
        sidecar.write_text(kept)


def test_trained_run_of_a_run_ftbench_trained(demo_run, tmp_path):
    """`--trained-run` on the demo's training folder: the config comes from the file the peft backend declares, the
    choice is the one rule's (the same checkpoint), and the report does not call the eval losses LLaMA-Factory's."""
    out, _, _, _ = demo_run
    again = tmp_path / "again"
    proc = subprocess.run(
        [
            _ftbench(),
            "train-and-compare",
            "--trained-run",
            str(out / "train"),
            "--output-dir",
            str(again),
            "--gsm8k",
            "none",
            "--max-new-tokens",
            "16",
            "--quiet",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    first, second = (json.loads((d / "metrics.json").read_text()) for d in (out, again))
    assert second["checkpoint"]["path"] == first["checkpoint"]["path"]
    assert second["checkpoint"]["reason"] == first["checkpoint"]["reason"]
    assert json.loads((again / "train_result.json").read_text())["best_checkpoint"] == first["checkpoint"]["path"]
    assert "Eval losses are LLaMA-Factory" not in (again / "report.html").read_text()
    assert second["run"]["eval_loss_note"] is None


def test_a_different_config_in_the_same_folder_is_refused(demo_run):
    out, _, _, cmd = demo_run
    proc = subprocess.run(cmd[:-1] + ["num_train_epochs=5"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "different config" in proc.stderr and "Traceback" not in proc.stderr


def test_report_is_self_contained(demo_run):
    out, _, _, _ = demo_run
    page = (out / "report.html").read_text()
    assert "http://" not in page and "https://" not in page and "src=" not in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page


def test_edited_data_in_the_same_folder_is_refused(tmp_path):
    """A run folder belongs to one config and one version of the data: predictions from the old data must not be
    mixed with a model trained on the new."""
    from ftbench.api.errors import UsageError
    from ftbench.recipes.train_and_compare import RunSettings, _check_same_run
    from ftbench.training.config import load_train_config

    data = tmp_path / "train.jsonl"
    data.write_text('{"instruction": "a", "input": "", "output": "b"}\n')
    cfg, _ = load_train_config(None, [f"dataset={data}", "model_name_or_path=tiny", f"output_dir={tmp_path}/t"])
    rs = RunSettings(output_dir=str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    _check_same_run(cfg, rs)  # first run: records config and data hashes
    _check_same_run(cfg, rs)  # same again: fine
    data.write_text('{"instruction": "a", "input": "", "output": "edited"}\n')
    _check_same_run(cfg, rs)  # nothing computed yet: the folder takes the edited data
    (tmp_path / "run" / "predictions_before.jsonl").write_text('{"predict": "b"}\n')  # a result now
    data.write_text('{"instruction": "a", "input": "", "output": "changed"}\n')
    with pytest.raises(UsageError, match="different config"):
        _check_same_run(cfg, rs)


def test_a_folder_where_nothing_was_computed_takes_a_changed_command(tmp_path, tiny_model):
    """A run that failed before its first result (an unreadable --gsm8k) does not lock its folder: the corrected
    command runs there (issue 24, point 5)."""
    config = tmp_path / "c.yaml"
    config.write_text(
        f"model_name_or_path: tiny\ndataset: {os.path.join(REPO, 'datasets', 'identity.json')}\nmax_samples: 12\n"
        "val_size: 4\nnum_train_epochs: 1\nper_device_train_batch_size: 4\n"
    )
    broken = tmp_path / "gsm8k.jsonl"
    broken.write_text("not json\n")
    base = [_ftbench(), "train-and-compare", "--config", str(config), "--output-dir", str(tmp_path / "run"), "--quiet"]
    first = subprocess.run(base + ["--gsm8k", str(broken)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert first.returncode in (1, 2) and "Traceback" not in first.stderr
    assert (tmp_path / "run" / "run_config.json").is_file()
    again = subprocess.run(
        base + ["--gsm8k", "none", "--max-new-tokens", "4"], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((tmp_path / "run" / "run_config.json").read_text())["compare"]["gsm8k"] is None

    # the same run says what it trained, not what the files hold, and puts LLaMA-Factory's unfilled {{name}}
    # placeholders in the headline (issue 24, point 7); max_samples takes the file's first records
    records = json.loads((REPO_DATASETS / "identity.json").read_text())
    first = records[:12]
    assert not any("{{" in r["instruction"] + r["input"] and "{{" not in r["output"] for r in first)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    trained = metrics["validation"]["trained"]
    assert metrics["validation"]["records"] == len(records)
    assert (trained["samples"], trained["held_out"]) == (8, 4)
    assert json.loads((tmp_path / "run" / "train_result.json").read_text())["train_samples"] == 8
    assert trained["with_placeholders"] + trained["held_out_references_with_placeholders"] == sum(
        "{{" in r["output"] for r in first
    )
    page = (tmp_path / "run" / "report.html").read_text()
    assert "Trained on 8 samples" in page
    assert trained["with_placeholders"] > 0  # identity.json's first records are LF's, {{name}} unfilled
    assert f"Caution: {trained['with_placeholders']} of the 8 training samples hold an unfilled" in page


def test_the_default_gsm8k_is_the_bundled_test_split_offline(tmp_path):
    """Without --gsm8k a user's config is evaluated on the GSM8K test split bundled with the checkout (offline),
    not the hub's copy, which an offline machine retried for 25 s before failing (issue 24, point 5)."""
    from ftbench.recipes.run_settings import prepare_run

    config = tmp_path / "c.yaml"
    config.write_text(f"model_name_or_path: tiny\ndataset: {os.path.join(REPO, 'datasets', 'identity.json')}\n")
    _, rs, _ = prepare_run(str(config), output_dir=str(tmp_path / "run"))
    assert rs.gsm8k == os.path.join(REPO, "datasets", "gsm8k", "test.jsonl") and os.path.isfile(rs.gsm8k)


def test_the_verdicts_follow_the_intervals_and_the_report_says_them_in_words(demo_run, tiny_model):
    """Every figure's verdict is the one its interval allows (better/worse only when the 95% CI excludes 0); the
    report and the console answer "did it help?" in words; the answers that reached the generation limit are
    counted per scorer with the model's own tokenizer (issue 24, points 2-4)."""
    from transformers import AutoTokenizer

    from ftbench.metrics.registry import scorers

    lower_is_better = {f for scorer in scorers().values() if not scorer.higher_is_better for f in scorer.figures}
    out, proc, _, _ = demo_run
    metrics = json.loads((out / "metrics.json").read_text())
    for figure, e in metrics["comparison"].items():
        lo, hi = e["delta_ci95"]
        up, down = ("worse", "better") if figure in lower_is_better else ("better", "worse")
        expected = up if lo > 0 else down if hi < 0 else "unchanged" if lo == hi == e["delta"] == 0 else "unclear"
        assert e["verdict"]["kind"] == expected, figure
    assert metrics["primary"] == "rouge-l" and metrics["comparison"]["rouge-l"]["verdict"]["kind"] == "better"
    page = (out / "report.html").read_text()
    assert "Did it help? Yes — rouge-l: +" in page and "Did it help? Yes — rouge-l: +" in proc.stdout
    assert page.count('class="card ev-up"') == sum(
        e["verdict"]["kind"] == "better" for e in metrics["comparison"].values()
    )

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    run_config = json.loads((out / "run_config.json").read_text())["compare"]
    for scorer, files, limit in (
        ("similarity", "predictions_{}.jsonl", run_config["max_new_tokens"]),
        ("gsm8k", "gsm8k_predictions_{}.jsonl", run_config["gsm8k_max_new_tokens"] or run_config["max_new_tokens"]),
    ):
        for side in ("before", "after"):
            rows = [json.loads(line) for line in (out / files.format(side)).read_text().splitlines()]
            cut = sum(len(tokenizer(r["predict"], add_special_tokens=False)["input_ids"]) >= limit for r in rows)
            assert metrics["at_limit"][scorer][side] == cut and metrics["at_limit"][scorer]["limit"] == limit


def test_evaluations_that_are_not_saved_are_said_up_front(tmp_path):
    """LF's example YAML with eval_steps 5 and save_steps 500: the eval losses between saves cannot choose a
    checkpoint, and the run says so before training (the trial of issue 24 chose "of 2 evaluations" of 6)."""
    from ftbench.recipes.run_settings import prepare_run

    config = tmp_path / "c.yaml"
    dataset = os.path.join(REPO, "datasets", "identity.json")
    config.write_text(
        f"model_name_or_path: tiny\ndataset: {dataset}\neval_strategy: steps\neval_steps: 5\nsave_steps: 500\n"
    )
    _, _, warnings = prepare_run(str(config), output_dir=str(tmp_path / "run"))
    assert any("eval_steps 5 evaluates steps that save_steps 500 does not save" in w for w in warnings)
    config.write_text(f"model_name_or_path: tiny\ndataset: {dataset}\neval_steps: 50\nsave_steps: 50\n")
    assert not any("does not save" in w for w in prepare_run(str(config), output_dir=str(tmp_path / "r2"))[2])


def test_the_default_run_measures_retention_on_the_bundled_prompts(demo_run):
    """With no --retention, the 100 bundled general prompts: the three figures with their CIs, the spread phrases
    (a list, possibly empty) in metrics.json, and the report's retention section (issue 20, point 4)."""
    out, proc, _, _ = demo_run
    metrics = json.loads((out / "metrics.json").read_text())
    bundled = json.loads((REPO_DATASETS / "retention" / "general_prompts.json").read_text())
    assert metrics["n"]["retention"] == len(bundled) == 100
    assert {r["lang"] for r in bundled} == {"en", "zh"} and sum(r["lang"] == "zh" for r in bundled) == 50
    for figure in ("same-answer", "self-rouge-l", "no-leak"):
        e = metrics["comparison"][figure]
        assert e["before"] == 100.0 and e["delta_ci95"] is not None and e["verdict"]["kind"]
    assert isinstance(metrics["retention"]["after"], list)
    page = (out / "report.html").read_text()
    assert "Retention: what the fine-tune changed on unrelated prompts" in page
    for finding in metrics["retention"]["after"][:3]:
        assert f'put "{finding["phrase"]}" into its answers to {finding["prompts"]} unrelated' in proc.stdout

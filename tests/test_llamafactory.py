"""Against a real LLaMA-Factory (its own venv, driven through its CLI): `--backend llamafactory` trains and is
compared end to end, `--trained-run` evaluates a run LLaMA-Factory made by itself, a failure inside it is one line,
and ftbench predict + score reproduce LLaMA-Factory's own do_predict rows and printed metrics exactly."""

from __future__ import annotations

import json
import math
import os
import subprocess

import pytest
import yaml

from tests.helpers import REPO, run_cli

TRAIN = {
    "stage": "sft",
    "do_train": True,
    "finetuning_type": "lora",
    "lora_target": "all",
    "lora_rank": 8,
    "dataset": "identity",
    "dataset_dir": os.path.join(REPO, "datasets"),
    "template": "qwen",
    "cutoff_len": 256,
    "max_samples": 40,
    "val_size": 0.2,
    "per_device_train_batch_size": 4,
    "per_device_eval_batch_size": 4,
    "num_train_epochs": 1.0,
    "learning_rate": 1.0e-3,
    "lr_scheduler_type": "cosine",
    "warmup_ratio": 0.1,
    "logging_steps": 1,
    "save_steps": 5,
    "report_to": "none",
    "disable_gradient_checkpointing": True,
    "flash_attn": "disabled",
}


@pytest.fixture()
def lf_env(llamafactory_cli, monkeypatch):
    monkeypatch.setenv("FTBENCH_LLAMAFACTORY_CLI", llamafactory_cli)
    for key, value in {
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "DISABLE_VERSION_CHECK": "1",
    }.items():
        monkeypatch.setenv(key, value)
    return llamafactory_cli


def write_yaml(path, **keys) -> str:
    path.write_text(yaml.safe_dump(keys, sort_keys=False))
    return str(path)


def llamafactory(cli, command: str, config: str, cwd) -> subprocess.CompletedProcess:
    done = subprocess.run([cli, command, config], capture_output=True, text=True, cwd=cwd, timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done


def test_backend_llamafactory_trains_and_compares(tiny_model, lf_env, tmp_path):
    # bf16: true as LLaMA-Factory's examples set it: LF refuses it without a CUDA GPU, ftbench sets it false here
    config = write_yaml(tmp_path / "train.yaml", model_name_or_path=tiny_model, output_dir="unused", bf16=True, **TRAIN)
    run = tmp_path / "run"
    result = run_cli(
        "train-and-compare",
        "--config",
        config,
        "--backend",
        "llamafactory",
        "--gsm8k",
        "none",
        "--max-new-tokens",
        "16",
        "--threads",
        "1",
        "--output-dir",
        str(run),
    )
    assert result.exit_code == 0, result.output[-3000:]
    train = run / "train"
    ran = yaml.safe_load((train / "ftbench_llamafactory.yaml").read_text())
    assert ran["output_dir"] == str(train) and ran["eval_strategy"] == "steps" and ran["eval_steps"] == 5
    assert ran["template"] == "qwen" and "backend" not in ran
    import torch

    assert ran["bf16"] is torch.cuda.is_available()  # on CUDA as the user wrote it; elsewhere float32
    announced = next(line for line in result.output.splitlines() if "keys set by ftbench: " in line)
    written = yaml.safe_load(open(config).read())
    assert "output_dir=" in announced
    # every key whose value differs from the user's YAML is said (train-and-compare's own defaults included)
    assert [k for k in ran if ran[k] != written.get(k) and f" {k}=" not in announced] == []
    # what the report evaluates is LLaMA-Factory's own record of the run
    state = json.loads((train / "trainer_state.json").read_text())
    evals = {h["step"]: h["eval_loss"] for h in state["log_history"] if "eval_loss" in h}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["checkpoint"]["eval_loss"] == min(evals.values())
    assert metrics["checkpoint"]["step"] == min(s for s, v in evals.items() if v == min(evals.values()))
    lf_log = [json.loads(line) for line in (train / "trainer_log.jsonl").read_text().splitlines()]
    ours = [json.loads(line) for line in (run / "trainer_log.jsonl").read_text().splitlines()]
    assert [r.get("loss") for r in ours] == [r.get("loss") for r in lf_log]
    assert (run / "report.html").exists() and metrics["after"]["rouge-l"] is not None
    assert "Eval losses are LLaMA-Factory" in (run / "report.html").read_text()
    # what it cost: the trainable parameters LLaMA-Factory reported are the adapter's own weights
    from safetensors import safe_open

    with safe_open(str(train / "adapter_model.safetensors"), "pt") as weights:
        saved = sum(math.prod(weights.get_slice(k).get_shape()) for k in weights.keys())
    assert metrics["run"]["cost"]["trainable_params"] == saved and metrics["run"]["cost"]["all_params"] > saved


@pytest.fixture(scope="module")
def lf_run(tiny_model, llamafactory_cli, tmp_path_factory):
    """A LoRA run made by `llamafactory-cli train` alone (no ftbench involved): (its YAML, its output folder)."""
    folder = tmp_path_factory.mktemp("lf-run")
    config = write_yaml(
        folder / "lf.yaml",
        model_name_or_path=tiny_model,
        output_dir=str(folder / "lf"),
        **dict(TRAIN, eval_strategy="steps", eval_steps=5),
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "DISABLE_VERSION_CHECK": "1"}
    done = subprocess.run(
        [llamafactory_cli, "train", config], capture_output=True, text=True, cwd=folder, timeout=900, env=env
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return config, folder / "lf"


def test_trained_run_evaluates_a_run_llamafactory_made(lf_run, lf_env, tmp_path):
    lf_config, lf_out = lf_run
    result = run_cli(
        "train-and-compare",
        "--trained-run",
        str(lf_out),
        "--config",
        lf_config,
        "--gsm8k",
        "none",
        "--max-new-tokens",
        "16",
        "--threads",
        "1",
        "--output-dir",
        str(tmp_path / "run"),
    )
    assert result.exit_code == 0, result.output[-3000:]
    assert "training: not run; reading the finished run" in result.output
    state = json.loads((lf_out / "trainer_state.json").read_text())
    best = min(h["eval_loss"] for h in state["log_history"] if "eval_loss" in h)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["checkpoint"]["eval_loss"] == best
    assert metrics["checkpoint"]["path"].startswith(str(lf_out))
    # a folder no backend marked is read as LLaMA-Factory's (its backend reads unmarked runs): its note is said
    assert "Eval losses are LLaMA-Factory" in (tmp_path / "run" / "report.html").read_text()
    # labels that do not lie (issue 24, point 8): LLaMA-Factory trained it, whatever backend the config names
    assert metrics["run"]["backend"] == "llamafactory" and metrics["run"]["trained_run"] == str(lf_out)
    assert "backend llamafactory" in (tmp_path / "run" / "report.html").read_text()
    # the held-out rows are LLaMA-Factory's own eval split: 8 of the first 40
    assert sum(1 for _ in open(tmp_path / "run" / "predictions_after.jsonl")) == 8
    # what it cost: LLaMA-Factory alone reported no parameter count to ftbench; the chosen adapter's weights say it
    from safetensors import safe_open

    with safe_open(os.path.join(metrics["checkpoint"]["path"], "adapter_model.safetensors"), "pt") as weights:
        saved = sum(math.prod(weights.get_slice(k).get_shape()) for k in weights.keys())
    assert metrics["run"]["cost"]["trainable_params"] == saved > 0
    # without --config, a folder LLaMA-Factory made alone does not say what it was trained on
    again = run_cli("train-and-compare", "--trained-run", str(lf_out), "--output-dir", str(tmp_path / "r2"))
    assert again.exit_code == 2 and "give --config" in again.output and "Traceback" not in again.output


def test_peft_backend_trains_like_llamafactory(lf_run, one_torch_thread, tmp_path):
    """The same YAML through ftbench's own backend: the same rows trained and held out, per-step training losses
    equal to LLaMA-Factory's (float noise only), the same final eval loss, and the result files with its keys."""
    lf_config, lf_out = lf_run
    result = run_cli("train", lf_config, f"output_dir={tmp_path / 'ftbench'}", "-q")
    assert result.exit_code == 0, result.output
    ours = [json.loads(line) for line in (tmp_path / "ftbench" / "trainer_log.jsonl").read_text().splitlines()]
    theirs = [json.loads(line) for line in (lf_out / "trainer_log.jsonl").read_text().splitlines()]
    losses = {r["current_steps"]: r["loss"] for r in ours if "loss" in r}
    lf_losses = {r["current_steps"]: r["loss"] for r in theirs if "loss" in r}
    assert losses.keys() == lf_losses.keys() and len(losses) == 8
    assert max(abs(losses[s] - lf_losses[s]) for s in losses) < 1e-5
    evals = {r["current_steps"]: r["eval_loss"] for r in ours if "eval_loss" in r}
    lf_evals = {r["current_steps"]: r["eval_loss"] for r in theirs if "eval_loss" in r}
    assert evals.keys() == lf_evals.keys() and max(abs(evals[s] - lf_evals[s]) for s in evals) < 1e-5
    for name in ("all_results.json", "train_results.json", "eval_results.json"):
        assert (
            json.loads((tmp_path / "ftbench" / name).read_text()).keys()
            == json.loads((lf_out / name).read_text()).keys()
        ), name


def test_a_failure_inside_llamafactory_is_one_line(tiny_model, lf_env, tmp_path):
    config = write_yaml(
        tmp_path / "train.yaml",
        model_name_or_path=tiny_model,
        output_dir=str(tmp_path / "out"),
        **dict(TRAIN, lora_target="no_such_module"),
    )
    result = run_cli("train", config, "--backend", "llamafactory", "-q")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert (
        len(lines) == 1
        and "LLaMA-Factory failed: ValueError: Target modules {'no_such_module'} not found" in lines[0]
        and "llamafactory.log" in lines[0]
    ), result.output


def test_predict_and_score_reproduce_llamafactory_do_predict(tiny_model, lf_env, tmp_path):
    """The same model, data, template and greedy settings: LLaMA-Factory's generated_predictions.jsonl rows and
    its printed predict_bleu-4 / predict_rouge-* equal ftbench predict's rows and ftbench score's figures."""
    keys = {
        "model_name_or_path": tiny_model,
        "stage": "sft",
        "do_predict": True,
        "predict_with_generate": True,
        "finetuning_type": "lora",
        "eval_dataset": "identity",
        "dataset_dir": os.path.join(REPO, "datasets"),
        "template": "qwen",
        "cutoff_len": 1024,
        "max_samples": 12,
        "per_device_eval_batch_size": 4,
        "max_new_tokens": 24,
        "do_sample": False,
        "flash_attn": "disabled",
        "report_to": "none",
        "output_dir": str(tmp_path / "lf"),
    }
    llamafactory(lf_env, "train", write_yaml(tmp_path / "predict.yaml", **keys), tmp_path)
    lf_rows = [json.loads(line) for line in (tmp_path / "lf" / "generated_predictions.jsonl").read_text().splitlines()]
    lf_metrics = json.loads((tmp_path / "lf" / "predict_results.json").read_text())

    out = tmp_path / "ftbench.jsonl"
    result = run_cli(
        "predict",
        "--model",
        tiny_model,
        "--data",
        os.path.join(REPO, "datasets", "identity.json"),
        "--template",
        "qwen",
        "--limit",
        "12",
        "--max-new-tokens",
        "24",
        "--batch-size",
        "4",
        "--cutoff-len",
        "1024",
        "--threads",
        "1",
        "-o",
        str(out),
        "-q",
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [{k: r[k] for k in ("prompt", "predict", "label")} for r in rows] == lf_rows
    scored = run_cli("score", str(out), "--json")
    assert scored.exit_code == 0, scored.output
    figures = json.loads(scored.stdout)
    for name in ("bleu-4", "rouge-1", "rouge-2", "rouge-l"):
        assert figures["metrics"][name] == lf_metrics[f"predict_{name}"], name


@pytest.mark.parametrize("n,val_size,seed", [(40, 0.2, 42), (90, 0.1, 7), (13, 3, 42), (7, 0.5, 0)])
def test_val_size_holds_out_the_rows_llamafactory_holds_out(n, val_size, seed):
    """LLaMA-Factory splits with datasets' train_test_split(test_size, seed); ftbench's split is the same rows in
    the same order, so either backend's run is evaluated on rows it never trained on."""
    from datasets import Dataset
    from ftbench.training.data import split

    expected = Dataset.from_dict({"i": list(range(n))}).train_test_split(
        test_size=int(val_size) if val_size > 1 else val_size, seed=seed
    )
    assert split(list(range(n)), val_size, seed) == (expected["train"]["i"], expected["test"]["i"])


def test_cursor_up_eval_lines_are_streamed(tmp_path, capsys):
    """LLaMA-Factory prefixes its intermediate eval_loss lines with a cursor-up (ESC[A): they are progress too
    (issue 24, point 10)."""
    from ftbench.backends.llamafactory import run_llamafactory

    cli = tmp_path / "llamafactory-cli"
    cli.write_text(
        "#!/bin/sh\nprintf \"\\033[A{'eval_loss': 1.2345, 'epoch': 1.0}\\n{'loss': 2.5}\\n\"\n"
        "echo '[INFO|loader.py:229] >> trainable params: 4,884,480 || all params: 139,399,488 || trainable%: 3.5039'\n"
    )
    cli.chmod(0o755)
    reported = run_llamafactory(str(cli), "x.yaml", str(tmp_path / "lf.log"), cwd=str(tmp_path), quiet=False)
    assert reported["trainable_params"] == 4_884_480 and reported["all_params"] == 139_399_488
    err = capsys.readouterr().err
    assert "llamafactory: {'eval_loss': 1.2345, 'epoch': 1.0}" in err and "llamafactory: {'loss': 2.5}" in err
    assert "\x1b" not in err


def test_overwrite_output_dir_never_wipes_a_run_to_resume(tmp_path):
    """`overwrite_output_dir: true`, kept from LLaMA-Factory's example YAMLs, would defeat "rerun to resume": with
    complete checkpoints in output_dir, the run YAML sets it false, and says so among the keys it set."""
    from ftbench.backends.llamafactory import run_yaml
    from ftbench.training.config import load_train_config

    config = tmp_path / "c.yaml"
    out = tmp_path / "out"
    config.write_text(
        f"model_name_or_path: {tmp_path}\ndataset: identity\ndataset_dir: {REPO}/datasets\n"
        f"output_dir: {out}\noverwrite_output_dir: true\n"
    )
    cfg, _ = load_train_config(str(config))
    assert run_yaml(cfg)[0]["overwrite_output_dir"] is True  # a fresh run: as the user wrote it
    (out / "checkpoint-5").mkdir(parents=True)
    (out / "checkpoint-5" / "trainer_state.json").write_text("{}")
    data, changed = run_yaml(cfg)
    assert data["overwrite_output_dir"] is False and changed["overwrite_output_dir"] is False

"""A run folder given to `--trained-run` (or an adapter to `--adapter`) is hostile input: a real tiny training
run is tampered with the ways a folder can lie, and each ends as one located line, exit 2, before the base
model is evaluated; a non-finite eval loss is never the lowest and is named; an adapter trained on another base
is refused unless `--allow-other-base`; metrics.json stays strict JSON."""

from __future__ import annotations

import json
import math
import os
import shutil
import textwrap

import pytest
from click.testing import CliRunner
from helpers import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftbench.api.errors import UsageError
from ftbench.cli import cli
from ftbench.training.checkpoints import read_trained_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = """\
model_name_or_path: tiny
dataset_dir: {datasets}
dataset: identity
max_samples: 28
val_size: 8
cutoff_len: 128
output_dir: {out}
per_device_train_batch_size: 4
learning_rate: 2.0e-2
num_train_epochs: 2
logging_steps: 2
eval_strategy: steps
eval_steps: 2
save_steps: 2
seed: 3
"""


def invoke(*args: str):
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        return CliRunner().invoke(cli, list(args))
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module")
def trained(tiny_model, tmp_path_factory):
    """One real tiny training run with a checkpoint every 2 steps (each evaluated); its folder and config."""
    tmp = tmp_path_factory.mktemp("hostile-run")
    config = tmp / "train.yaml"
    config.write_text(CONFIG.format(datasets=os.path.join(REPO, "datasets"), out=tmp / "out"))
    result = invoke("train", str(config), "--quiet")
    assert result.exit_code == 0, result.output
    return tmp / "out", config


@pytest.fixture
def run_copy(trained, tmp_path):
    out, config = trained
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    return copy, config


def trained_run(run, config, output_dir, *extra):
    return invoke(
        "train-and-compare",
        "--trained-run",
        str(run),
        "--config",
        str(config),
        "--output-dir",
        str(output_dir),
        "--gsm8k",
        "none",
        "--max-new-tokens",
        "4",
        "--quiet",
        *extra,
    )


def edit_json(path, change) -> None:
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value))  # allow_nan: NaN and -Infinity as a Trainer's json.dump writes them


def eval_steps(state: dict) -> dict[int, float]:
    return {h["step"]: h["eval_loss"] for h in state["log_history"] if "eval_loss" in h}


@pytest.mark.parametrize("bad", [float("nan"), float("-inf")])
def test_a_non_finite_eval_loss_is_never_the_lowest_and_is_named(run_copy, tmp_path, bad):
    run, config = run_copy
    state = json.loads((run / "trainer_state.json").read_text())
    losses = eval_steps(state)
    saved = {int(p.name.split("-")[1]) for p in run.glob("checkpoint-*")} | {state["global_step"]}
    lowest = min((s for s in losses if s in saved), key=lambda s: (losses[s], s))

    def poison(s):
        for h in s["log_history"]:
            if h.get("step") == lowest and "eval_loss" in h:
                h["eval_loss"] = bad

    edit_json(run / "trainer_state.json", poison)
    if (run / "all_results.json").is_file() and lowest == state["global_step"]:
        edit_json(run / "all_results.json", lambda r: r.update(eval_loss=bad))
    rest = {s: v for s, v in losses.items() if s in saved and s != lowest}
    expected = min(rest, key=lambda s: (rest[s], s))

    result = trained_run(run, config, tmp_path / "report")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "report" / "metrics.json").read_text()
    metrics = json.loads(text, parse_constant=lambda c: pytest.fail(f"metrics.json holds a bare {c}"))
    assert metrics["checkpoint"]["step"] == expected
    assert f"never chosen: eval loss {bad} at step {lowest}" in metrics["checkpoint"]["reason"]
    assert f"eval loss {bad} at step {lowest}" in (tmp_path / "report" / "report.html").read_text()


def _state(change):
    return lambda run: edit_json(run / "trainer_state.json", change)


def _second_eval(key, value):
    def change(state):
        entries = [h for h in state["log_history"] if "eval_loss" in h]
        entries[1][key] = value

    return change


def _truncate(name, keep):
    def change(run):
        path = run / name
        path.write_bytes(path.read_bytes()[:keep])

    return change


def _adapter_base(value):
    return lambda run: edit_json(run / "adapter_config.json", lambda c: c.update(base_model_name_or_path=value))


LIES = {
    "history-not-a-list": (_state(lambda s: s.update(log_history="abc")), "log_history: expected a list"),
    "loss-a-string": (_state(_second_eval("eval_loss", "low")), "].eval_loss: expected a number or null, got str"),
    "step-negative": (_state(lambda s: s.update(global_step=-3)), "global_step: expected a whole number >= 0"),
    "step-a-bool": (_state(_second_eval("step", True)), "].step: expected a whole number >= 0, got bool"),
    "state-deep": (lambda run: (run / "trainer_state.json").write_text("[" * 5000), "nested more than 500 levels"),
    "state-torn": (_truncate("trainer_state.json", 40), "trainer_state.json:"),
    "state-array": (lambda run: (run / "trainer_state.json").write_text("[1, 2]"), "expected a JSON object"),
    "log-middle-line": (
        lambda run: (run / "trainer_log.jsonl").write_text('{"current_steps": "two"}\n{"current_steps": 2}\n'),
        "trainer_log.jsonl:1: current_steps: expected a whole number >= 0, got str",
    ),
    "results-a-string": (
        lambda run: (run / "all_results.json").write_text('{"train_runtime": "fast"}'),
        "all_results.json: train_runtime: expected a number, got str",
    ),
    "weights-truncated": (_truncate("adapter_model.safetensors", 2000), "truncated"),
    "weights-header-forged": (
        lambda run: (run / "adapter_model.safetensors").write_bytes((10**12).to_bytes(8, "little") + b"{}"),
        "truncated or damaged",
    ),
    "other-base": (
        _adapter_base("meta-llama/Llama-3.1-70B-Instruct"),
        "says it was trained on 'meta-llama/Llama-3.1-70B-Instruct', not --model tiny",
    ),
    "base-a-number": (_adapter_base(7), "base_model_name_or_path: expected a string, got int"),
}


@pytest.mark.parametrize("lie", sorted(LIES))
def test_a_run_folder_that_lies_is_one_line_before_any_model_work(run_copy, tmp_path, lie):
    run, config = run_copy
    tamper, message = LIES[lie]
    tamper(run)
    result = trained_run(run, config, tmp_path / "report")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "report" / "predictions_before.jsonl").exists()  # the base model was not evaluated


def test_another_base_is_applied_only_when_allowed(run_copy, tmp_path):
    run, config = run_copy
    _adapter_base(os.path.join("/models", "SomethingElse-7B"))(run)
    data = os.path.join(REPO, "datasets", "alpaca_demo.json")
    refused = invoke(
        "predict", "--model", "tiny", "--adapter", str(run), "--data", data, "--output", str(tmp_path / "p")
    )
    assert refused.exit_code == 2 and "trained on '/models/SomethingElse-7B'" in refused.output
    assert "--allow-other-base" in refused.output and not (tmp_path / "p").exists()
    allowed = trained_run(run, config, tmp_path / "report", "--allow-other-base")
    assert allowed.exit_code == 0, allowed.output


def test_an_adapter_names_its_base_in_any_of_its_usual_spellings(trained, tmp_path):
    """A hub id and a local folder of the same name, and the hub cache's folder, all name one model."""
    from ftbench.inference.models import check_adapter_base

    out, _ = trained
    adapter = tmp_path / "adapter"
    shutil.copytree(out, adapter, ignore=shutil.ignore_patterns("checkpoint-*"))
    for base, model in [
        ("Qwen/Qwen2.5-0.5B-Instruct", "/data/models/Qwen2.5-0.5B-Instruct"),
        (
            "/root/.cache/huggingface/hub/models--Qwen--Qwen2.5-0.5B-Instruct/snapshots/abc",
            "Qwen/Qwen2.5-0.5B-Instruct",
        ),
        ("HuggingFaceTB/SmolLM2-135M-Instruct", "/data/SmolLM2-135M-Instruct.Q4_1.gguf"),
    ]:
        _adapter_base(base)(adapter)
        check_adapter_base(str(adapter), model)
    _adapter_base("Qwen/Qwen2.5-7B-Instruct")(adapter)
    with pytest.raises(UsageError, match="trained on 'Qwen/Qwen2.5-7B-Instruct'"):
        check_adapter_base(str(adapter), "Qwen/Qwen2.5-0.5B-Instruct")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
ENTRY = st.fixed_dictionaries(
    {},
    optional={key: JSON_VALUES for key in ("step", "loss", "eval_loss", "learning_rate", "epoch")},
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=st.lists(ENTRY | JSON_VALUES, max_size=6),
    global_step=JSON_VALUES,
    log_line=JSON_VALUES,
)
def test_any_trainer_state_is_read_or_refused_in_one_line(trained, tmp_path_factory, history, global_step, log_line):
    """The run-folder surface of the fuzz suite: whatever trainer_state.json and trainer_log.jsonl hold, reading
    the folder either succeeds with finite-or-named losses or is one UsageError naming the file."""
    out, _ = trained
    run = tmp_path_factory.mktemp("fuzz") / "run"
    shutil.copytree(out, run)
    (run / "trainer_state.json").write_text(json.dumps({"log_history": history, "global_step": global_step}))
    (run / "trainer_log.jsonl").write_text(textwrap.dedent(f"{json.dumps(log_line)}\n{{}}\n"))
    try:
        result = read_trained_run(str(run))
    except UsageError as e:
        assert str(run) in str(e) and "\n" not in str(e)
        return
    assert all(isinstance(c.eval_loss, (float, int, type(None))) for c in result.checkpoints)
    assert all(isinstance(c.step, int) for c in result.checkpoints)
    assert not any(isinstance(c.eval_loss, bool) for c in result.checkpoints)
    assert result.final_loss is None or not isinstance(result.final_loss, bool)
    assert math.isfinite(result.train_runtime)

"""`ftbench train` with the peft backend on the offline tiny model (CPU, seconds per run): eval loss goes down,
the output folder is LLaMA-Factory's, a tutorial's YAML trains unchanged, and a run killed mid-way and resumed
ends like one never interrupted. `tiny_model` (tests/conftest.py) builds the model once per test run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from click.testing import CliRunner

from ftbench.cli import cli
from ftbench.training.checkpoints import complete_checkpoints

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASETS = os.path.join(REPO, "datasets")
LOG_FIELDS = {"current_steps", "total_steps", "epoch", "percentage", "elapsed_time", "remaining_time"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_config(path, text: str) -> str:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def train(*args: str):
    result = CliRunner().invoke(cli, ["train", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def read_log(output_dir) -> list[dict]:
    with open(os.path.join(output_dir, "trainer_log.jsonl"), encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


LEARNS = """\
model_name_or_path: tiny
stage: sft
do_train: true
finetuning_type: lora
lora_target: all
lora_rank: 16
dataset_dir: {datasets}
dataset: identity
cutoff_len: 256
val_size: 18
output_dir: {out}
per_device_train_batch_size: 4
per_device_eval_batch_size: 8
learning_rate: 2.0e-2
num_train_epochs: 2
lr_scheduler_type: cosine
warmup_ratio: 0.1
logging_steps: 4
eval_strategy: steps
eval_steps: 6
eval_on_start: true
save_steps: 6
save_total_limit: 2
seed: 7
"""


@pytest.fixture(scope="module")
def learned_run(tiny_model, tmp_path_factory):
    """One real training run on 72 identity samples with 18 held out; its folder and the CLI's --json result."""
    import torch

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("learns")
    config = write_config(tmp / "train.yaml", LEARNS.format(datasets=DATASETS, out=tmp / "out"))
    result = train(config, "--json")
    return tmp / "out", json.loads(result.stdout), config


def test_lora_training_lowers_eval_loss_on_held_out_data(learned_run):
    out, result, _ = learned_run
    evals = [e for e in read_log(out) if "eval_loss" in e]
    assert evals[0]["current_steps"] == 0  # eval_on_start: the base model's loss on the held-out samples
    before, after = evals[0]["eval_loss"], result["final_eval_loss"]
    # a working run takes the random tiny model from ~8.8 to ~6.0 on the 18 held-out samples; an adapter that
    # learns nothing (labels all masked, LoRA not trainable, lr ignored) stays at ~8.8, and one that learns the
    # prompt instead of the answer scores worse on answers. One nat is a third of the drop a working run shows.
    assert after < before - 1.0, (before, after)
    assert result["train_samples"] == 72 and result["eval_samples"] == 18
    assert result["final_loss"] < read_log(out)[1]["loss"]


def test_output_folder_is_llamafactory_shaped(learned_run):
    out, result, _ = learned_run
    for name in (
        "adapter_model.safetensors",
        "adapter_config.json",
        "tokenizer_config.json",
        "trainer_log.jsonl",
        "ftbench_config.yaml",
        "checkpoints.json",
        "trainer_state.json",
        "all_results.json",
    ):
        assert (out / name).is_file(), name
    log = read_log(out)
    train_lines = [e for e in log if "loss" in e]
    assert all(LOG_FIELDS | {"loss", "lr"} <= set(e) for e in train_lines)
    assert all(LOG_FIELDS | {"eval_loss"} <= set(e) for e in log if "eval_loss" in e)
    assert [e["current_steps"] for e in train_lines] == list(range(4, result["global_step"] + 1, 4))
    assert train_lines[-1]["total_steps"] == result["global_step"] == 36
    assert all(isinstance(e["elapsed_time"], str) and e["elapsed_time"].count(":") == 2 for e in log)
    assert log[-1]["percentage"] == 100.0


def test_checkpoints_record_eval_loss_and_the_best_one(learned_run):
    out, result, _ = learned_run
    with open(out / "checkpoints.json", encoding="utf-8") as fh:
        table = json.load(fh)
    paths = [c["path"] for c in table["checkpoints"]]
    assert paths == [str(out / "checkpoint-30"), str(out / "checkpoint-36"), str(out)]  # save_total_limit: 2
    evals = {e["current_steps"]: e["eval_loss"] for e in read_log(out) if "eval_loss" in e}
    for c in table["checkpoints"]:
        assert c["eval_loss"] == pytest.approx(evals[c["step"]])
    best = min(table["checkpoints"], key=lambda c: c["eval_loss"])
    assert table["best_checkpoint"] == result["best_checkpoint"]
    assert (
        next(c for c in table["checkpoints"] if c["path"] == table["best_checkpoint"])["eval_loss"] == best["eval_loss"]
    )


def test_resolved_config_is_saved_and_reruns(learned_run, tmp_path):
    from ftbench.training.config import load_train_config

    out, _, _ = learned_run
    cfg, warnings = load_train_config(str(out / "ftbench_config.yaml"))
    assert warnings == []
    assert cfg.lora_rank == 16 and cfg.dataset == ["identity"] and os.path.isabs(cfg.dataset_dir)
    assert cfg.training_args == {"eval_on_start": True}


def test_existing_run_is_not_overwritten_without_resume(learned_run):
    _, _, config = learned_run
    result = CliRunner().invoke(cli, ["train", config])
    assert result.exit_code == 1
    assert "already holds a training run: pass --resume to continue it, or overwrite_output_dir=true" in result.output


def test_collator_pads_to_the_longest_in_the_batch_not_cutoff_len():
    from ftbench.training.data import DynamicPaddingCollator

    batch = DynamicPaddingCollator(pad_token_id=0)(
        [
            {"input_ids": [5, 6, 7], "labels": [-100, 6, 7]},
            {"input_ids": [8, 9, 10, 11, 12], "labels": [-100, -100, 10, 11, 12]},
        ]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7, 0, 0], [8, 9, 10, 11, 12]]
    assert batch["labels"].tolist() == [[-100, 6, 7, -100, -100], [-100, -100, 10, 11, 12]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    padded = DynamicPaddingCollator(pad_token_id=0, pad_to_multiple_of=8)([{"input_ids": [1], "labels": [1]}])
    assert padded["input_ids"].shape == (1, 8)


def test_prompt_is_masked_and_cutoff_len_applies(tiny_model):
    from ftbench.api.backends import TrainConfig
    from ftbench.inference.models import load_tokenizer
    from ftbench.training.data import encode, load_training_samples

    tokenizer = load_tokenizer(tiny_model)
    cfg = TrainConfig(dataset=["alpaca_demo"], dataset_dir=DATASETS, max_samples=5, cutoff_len=64)
    samples = load_training_samples(cfg)
    assert len(samples) == 5
    encoded = encode(tokenizer, samples, cfg, "train")
    for row in encoded:
        assert len(row["input_ids"]) <= 64
        assert row["labels"][0] == -100  # the system/user prompt is not trained on
        answer = [t for t, label in zip(row["input_ids"], row["labels"]) if label != -100]
        assert answer and answer == [label for label in row["labels"] if label != -100]


def test_split_is_seeded_and_disjoint():
    from ftbench.training.data import split

    items = list(range(100))
    train_a, eval_a = split(items, 0.1, seed=1)
    train_b, eval_b = split(items, 0.1, seed=1)
    assert eval_a == eval_b and len(eval_a) == 10 and not set(train_a) & set(eval_a)
    assert split(items, 0.1, seed=2)[1] != eval_a
    assert len(split(items, 7, seed=1)[1]) == 7


def test_dataset_errors_are_located(tiny_model, tmp_path):
    config = write_config(
        tmp_path / "t.yaml",
        f"""\
        model_name_or_path: tiny
        dataset: identty
        dataset_dir: {DATASETS}
        output_dir: {tmp_path / "out"}
        """,
    )
    result = CliRunner().invoke(cli, ["train", config])
    assert result.exit_code == 1
    assert f"{config}:2: dataset: 'identty' is neither a data file nor a dataset in" in result.output
    assert "it has: alpaca_demo, arithmetic_demo, identity" in result.output


def test_bad_lora_target_names_the_linear_layers(tiny_model, tmp_path):
    config = write_config(
        tmp_path / "t.yaml",
        f"""\
        model_name_or_path: tiny
        dataset: {DATASETS}/identity.json
        max_samples: 4
        lora_target: q_prj,v_proj
        output_dir: {tmp_path / "out"}
        """,
    )
    result = CliRunner().invoke(cli, ["train", config])
    assert result.exit_code == 1
    assert (
        f"{config}:4: lora_target: q_prj: no such linear layer in this model; it has: down_proj, gate_proj, "
        "k_proj, o_proj, q_proj, up_proj, v_proj (or use all)"
    ) in result.output


# Exactly the keys a popular LLaMA-Factory tutorial publishes, with its values (a smaller model and data).
TUTORIAL = """\
### model
model_name_or_path: tiny

### method
stage: sft
do_train: true
finetuning_type: lora
lora_target: all
lora_rank: 8
flash_attn: fa2

### dataset
dataset_dir: {datasets}
dataset: identity,alpaca_demo
max_samples: null
template: qwen
cutoff_len: 1024
overwrite_cache: true
preprocessing_num_workers: 16

### output
output_dir: {out}
logging_steps: 10
save_steps: 50
plot_loss: true
report_to: tensorboard
logging_dir: {out}/logs

### train
per_device_train_batch_size: 8
gradient_accumulation_steps: 2
learning_rate: 5e-3
num_train_epochs: 1.0
max_grad_norm: 1.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
weight_decay: 0.01
gradient_checkpointing: true
optim: adamw_torch

### eval
val_size: 0.1
per_device_eval_batch_size: 8
eval_strategy: steps
eval_steps: 5
"""


def test_tutorial_yaml_trains_unchanged(tiny_model, tmp_path):
    out = tmp_path / "saves"
    config = write_config(tmp_path / "tutorial.yaml", TUTORIAL.format(datasets=DATASETS, out=out))
    result = train(config)
    assert "unknown key" not in result.output
    assert "flash_attn: fa2 unavailable (no CUDA GPU); using sdpa attention" in result.output
    assert "template: qwen" not in result.output  # the tokenizer's template is ChatML, as qwen's is
    assert (out / "adapter_model.safetensors").is_file()
    assert any(name.startswith("training_loss.") for name in os.listdir(out))  # plot_loss
    assert any(name.startswith("training_eval_loss.") for name in os.listdir(out))
    events = [f for _, _, files in os.walk(out / "logs") for f in files if f.startswith("events.out.tfevents")]
    assert events, "report_to: tensorboard with logging_dir writes event files there"
    log = read_log(out)
    assert log[-1]["total_steps"] == 10  # (171 - 18 held out = 153) / (8 * 2) -> 10 optimizer steps
    assert any("eval_loss" in e for e in log)


RESUMABLE = """\
model_name_or_path: tiny
dataset: {datasets}/identity.json
max_samples: 48
val_size: 8
cutoff_len: 128
lora_rank: 8
lora_dropout: 0.1
output_dir: {out}
per_device_train_batch_size: 2
learning_rate: 1.0e-2
max_steps: 40
logging_steps: 1
save_steps: 5
eval_strategy: steps
eval_steps: 5
seed: 3
"""


def _adapter(folder):
    from safetensors.torch import load_file

    return load_file(os.path.join(folder, "adapter_model.safetensors"))


def test_resume_after_kill_ends_like_an_uninterrupted_run(tiny_model, tmp_path):
    # the reference: the same config, never interrupted
    reference = tmp_path / "reference"
    train(write_config(tmp_path / "ref.yaml", RESUMABLE.format(datasets=DATASETS, out=reference)), "--quiet")

    # the interrupted run: a real process, SIGKILLed (no cleanup at all) right after its first checkpoint
    out = tmp_path / "interrupted"
    config = write_config(tmp_path / "run.yaml", RESUMABLE.format(datasets=DATASETS, out=out))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=REPO)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ftbench", "train", config],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 240
    # complete = its trainer_state.json parses: the file exists while the Trainer is still writing it
    while not complete_checkpoints(str(out)):
        assert proc.poll() is None, f"training exited before its first checkpoint: {proc.stderr.read()}"
        assert time.time() < deadline, "no checkpoint within 4 minutes"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert not (out / "adapter_model.safetensors").exists(), "the run finished before it was killed"
    killed_at = max(e["current_steps"] for e in read_log(out))
    assert killed_at < 40

    # resume: continues from the last complete checkpoint
    result = json.loads(train(config, "--resume", "--json").stdout)
    assert result["resumed_from"].startswith(str(out / "checkpoint-"))
    assert result["global_step"] == 40

    # same final adapter and eval loss. On CPU with one thread every kernel is deterministic, and the Trainer
    # restores optimizer, scheduler, RNG (LoRA dropout) and data order from the checkpoint, so the runs agree to
    # float32 rounding; 1e-5 leaves room for a different summation order, far below what one changed step does.
    ref_weights, weights = _adapter(reference), _adapter(out)
    assert ref_weights.keys() == weights.keys()
    for name in weights:
        assert (weights[name] - ref_weights[name]).abs().max().item() < 1e-5, name
    ref_log, log = read_log(reference), read_log(out)
    ref_eval = [e["eval_loss"] for e in ref_log if "eval_loss" in e]
    assert [e["eval_loss"] for e in log if "eval_loss" in e] == pytest.approx(ref_eval, abs=1e-5)
    assert result["final_eval_loss"] == pytest.approx(ref_eval[-1], abs=1e-5)
    # the log continues rather than repeating the steps trained again after the checkpoint
    steps = [e["current_steps"] for e in log if "loss" in e]
    assert steps == list(range(1, 41))
    assert [e["loss"] for e in log if "loss" in e] == pytest.approx(
        [e["loss"] for e in ref_log if "loss" in e], abs=1e-5
    )


def test_torchrun_ddp_on_two_cpu_processes_logs_once(tiny_model, tmp_path):
    """`torchrun --nproc_per_node 2 -m ftbench train`: the Trainer's DDP (gloo on CPUs) splits each step's
    batches over both processes, and only rank 0 prints the summary and writes the run records."""
    out = tmp_path / "ddp"
    config = write_config(
        tmp_path / "ddp.yaml",
        f"""\
        model_name_or_path: tiny
        dataset: {DATASETS}/identity.json
        max_samples: 40
        val_size: 8
        cutoff_len: 128
        output_dir: {out}
        per_device_train_batch_size: 2
        learning_rate: 1.0e-2
        max_steps: 4
        logging_steps: 2
        save_steps: 2
        eval_strategy: steps
        eval_steps: 2
        """,
    )
    import socket

    with socket.socket() as sock:  # a free port for the rendezvous, so parallel test runs do not collide
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=REPO)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(port),
            "-m",
            "ftbench",
            "train",
            config,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("adapter: ") == 1
    assert proc.stderr.count("step 4/4 (100%)  eval_loss") == 1
    log = read_log(out)
    steps = [e["current_steps"] for e in log if "loss" in e]
    assert steps == [2, 4]  # one line per step, not one per process
    assert log[-1]["epoch"] == pytest.approx(4 * 2 * 2 / 32)  # 4 steps x batch 2 x 2 processes of 32 samples


@pytest.mark.parametrize(
    "bf16_ok,keys,expected",
    [
        (True, {}, ("bfloat16", True, False)),
        (False, {}, ("float16", False, True)),
        (True, {"fp16": True}, ("float16", False, True)),
        (True, {"bf16": True}, ("bfloat16", True, False)),
    ],
)
def test_precision_on_cuda(monkeypatch, bf16_ok, keys, expected):
    import torch

    from ftbench.api.backends import TrainConfig
    from ftbench.backends.peft import choose_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_ok)
    p = choose_precision(TrainConfig(**keys))
    assert (p.device, p.dtype, p.bf16, p.fp16) == ("cuda",) + expected


def test_bf16_on_a_gpu_without_it_is_an_error_and_on_cpu_a_warning(monkeypatch, capsys):
    import torch

    from ftbench.api.backends import TrainConfig
    from ftbench.api.errors import InputError
    from ftbench.backends.peft import choose_precision

    cfg = TrainConfig(bf16=True, source="t.yaml", lines={"bf16": 9})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_precision(cfg).dtype == "float32"
    assert "t.yaml:9: bf16: ignored without a CUDA GPU; training runs in float32" in capsys.readouterr().err
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla T4")
    with pytest.raises(
        InputError,
        match=r"t.yaml:9: bf16: true, but this GPU \(Tesla T4\) does not support bf16: "
        "set fp16: true instead",
    ):
        choose_precision(cfg)


def test_flash_attn_values(monkeypatch, capsys):
    import importlib.util

    import torch

    from ftbench.api.backends import TrainConfig
    from ftbench.backends.peft import attention_implementation

    assert attention_implementation(TrainConfig(flash_attn="auto")) is None
    assert attention_implementation(TrainConfig(flash_attn="disabled")) == "eager"
    assert attention_implementation(TrainConfig(flash_attn="sdpa")) == "sdpa"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "flash_attn" else real_find_spec(name, *a)
    )
    assert attention_implementation(TrainConfig(flash_attn="fa2")) == "sdpa"
    assert "fa2 unavailable (flash-attn is not installed); using sdpa attention" in capsys.readouterr().err
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    assert attention_implementation(TrainConfig(flash_attn="fa2")) == "flash_attention_2"

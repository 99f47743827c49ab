"""The embedded default runs of `train-and-compare` (no dataset given), offline and deterministic.

* The default, for a real pretrained chat model (SmolLM2-135M-Instruct unless `--model` names another): the
  LLaMA-Factory self-cognition tutorial. The bundled identity set with its placeholders filled (as every
  tutorial's first step), a held-out split of it, and real GSM8K test problems (bundled in datasets/gsm8k, MIT)
  to measure what the fine-tune cost on general reasoning.
* `--model tiny`: the fast pipeline demo of the random-weights tiny model, with its own settings and data: the
  identity set plus synthetic arithmetic in GSM8K format, and more synthetic problems as its "GSM8K".

Each writes its files into the run's `data/` folder: train.jsonl, eval.jsonl, gsm8k_test.jsonl.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Callable

from ftbench.io import atomic_write_text, write_jsonl

IDENTITY_VALUES = {"name": "Lumen", "author": "ftbench"}  # a distinctive name the report shows being learnt
TINY_IDENTITY_VALUES = {"name": "ftbench 小助手", "author": "ftbench"}
IDENTITY_EVAL = 12  # identity questions held out

# LoRA SFT for a small pretrained chat model, as the self-cognition tutorials set it up (LoRA on every linear
# layer, a few epochs over ~80 samples), with a learning rate suited to a 135M model, batches grouped by length
# (less padding) and checkpoints evaluated every 10 steps (each evaluation costs ~7 s here) so the lowest-eval-loss
# one can be chosen.
REAL_TRAINING = {
    "model_name_or_path": "smollm2",
    "stage": "sft",
    "do_train": True,
    "finetuning_type": "lora",
    "lora_rank": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.0,
    "lora_target": "all",
    "cutoff_len": 256,
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 16,
    "gradient_accumulation_steps": 1,
    "learning_rate": 2.0e-3,
    "num_train_epochs": 1.5,
    "lr_scheduler_type": "cosine",
    "warmup_ratio": 0.1,
    "weight_decay": 0.0,
    "max_grad_norm": 1.0,
    "logging_steps": 2,
    "eval_strategy": "steps",
    "eval_steps": 10,
    "save_steps": 10,
    "seed": 42,
    "report_to": "none",
    "group_by_length": True,
}
# Generation is what costs on a CPU (decoding runs ~60 tokens/s at batch 16 on 2 cores): 10 GSM8K problems in one
# batch of up to 112 new tokens, identity answers up to 64 tokens. `--gsm8k-limit` raises the GSM8K count.
# The retention prompts' answers (100 general prompts) are cut at 48 tokens: enough to see whether the fine-tune
# changed an answer or spread its phrases into it, at about half the cost of 64. Batches of 64: a 16-row decoding
# step leaves this CPU's matrix units half idle, and the retention answers come 1.55x faster (the same answers).
REAL_COMPARE = {
    "gsm8k_limit": 10,
    "max_new_tokens": 64,
    "gsm8k_max_new_tokens": 112,
    "retention_max_new_tokens": 48,
    "predict_batch_size": 64,
}

# The tiny random model: nothing in it is pretrained, so the embeddings and the output layer are trained too
# (additional_target, LLaMA-Factory's key) at a high learning rate; it learns GSM8K's answer format, not maths.
ARITHMETIC_TRAIN = 480
ARITHMETIC_EVAL = 24
ARITHMETIC_TEST = 64
TINY_TRAINING = {
    "model_name_or_path": "tiny",
    "stage": "sft",
    "do_train": True,
    "finetuning_type": "lora",
    "lora_rank": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.0,
    "lora_target": "all",
    "additional_target": "embed_tokens,lm_head",
    "cutoff_len": 256,
    "per_device_train_batch_size": 16,
    "per_device_eval_batch_size": 32,
    "gradient_accumulation_steps": 1,
    "learning_rate": 1.0e-2,
    "num_train_epochs": 8.0,
    "lr_scheduler_type": "cosine",
    "warmup_ratio": 0.05,
    "weight_decay": 0.0,
    "max_grad_norm": 1.0,
    "logging_steps": 5,
    "eval_strategy": "steps",
    "eval_steps": 20,
    "save_steps": 20,
    "seed": 42,
    "report_to": "none",
}
TINY_COMPARE = {
    "gsm8k_limit": ARITHMETIC_TEST,
    "max_new_tokens": 128,
    "predict_batch_size": 32,
    "threads": 1,
}  # tiny matrices: one thread beats two that contend


@dataclass(frozen=True)
class Demo:
    """One embedded run: its training config, its compare settings, and how it builds its data."""

    name: str
    training: dict
    compare: dict
    build: Callable[[str, int], dict[str, str]]  # (folder, seed) -> {"train", "eval", "gsm8k"} paths
    about: str = ""


def _write_jsonl(path: str, records: list[dict]) -> None:
    write_jsonl(path, records)


def _identity_split(seed: int, values: dict[str, str]) -> tuple[list[dict], list[dict], random.Random]:
    """The identity set with its placeholders filled, shuffled with ``seed``: (training part, held-out part, and
    the random generator, for shuffling on from where it is)."""
    from ftbench.augment.fill import PlaceholderFiller
    from ftbench.data.bundled import datasets_dir
    from ftbench.data.reader import read_records

    filler = PlaceholderFiller(values)
    identity = [
        {k: filler.fill_text(v) if isinstance(v, str) else v for k, v in r.items()}
        for r in (rec.value for rec in read_records(str(datasets_dir() / "identity.json"), []))
    ]
    rng = random.Random(seed)
    rng.shuffle(identity)
    return identity[IDENTITY_EVAL:], identity[:IDENTITY_EVAL], rng


def _paths(folder: str) -> dict[str, str]:
    os.makedirs(folder, exist_ok=True)
    return {
        "train": os.path.join(folder, "train.jsonl"),
        "eval": os.path.join(folder, "eval.jsonl"),
        "gsm8k": os.path.join(folder, "gsm8k_test.jsonl"),
    }


def build_real_data(folder: str, seed: int = 0) -> dict[str, str]:
    """The identity split and the real GSM8K test problems (all 1,319; the run evaluates the first gsm8k_limit)."""
    from ftbench.data.bundled import datasets_dir

    paths = _paths(folder)
    train, held_out, _ = _identity_split(seed, IDENTITY_VALUES)
    _write_jsonl(paths["train"], train)
    _write_jsonl(paths["eval"], held_out)
    with open(datasets_dir() / "gsm8k" / "test.jsonl", encoding="utf-8") as fh:
        atomic_write_text(paths["gsm8k"], fh.read())
    return paths


def build_tiny_data(folder: str, seed: int = 0) -> dict[str, str]:
    """The tiny demo's data: identity plus synthetic arithmetic in GSM8K format for training and held out, and
    further synthetic problems, none of them in training, as its GSM8K test."""
    from ftbench.recipes.demo.arithmetic import generate

    paths = _paths(folder)
    identity_train, identity_eval, rng = _identity_split(seed, TINY_IDENTITY_VALUES)
    problems = generate(ARITHMETIC_TRAIN + ARITHMETIC_EVAL + ARITHMETIC_TEST, seed=seed)
    arithmetic = [{"instruction": p["question"], "input": "", "output": p["answer"]} for p in problems]
    train = identity_train + arithmetic[:ARITHMETIC_TRAIN]
    rng.shuffle(train)
    _write_jsonl(paths["train"], train)
    _write_jsonl(paths["eval"], identity_eval + arithmetic[ARITHMETIC_TRAIN : ARITHMETIC_TRAIN + ARITHMETIC_EVAL])
    _write_jsonl(paths["gsm8k"], problems[ARITHMETIC_TRAIN + ARITHMETIC_EVAL :])
    return paths


REAL = Demo(
    "real",
    REAL_TRAINING,
    REAL_COMPARE,
    build_real_data,
    about="the self-cognition tutorial on a real pretrained chat model, with real GSM8K test problems",
)
TINY = Demo(
    "tiny",
    TINY_TRAINING,
    TINY_COMPARE,
    build_tiny_data,
    about="the tiny random-weights pipeline model: the numbers show the pipeline works, not model quality",
)


DEMOS = {demo.name: demo for demo in (REAL, TINY)}


def demo_for(model: str | None) -> Demo:
    """The embedded run for ``model`` (None: the default real model): the tiny demo for `tiny`/`tiny:SEED`."""
    if model and (model == "tiny" or model.startswith("tiny:")):
        return TINY
    return REAL

"""The embedded default run of `train-and-compare`: the tiny offline model on bundled data.

It writes, into the run's `data/` folder, deterministically from a seed:
  * train.jsonl / eval.jsonl — the identity set with its placeholders filled (as every tutorial's first step)
    plus synthetic grade-school arithmetic in GSM8K format (`... #### N`), split into train and held-out eval;
  * gsm8k_test.jsonl — further arithmetic problems, none of them in training, scored with lm-eval's GSM8K
    strict/flexible extraction (offline there is no real GSM8K; `--gsm8k PATH` uses a real one).
"""

from __future__ import annotations

import json
import os
import random

from ftbench.io import atomic_write_text

IDENTITY_VALUES = {"name": "ftbench 小助手", "author": "ftbench"}
IDENTITY_EVAL = 12  # identity questions held out
ARITHMETIC_TRAIN = 480
ARITHMETIC_EVAL = 24
GSM8K_TEST = 64

# LoRA SFT settings for the tiny random model: nothing in it is pretrained, so the embeddings and the output layer
# are trained too (additional_target, LLaMA-Factory's key) at a high learning rate, and checkpoints are evaluated
# every 20 steps so the lowest-eval-loss one can be chosen. A real model wants lr ~1e-4 and LoRA only.
DEMO_TRAINING = {
    "model_name_or_path": "tiny", "stage": "sft", "do_train": True, "finetuning_type": "lora",
    "lora_rank": 16, "lora_alpha": 32, "lora_dropout": 0.0, "lora_target": "all",
    "additional_target": "embed_tokens,lm_head", "cutoff_len": 256, "per_device_train_batch_size": 16,
    "per_device_eval_batch_size": 32, "gradient_accumulation_steps": 1, "learning_rate": 1.0e-2,
    "num_train_epochs": 8.0, "lr_scheduler_type": "cosine", "warmup_ratio": 0.05, "weight_decay": 0.0,
    "max_grad_norm": 1.0, "logging_steps": 5, "eval_strategy": "steps", "eval_steps": 20, "save_steps": 20,
    "seed": 42, "report_to": "none",
}
DEMO_COMPARE = {"gsm8k_limit": GSM8K_TEST, "max_new_tokens": 128, "predict_batch_size": 32}


def _write_jsonl(path: str, records: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def build_demo_data(folder: str, seed: int = 0) -> dict[str, str]:
    """Write the demo's train/eval/GSM8K files into ``folder``; returns their paths."""
    from ftbench.augment.fill import PlaceholderFiller
    from ftbench.data.arithmetic import generate
    from ftbench.data.reader import read_records
    from ftbench.data.bundled import datasets_dir

    os.makedirs(folder, exist_ok=True)
    filler = PlaceholderFiller(IDENTITY_VALUES)
    identity = [{k: filler.fill_text(v) if isinstance(v, str) else v for k, v in r.items()}
                for r in (rec.value for rec in read_records(str(datasets_dir() / "identity.json"), []))]
    problems = generate(ARITHMETIC_TRAIN + ARITHMETIC_EVAL + GSM8K_TEST, seed=seed)
    arithmetic = [{"instruction": p["question"], "input": "", "output": p["answer"]} for p in problems]
    rng = random.Random(seed)
    rng.shuffle(identity)
    train = identity[IDENTITY_EVAL:] + arithmetic[:ARITHMETIC_TRAIN]
    held_out = identity[:IDENTITY_EVAL] + arithmetic[ARITHMETIC_TRAIN:ARITHMETIC_TRAIN + ARITHMETIC_EVAL]
    rng.shuffle(train)
    paths = {"train": os.path.join(folder, "train.jsonl"), "eval": os.path.join(folder, "eval.jsonl"),
             "gsm8k": os.path.join(folder, "gsm8k_test.jsonl")}
    _write_jsonl(paths["train"], train)
    _write_jsonl(paths["eval"], held_out)
    _write_jsonl(paths["gsm8k"], problems[ARITHMETIC_TRAIN + ARITHMETIC_EVAL:])
    return paths

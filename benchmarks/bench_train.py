"""Training throughput and final eval loss: `ftbench train` (peft backend, dynamic padding) against a plain
transformers Trainer fed the way a popular fine-tuning tutorial prepares data (every sample padded to
cutoff_len in preprocessing, `default_data_collator`).

Both sides get the same samples, the same token ids and labels (`ftbench.inference.chat.encode_for_training`: prompt
masked, truncated to cutoff_len), the same held-out eval set, the same LoRA (all linear layers, same rank and
seed) and the same TrainingArguments (batch, steps, lr, schedule, seed). The only difference is padding, which
is masked out of attention and loss, so the eval losses agree and the speed difference is the padding alone.
Evaluation is not part of the timed training loop on either side.

    .venv/bin/python benchmarks/bench_train.py                        # tiny model, cutoff_len 1024, 40 steps
    .venv/bin/python benchmarks/bench_train.py --cutoff-len 512 --steps 60 --threads 2
    .venv/bin/python benchmarks/bench_train.py --model Qwen/Qwen2.5-0.5B-Instruct --batch-size 4   # on a GPU
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATASETS = "identity,alpaca_demo,sharegpt_demo,openai_demo,arithmetic_demo"


def ftbench_run(args, out: str) -> dict:
    """`ftbench train` through the peft backend, as the CLI runs it."""
    from ftbench.backends import get_backend
    from ftbench.training.config import load_train_config

    cfg, warnings = load_train_config(
        None,
        [
            f"model_name_or_path={args.model}",
            f"dataset={DATASETS}",
            f"dataset_dir={os.path.join(REPO, 'datasets')}",
            f"cutoff_len={args.cutoff_len}",
            f"val_size={args.val_size}",
            f"output_dir={out}",
            f"per_device_train_batch_size={args.batch_size}",
            f"per_device_eval_batch_size={args.batch_size}",
            f"learning_rate={args.lr}",
            f"max_steps={args.steps}",
            "lr_scheduler_type=cosine",
            "warmup_ratio=0.1",
            f"lora_rank={args.lora_rank}",
            "save_strategy=no",
            "logging_steps=10",
            f"seed={args.seed}",
            "eval_strategy=no",
        ],
    )
    assert not warnings, warnings
    backend = get_backend("peft")
    backend.check_config(cfg)
    result = backend.train(cfg, quiet=True)
    return {
        "samples_per_second": result.train_samples_per_second,
        "runtime": result.train_runtime,
        "eval_loss": result.final_eval_loss,
        "steps": result.global_step,
    }


def baseline_run(args, out: str) -> dict:
    """The tutorial way: pad every sample to cutoff_len up front, plain Trainer, default collator."""
    import torch
    from transformers import (
        AutoModelForCausalLM,
        PrinterCallback,
        Trainer,
        TrainingArguments,
        default_data_collator,
        set_seed,
    )

    from ftbench.api.backends import TrainConfig
    from ftbench.backends.peft import add_lora
    from ftbench.inference.models import load_tokenizer, resolve_model
    from ftbench.training.data import encode, load_training_samples, split

    cfg = TrainConfig(
        model_name_or_path=args.model,
        dataset=DATASETS.split(","),
        dataset_dir=os.path.join(REPO, "datasets"),
        cutoff_len=args.cutoff_len,
        lora_rank=args.lora_rank,
        seed=args.seed,
    )
    path = resolve_model(args.model)
    tokenizer = load_tokenizer(path)
    train_samples, eval_samples = split(load_training_samples(cfg), args.val_size, args.seed)

    def pad_to_cutoff(rows):  # what `tokenizer(..., padding="max_length", max_length=cutoff_len)` produces
        padded = []
        for row in rows:
            n, pad = len(row["input_ids"]), args.cutoff_len - len(row["input_ids"])
            padded.append(
                {
                    "input_ids": torch.tensor(row["input_ids"] + [tokenizer.pad_token_id] * pad),
                    "labels": torch.tensor(row["labels"] + [-100] * pad),
                    "attention_mask": torch.tensor([1] * n + [0] * pad),
                }
            )
        return padded

    train_set = pad_to_cutoff(encode(tokenizer, train_samples, cfg, "train"))
    eval_set = pad_to_cutoff(encode(tokenizer, eval_samples, cfg, "eval"))
    set_seed(args.seed)
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    )
    model.config.use_cache = False
    model = add_lora(model, cfg)
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    training_args = TrainingArguments(
        output_dir=out,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        learning_rate=args.lr,
        max_steps=args.steps,
        lr_scheduler_type="cosine",
        warmup_steps=0.1,
        logging_steps=10,
        save_strategy="no",
        seed=args.seed,
        report_to="none",
        disable_tqdm=True,
        bf16=bf16,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=default_data_collator,
    )
    trainer.remove_callback(PrinterCallback)  # its dict lines on stdout would bury the results table
    started = time.time()
    metrics = trainer.train().metrics
    runtime = time.time() - started
    return {
        "samples_per_second": metrics["train_samples_per_second"],
        "runtime": runtime,
        "eval_loss": trainer.evaluate()["eval_loss"],
        "steps": trainer.state.global_step,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--cutoff-len", type=int, default=1024, help="LLaMA-Factory tutorials' value")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--val-size", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is steadiest on a shared machine)")
    args = parser.parse_args()
    from ftbench.cpu_kernels import use_avx2_mkl

    mkl = use_avx2_mkl()  # both sides on the kernels `ftbench`'s CLI runs on, set before torch's first product
    import torch

    torch.set_num_threads(args.threads)
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    device = (
        torch.cuda.get_device_name()
        if torch.cuda.is_available()
        else f"CPU, {args.threads} thread(s), MKL_CBWR {mkl or 'unset'}"
    )
    print(
        f"model {args.model} on {device}; {args.steps} steps x batch {args.batch_size}, cutoff_len "
        f"{args.cutoff_len}, data: {DATASETS}",
        file=sys.stderr,
    )
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        ours = ftbench_run(args, os.path.join(tmp, "ftbench"))
        base = baseline_run(args, os.path.join(tmp, "baseline"))
    assert ours["steps"] == base["steps"] == args.steps
    print(f"{'':34}{'samples/s':>10}{'train s':>9}{'eval loss':>11}")
    print(
        f"{'ftbench train (dynamic padding)':34}{ours['samples_per_second']:>10.2f}{ours['runtime']:>9.1f}"
        f"{ours['eval_loss']:>11.4f}"
    )
    print(
        f"{'Trainer, padded to cutoff_len':34}{base['samples_per_second']:>10.2f}{base['runtime']:>9.1f}"
        f"{base['eval_loss']:>11.4f}"
    )
    ratio = ours["samples_per_second"] / base["samples_per_second"]
    print(f"speed-up: {ratio:.2f}x; eval loss difference: {abs(ours['eval_loss'] - base['eval_loss']):.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""ftbench against LLaMA-Factory itself, same model, data, YAML and threads, in one run.

- training: `llamafactory-cli train` (its defaults: gradient checkpointing on; and with
  `disable_gradient_checkpointing: true`) against `ftbench train` on the same YAML (its default padding-free
  batches, and `padding_free: false`, LLaMA-Factory's padded batches); train samples/s as each
  Trainer reports it (`train_results.json`; the median of `--repeat` interleaved runs, since one short run varies
  by ±15% on a shared machine), and the largest per-step training-loss difference;
- prediction: LLaMA-Factory's batched `do_predict` (greedy, `per_device_eval_batch_size` 16) against
  `ftbench predict --batch-size 16` on each of `--sets`: GSM8K test problems (long answers of mixed lengths) and
  LLaMA-Factory's identity questions; generation seconds (LLaMA-Factory's `predict_runtime`, ftbench's
  `generation_seconds`) and the share of identical rows.

On a non-Intel x86 CPU, `ftbench`'s CLI sets MKL_CBWR=AVX2 for itself (`ftbench.cpu_kernels`), LLaMA-Factory runs
with MKL's own choice, as its users run it; `--same-mkl` gives LLaMA-Factory the same setting (equal kernels).

Needs LLaMA-Factory in its own venv: `make llamafactory`, or FTBENCH_LLAMAFACTORY_CLI.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def run(cmd: list[str], cwd: str, env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return time.perf_counter() - start


def write_yaml(path: str, data: dict) -> str:
    import yaml

    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(data, fh, sort_keys=False)
    return path


def bench_train(cli: str, model: str, tmp: str, env: dict, steps: int, repeat: int) -> None:
    base = {
        "model_name_or_path": model,
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "lora",
        "lora_target": "all",
        "lora_rank": 8,
        "dataset": "identity,alpaca_demo,sharegpt_demo,openai_demo",
        "dataset_dir": os.path.join(REPO, "datasets"),
        "template": "qwen",
        "cutoff_len": 1024,
        "per_device_train_batch_size": 8,
        "max_steps": steps,
        "learning_rate": 1.0e-3,
        "lr_scheduler_type": "cosine",
        "warmup_ratio": 0.1,
        "logging_steps": 1,
        "save_steps": 10_000,
        "report_to": "none",
        "flash_attn": "sdpa",
        "seed": 42,
    }
    setups = [
        ("LLaMA-Factory (its defaults: gradient checkpointing)", {}, False),
        ("LLaMA-Factory, disable_gradient_checkpointing: true", {"disable_gradient_checkpointing": True}, False),
        (
            "ftbench train, padding_free: false (padded)",
            {"disable_gradient_checkpointing": True, "padding_free": False},
            True,
        ),
        ("ftbench train (peft backend, padding-free)", {"disable_gradient_checkpointing": True}, True),
    ]
    rates: dict[str, list[float]] = {label: [] for label, _, _ in setups}
    walls: dict[str, list[float]] = {label: [] for label, _, _ in setups}
    losses: dict[str, dict] = {}
    for round_ in range(repeat):  # interleaved, so a slow spell of the machine hits every setup alike
        for n, (label, extra, ftbench) in enumerate(setups):
            out = os.path.join(tmp, f"train{round_}-{n}")
            config = write_yaml(os.path.join(tmp, f"train{round_}-{n}.yaml"), {**base, **extra, "output_dir": out})
            cmd = [sys.executable, "-m", "ftbench", "train", config, "-q"] if ftbench else [cli, "train", config]
            walls[label].append(run(cmd, tmp, env))
            with open(os.path.join(out, "train_results.json"), encoding="utf-8") as fh:
                rates[label].append(json.load(fh)["train_samples_per_second"])
            with open(os.path.join(out, "trainer_log.jsonl"), encoding="utf-8") as fh:
                losses[label] = {r["current_steps"]: r["loss"] for r in map(json.loads, fh) if "loss" in r}
    ours_label = setups[-1][0]
    ours_rate, ours_losses = statistics.median(rates[ours_label]), losses[ours_label]
    print(
        f"training: {model}, {steps} steps x batch 8, cutoff_len 1024, {env['OMP_NUM_THREADS']} thread(s), "
        f"median of {repeat} interleaved runs"
    )
    for label, _, _ in setups:
        rate, theirs = statistics.median(rates[label]), losses[label]
        diff = (
            max(abs(theirs[s] - ours_losses[s]) for s in ours_losses)
            if theirs.keys() == ours_losses.keys()
            else float("nan")
        )
        runs = ", ".join(f"{r:.1f}" for r in rates[label])
        print(
            f"  {label:<55} {rate:8.2f} samples/s ({runs}; wall {statistics.median(walls[label]):5.1f}s)  "
            f"ftbench/this {ours_rate / rate:5.2f}x  max loss diff vs ftbench {diff:.2e}"
        )


def prediction_set(name: str, n: int) -> list[dict]:
    """The Alpaca records of one prediction set: ``gsm8k``, the first ``n`` GSM8K test problems (long answers of
    mixed lengths), or ``identity``, LLaMA-Factory's 90 identity questions (Chinese and English, answered freely
    by the model)."""
    if name == "gsm8k":
        with open(os.path.join(REPO, "datasets", "gsm8k", "test.jsonl"), encoding="utf-8") as fh:
            problems = [json.loads(line) for line in fh][:n]
        return [{"instruction": p["question"], "input": "", "output": p["answer"]} for p in problems]
    with open(os.path.join(REPO, "datasets", "identity.json"), encoding="utf-8") as fh:
        return json.load(fh)


def bench_predict(cli: str, model: str, tmp: str, env: dict, name: str, n: int, max_new_tokens: int) -> None:
    records = prediction_set(name, n)
    tmp = os.path.join(tmp, name)
    os.makedirs(tmp)
    data = os.path.join(tmp, f"{name}.json")
    with open(data, "w", encoding="utf-8") as fh:
        json.dump(records, fh, ensure_ascii=False)
    with open(os.path.join(tmp, "dataset_info.json"), "w", encoding="utf-8") as fh:
        json.dump({name: {"file_name": f"{name}.json"}}, fh)
    lf_out = os.path.join(tmp, "lf_predict")
    config = write_yaml(
        os.path.join(tmp, "predict.yaml"),
        {
            "model_name_or_path": model,
            "stage": "sft",
            "do_predict": True,
            "predict_with_generate": True,
            "finetuning_type": "lora",
            "eval_dataset": name,
            "dataset_dir": tmp,
            "template": "smollm2",
            "cutoff_len": 2048,
            "per_device_eval_batch_size": 16,
            "max_new_tokens": max_new_tokens,
            "do_sample": False,
            "flash_attn": "sdpa",
            "report_to": "none",
            "output_dir": lf_out,
        },
    )
    lf_wall = run([cli, "train", config], tmp, env)
    with open(os.path.join(lf_out, "predict_results.json"), encoding="utf-8") as fh:
        lf_seconds = json.load(fh)["predict_runtime"]
    out = os.path.join(tmp, "ftbench_predict.jsonl")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ftbench",
            "predict",
            "--model",
            model,
            "--data",
            data,
            "--template",
            "smollm2",
            "--batch-size",
            "16",
            "--max-new-tokens",
            str(max_new_tokens),
            "-o",
            out,
            "--json",
            "-q",
        ],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"ftbench predict failed:\n{done.stderr[-3000:]}")
    ft_seconds = json.loads(done.stdout)["generation_seconds"]
    with open(os.path.join(lf_out, "generated_predictions.jsonl"), encoding="utf-8") as fh:
        theirs = [json.loads(line) for line in fh]
    with open(out, encoding="utf-8") as fh:
        ours = [json.loads(line) for line in fh]
    same = sum(
        1
        for a, b in zip(ours, theirs)
        if (a["prompt"], a["predict"], a["label"]) == (b["prompt"], b["predict"], b["label"])
    )
    lengths = sorted(len(r["predict"]) for r in theirs)
    print(
        f"prediction: {model}, {name} ({len(records)} prompts), greedy, max_new_tokens {max_new_tokens}, batch 16 "
        f"(answer lengths {lengths[0]}-{lengths[-1]} chars)"
    )
    print(f"  LLaMA-Factory do_predict  {lf_seconds:7.1f}s generating (predict_runtime; wall {lf_wall:.1f}s)")
    print(f"  ftbench predict           {ft_seconds:7.1f}s generating (generation_seconds)")
    print(f"  speed-up: {lf_seconds / ft_seconds:.2f}x; identical rows {same}/{len(theirs)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-model", default="tiny")
    parser.add_argument("--predict-model", default="smollm2")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3, help="training runs per setup (median reported)")
    parser.add_argument("-n", type=int, default=48, help="GSM8K problems")
    parser.add_argument(
        "--sets", default="gsm8k,identity", help="prediction sets, comma-separated: gsm8k, identity (its 90 questions)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip", choices=["train", "predict"])
    parser.add_argument(
        "--same-mkl",
        action="store_true",
        help="give LLaMA-Factory the MKL_CBWR that ftbench's CLI sets for itself on this CPU (cpu_kernels); "
        "by default each runs as a user runs it",
    )
    args = parser.parse_args()
    from ftbench.cpu_kernels import MKL_SETTING, use_avx2_mkl
    from ftbench.inference.models import resolve_model

    cli = os.environ.get("FTBENCH_LLAMAFACTORY_CLI") or os.path.join(
        REPO, ".venv-llamafactory", "bin", "llamafactory-cli"
    )
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "HF_HUB_OFFLINE": "1",
        "DISABLE_VERSION_CHECK": "1",
        "PYTHONPATH": REPO,
    }
    if args.same_mkl:
        use_avx2_mkl(env)
    ours = use_avx2_mkl(dict(env))  # what `python -m ftbench` will run with
    print(f"MKL_CBWR: ftbench {ours or 'unset'}, LLaMA-Factory {env.get(MKL_SETTING) or 'unset'}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.skip != "train":
            bench_train(cli, resolve_model(args.train_model), tmp, env, args.steps, args.repeat)
        if args.skip != "predict":
            for name in args.sets.split(","):
                bench_predict(cli, resolve_model(args.predict_model), tmp, env, name, args.n, args.max_new_tokens)


if __name__ == "__main__":
    main()

"""Throughput of `ftbench predict` at batch 16 against batch 1 (the LLaMA-Factory tutorials' prediction
setting), with the outputs checked to be identical.

Takes 200 prompts from the bundled datasets (round-robin over identity, alpaca_demo, sharegpt_demo,
openai_demo and arithmetic_demo: zh and en, system prompts, multi-turn), writes them as one OpenAI-messages
JSONL, and runs the real command twice in this process on the offline tiny model:

    ftbench predict --model tiny --data prompts.jsonl -o OUT --batch-size B --max-new-tokens N --threads T

Both runs use the same greedy settings and max_new_tokens; the batch-1 run is the fair baseline (no padding,
nothing sorted). Samples/s counts generation only (the command reports it without the model-loading time).
The two prediction files must be byte-identical.

    .venv/bin/python benchmarks/bench_predict.py                       # 200 prompts, 64 new tokens, 1 thread
    .venv/bin/python benchmarks/bench_predict.py --max-new-tokens 128 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

from click.testing import CliRunner

from ftbench.cli import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = ["identity.json", "alpaca_demo.json", "sharegpt_demo.json", "openai_demo.jsonl", "arithmetic_demo.jsonl"]


def bundled_prompts(n: int) -> list[dict]:
    """n conversations taken round-robin from the bundled files, as OpenAI-messages records."""
    from ftbench.data.loader import load_samples
    from ftbench.inference.chat import to_messages

    groups = [load_samples(os.path.join(REPO, "datasets", name)) for name in FILES]
    records, i = [], 0
    while len(records) < n and any(i < len(g) for g in groups):
        records += [{"messages": to_messages(g[i])} for g in groups if i < len(g)]
        i += 1
    return records[:n]


def run_predict(data: str, out: str, batch_size: int, max_new_tokens: int, threads: int, model: str) -> dict:
    """One in-process `ftbench predict --json` run; returns its summary."""
    args = [
        "predict",
        "--model",
        model,
        "--data",
        data,
        "-o",
        out,
        "--batch-size",
        str(batch_size),
        "--max-new-tokens",
        str(max_new_tokens),
        "--threads",
        str(threads),
        "--overwrite",
        "--json",
        "-q",
    ]
    result = CliRunner().invoke(cli, args)
    if result.exit_code != 0:
        sys.exit(f"ftbench predict failed: {result.output}")
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=200, help="prompts (default 200)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads, the same for both runs")
    parser.add_argument("--model", default="tiny")
    a = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        data = os.path.join(tmp, "prompts.jsonl")
        with open(data, "w", encoding="utf-8") as fh:
            for record in bundled_prompts(a.n):
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        run_predict(data, os.path.join(tmp, "warmup.jsonl"), a.batch_size, 4, a.threads, a.model)  # build/load
        results = {}
        for batch_size in (1, a.batch_size):
            out = os.path.join(tmp, f"batch{batch_size}.jsonl")
            start = time.perf_counter()
            summary = run_predict(data, out, batch_size, a.max_new_tokens, a.threads, a.model)
            summary["wall"] = time.perf_counter() - start
            with open(out, "rb") as fh:
                summary["bytes"] = fh.read()
            results[batch_size] = summary
        base, batched = results[1], results[a.batch_size]
        identical = base["bytes"] == batched["bytes"]
        rows = [json.loads(line) for line in base["bytes"].splitlines()]

    ratio = batched["samples_per_second"] / base["samples_per_second"]
    print(
        f"{a.n} prompts from the bundled data, model {a.model}, greedy, max_new_tokens {a.max_new_tokens}, "
        f"{a.threads} torch thread(s)"
    )
    print(f"distinct predictions: {len({r['predict'] for r in rows})} of {len(rows)}")
    for batch_size, s in results.items():
        print(
            f"  batch {batch_size:>3}: {s['samples_per_second']:8.2f} samples/s  "
            f"generation {s['generation_seconds']:7.2f}s  (wall {s['wall']:.2f}s with model loading)"
        )
    print(f"  speed-up batch {a.batch_size} / batch 1: {ratio:.2f}x   outputs identical: {identical}")
    if not identical:
        sys.exit("outputs differ between batch sizes")


if __name__ == "__main__":
    main()

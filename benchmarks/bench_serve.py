"""The same prompts through ftbench's local batched engine and through `transformers serve` (an OpenAI-compatible
server on 127.0.0.1, started here), in one run: the generation time of each, their ratio, and how many answers
are identical.

Both sides run the real command on the same prompt file, greedy, the same --max-new-tokens:

    ftbench predict --model M --data prompts.jsonl -o local.jsonl --batch-size 16 --threads T
    ftbench predict --model M --data prompts.jsonl -o served.jsonl --engine openai --base-url URL --concurrency C

The server runs with OMP_NUM_THREADS=T and, by default, `--continuous-batching` (it batches concurrent requests on
CPU; without it requests run one at a time). Server start-up and model loading are excluded on both sides:
the figures are the commands' generation seconds. Against vLLM on a GPU, start `vllm serve M` yourself and pass
--base-url (the local side then runs on the GPU too; docs/performance.md).

    .venv/bin/python benchmarks/bench_serve.py                             # smollm2, 32 prompts, 32 tokens
    .venv/bin/python benchmarks/bench_serve.py --model tiny --prompts 64 --no-continuous-batching
    .venv/bin/python benchmarks/bench_serve.py --base-url http://gpu-box:8000/v1 --model Qwen/Qwen2.5-7B-Instruct
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from click.testing import CliRunner

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "benchmarks"), os.path.join(REPO, "tests")]

from bench_predict import bundled_prompts  # noqa: E402  (the same prompt mix as the predict benchmark)

from ftbench.cli import cli  # noqa: E402


def predict(args: list[str]) -> dict:
    result = CliRunner().invoke(cli, ["predict", "--json", "-q", *args])
    if result.exit_code != 0:
        raise SystemExit(f"predict failed: {result.output}")
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--continuous-batching", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--base-url", help="an already running server (default: start transformers serve)")
    a = parser.parse_args()

    from ftbench.inference.models import resolve_model

    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    path = resolve_model(a.model)
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "prompts.jsonl")
        with open(data, "w", encoding="utf-8") as fh:
            for record in bundled_prompts(a.prompts):
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        common = ["--model", a.model, "--data", data, "--max-new-tokens", str(a.max_new_tokens)]
        local = predict(
            [
                *common,
                "-o",
                os.path.join(tmp, "local.jsonl"),
                "--batch-size",
                str(a.batch_size),
                "--threads",
                str(a.threads),
            ]
        )
        server = None
        if not a.base_url:
            from serving import Server

            server = Server(
                path,
                *(["--continuous-batching"] if a.continuous_batching else []),
                log_path=os.path.join(tmp, "serve.log"),
            ).start()
        try:
            url = a.base_url or server.url
            predict(
                [
                    *common,
                    "-o",
                    os.path.join(tmp, "warm.jsonl"),
                    "--engine",
                    "openai",
                    "--base-url",
                    url,
                    "--limit",
                    "2",
                ]
            )  # the first requests pay the server's warm-up (CB's set-up)
            served = predict(
                [
                    *common,
                    "-o",
                    os.path.join(tmp, "served.jsonl"),
                    "--engine",
                    "openai",
                    "--base-url",
                    url,
                    "--concurrency",
                    str(a.concurrency),
                ]
            )
        finally:
            if server is not None:
                server.kill()
        rows = [
            [json.loads(line) for line in open(os.path.join(tmp, f), encoding="utf-8")]
            for f in ("local.jsonl", "served.jsonl")
        ]
    same = sum(x["predict"] == y["predict"] for x, y in zip(*rows))
    mode = (
        f"transformers serve{' --continuous-batching' if a.continuous_batching else ''}"
        if not a.base_url
        else a.base_url
    )
    print(f"model {a.model}, {a.prompts} prompts, {a.max_new_tokens} new tokens, {a.threads} thread(s)")
    print(
        f"local  batch {a.batch_size:>3}: {local['generation_seconds']:7.2f} s  "
        f"({local['samples_per_second']} samples/s, {local['tokens']['completion']} completion tokens)"
    )
    print(
        f"server conc. {a.concurrency:>3}: {served['generation_seconds']:7.2f} s  "
        f"({served['samples_per_second']} samples/s, {served['tokens']['completion']} completion tokens) [{mode}]"
    )
    print(
        f"ratio server/local time: {served['generation_seconds'] / local['generation_seconds']:.2f}x; "
        f"identical outputs: {same}/{len(rows[0])} ({same / len(rows[0]):.0%})"
    )


if __name__ == "__main__":
    main()

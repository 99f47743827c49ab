"""How close ftbench runs to this machine's limits on the default run (SmolLM2-135M-Instruct, fp32, CPU).

In one run:

1. the machine: matmul GFLOP/s (`F.linear`, fp32, and bf16 when the CPU has it) at SmolLM2-135M's layer
   shapes (read from the converted model's config.json) for the decode shape (batch rows x hidden), the
   prefill shape (rows x padded prompt width) and the training shape (batch x padded length), with torch's
   threads = the machine's cores; the model's matmuls of one decode step alone, each layer with its own
   weights (streamed from memory, as in the model); memory bandwidth (copy, triad, a read-only sum; 256 MB);
2. the limits those allow: a decode step is bounded by max(bytes it must read / bandwidth, its matmuls at the
   decode-shape throughput), prefill and training by their FLOPs (see `Limits` for what is counted);
3. the real thing, with ftbench's own code: greedy decoding (`Generator`, continuous batching, batch 16) of the
   default run's prompts (its 12 held-out identity questions at 64 new tokens, its 10 GSM8K problems at 112),
   prefill and decode steps timed apart; LoRA training with the default run's settings (`ftbench.backends.peft`,
   a few steps on its identity training set); each as a share of its limit;
4. a torch.profiler profile of one decode step and one training step: matmul, attention, other ops, Python and
   framework time between ops, data collation; and the tokenisation time.

ftbench's code is not changed: its functions are wrapped with timers for the length of the run (`Timed`).

    .venv/bin/python benchmarks/bench_roofline.py                    # about 4 minutes on 2 cores
    .venv/bin/python benchmarks/bench_roofline.py --gsm8k-limit 32   # a batch that stays full (32 problems)
    .venv/bin/python benchmarks/bench_roofline.py --train-steps 8 --skip-bf16
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from roofline_model import Limits, ModelShape, Throughput, bandwidth, matmul_table, streamed_matmuls
from roofline_profile import Timed, print_breakdown, profile_breakdown


def uptime() -> str:
    with open("/proc/loadavg", encoding="utf-8") as fh:
        return " ".join(fh.read().split()[:3])


# -- the real thing: decoding ----------------------------------------------------------------------------------
def measure_decoding(model, tokenizer, sets: list[tuple[str, list, int]], batch_size: int, profile_step: int):
    """Decode each (name, samples, max_new_tokens) set as the default run does (`render_prompts`, `Generator.run`);
    returns per set: prefill calls, decode steps and totals; and the profile of one decode step."""
    from ftbench.inference import greedy
    from ftbench.inference.engines import render_prompts
    from ftbench.inference.generate import GenerationParams, Generator

    def prefill_facts(cls, model, prompts, *_):  # the prompts joining (a shared prefix may follow)
        return {
            "rows": len(prompts),
            "tokens": sum(len(p) for p in prompts),
            "lengths": [len(p) for p in prompts],
            "width": max(len(p) for p in prompts),
        }

    def step_facts(batch, model, drafts):  # rows, tokens fed (drafts included), the context attended over
        fed = batch.rows + sum(map(len, drafts))
        return {"rows": batch.rows, "fed": fed, "context": int(batch.mask.sum()) + fed}

    results = []
    warm = render_prompts(tokenizer, sets[0][1], range(2))
    list(Generator(model, tokenizer, GenerationParams(max_new_tokens=4)).run({i: warm[i].ids for i in warm}, 2))
    for name, samples, max_new in sets:
        print(f"decoding {name}...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        prompts = render_prompts(tokenizer, samples, range(len(samples)))
        tokenise = time.perf_counter() - started
        generator = Generator(model, tokenizer, GenerationParams(max_new_tokens=max_new))
        assert generator.decodes_greedily
        with (
            Timed(greedy._Batch, "prefill", prefill_facts) as prefill,
            Timed(greedy._Batch, "step", step_facts) as step,
        ):
            started = time.perf_counter()
            answers = [a for chunk in generator.run({i: p.ids for i, p in prompts.items()}, batch_size) for a in chunk]
            wall = time.perf_counter() - started
        assert len(answers) == len(samples)
        new_tokens = generator.completion_tokens
        results.append(
            {
                "name": name,
                "prompts": len(samples),
                "max_new_tokens": max_new,
                "wall": wall,
                "tokenise": tokenise,
                "prefill": prefill.calls,
                "steps": step.calls,
                "new_tokens": new_tokens,
            }
        )
    # the profile: a separate, shorter pass over the first set, so that no measured step pays for profiling
    name, samples, _ = sets[0]
    prompts = render_prompts(tokenizer, samples, range(len(samples)))
    generator = Generator(model, tokenizer, GenerationParams(max_new_tokens=profile_step + 2))
    with (
        Timed(greedy._Batch, "prefill", prefill_facts),
        Timed(greedy._Batch, "step", step_facts, profile_call=profile_step) as step,
    ):
        list(generator.run({i: p.ids for i, p in prompts.items()}, batch_size))
    return results, {**step.profile, "set": name} if step.profile else None


# -- the real thing: training ----------------------------------------------------------------------------------
def measure_training(cfg, profile_step: int) -> dict:
    """`ftbench.backends.peft.train` on the default run's config for cfg.max_steps steps; each `training_step`
    (forward + backward) and each collation timed, the step `profile_step` (1-based) profiled from its start to the
    next step's start (its optimizer step, Trainer bookkeeping and the next batch's collation included)."""
    import transformers

    from ftbench.backends import peft as peft_backend
    from ftbench.training import data, packing

    def batch_facts(trainer, model, inputs, *args, **kwargs):
        if "cu_seq_lens_q" in inputs:  # a padding-free row: the samples' bounds
            edges = inputs["cu_seq_lens_q"].tolist()
            lengths = [b - a for a, b in zip(edges, edges[1:])]
            computed = sum(lengths)
        else:
            lengths = [int(n) for n in inputs["attention_mask"].sum(1)]
            computed = int(inputs["attention_mask"].numel())
        return {
            "rows": len(lengths),
            "width": max(lengths),
            "tokens": sum(lengths),
            "computed": computed,
            "lengths": lengths,
        }

    print(f"training {cfg.max_steps} steps...", file=sys.stderr, flush=True)
    with (
        Timed(peft_backend, "encode") as encode,
        Timed(data.DynamicPaddingCollator, "__call__", None, label="ftbench.collate") as collate,
        Timed(packing.PackedCollator, "__call__", None, label="ftbench.collate") as packed_collate,
        Timed(transformers.Trainer, "training_step", batch_facts, profile_call=profile_step) as step,
    ):
        result = peft_backend.train(cfg, quiet=True)
    return {
        "steps": step.calls,
        "profile": step.profile,
        "encode": sum(c["seconds"] for c in encode.calls),
        "collate": [c["seconds"] for c in collate.calls + packed_collate.calls],
        "runtime": result.train_runtime,
        "global_step": result.global_step,
    }


# -- report ---------------------------------------------------------------------------------------------------
HEADER = f"  {'':<40}{'tokens/s':>10}{'limit':>10}{'share':>8}  {'bound':<11}{'bf16 limit':>10}"


def share_row(what: str, tokens: float, seconds: float, limit: float, bound: str, bf16: float | None) -> None:
    """One table row: the measured rate, the rate the limit allows, measured / limit, and with bf16 weights."""
    print(
        f"  {what:<40}{tokens / seconds:>10,.1f}{tokens / limit:>10,.0f}{100 * limit / seconds:>7.1f}%  "
        f"{bound:<11}" + (f"{tokens / bf16:>10,.0f}" if bf16 else "")
    )


def _most(bounds: list[tuple[float, str]]) -> str:
    """The bound that holds for most of the calls."""
    return max(("bandwidth", "compute"), key=lambda w: sum(1 for _, x in bounds if x == w))


def report_decoding(decoding: list[dict], limits: list) -> None:
    """Per set: prefill, decode steps and the whole generation against ``limits`` (fp32, then bf16 if any)."""
    total = {"tokens": 0, "wall": 0.0, "limits": [0.0] * len(limits)}
    for s in decoding:
        pre, steps = s["prefill"], s["steps"]
        pre_tokens, pre_seconds = sum(c["tokens"] for c in pre), sum(c["seconds"] for c in pre)
        pre_bounds = [[lim.prefill(c["lengths"]) for c in pre] for lim in limits]
        pre_limits = [sum(t for t, _ in b) for b in pre_bounds]
        # every answer's first token comes from its prefill, the rest from decode steps; a step's limit is that of
        # the tokens it fed (its rows and their drafts)
        step_tokens, step_seconds = s["new_tokens"] - s["prompts"], sum(c["seconds"] for c in steps)
        bounds = [[lim.decode_step(c["fed"], c["context"]) for c in steps] for lim in limits]
        step_limits = [sum(t for t, _ in b) for b in bounds]
        bound = _most(bounds[0])
        n = max(len(steps), 1)
        print(
            f"  {s['name']}: {s['prompts']} prompts, up to {s['max_new_tokens']} new tokens; {len(steps)} decode "
            f"steps of {sum(c['rows'] for c in steps) / n:.1f} rows and {sum(c['fed'] for c in steps) / n:.1f} "
            f"tokens fed on average (drafts included), {step_tokens / n:.1f} new tokens kept"
        )
        bf = len(limits) > 1
        share_row(
            "  prefill (prompt tokens)",
            pre_tokens,
            pre_seconds,
            pre_limits[0],
            _most(pre_bounds[0]),
            pre_limits[1] if bf else None,
        )
        share_row(
            "  decode steps (new tokens)",
            step_tokens,
            step_seconds,
            step_limits[0],
            bound,
            step_limits[1] if bf else None,
        )
        loop = s["wall"] - pre_seconds - step_seconds
        share_row(
            f"  generation (loop between steps {loop:.1f} s)",
            s["new_tokens"],
            s["wall"],
            pre_limits[0] + step_limits[0],
            "",
            pre_limits[1] + step_limits[1] if bf else None,
        )
        total["tokens"] += s["new_tokens"]
        total["wall"] += s["wall"]
        total["limits"] = [t + p + d for t, p, d in zip(total["limits"], pre_limits, step_limits)]
    share_row(
        "both sets: generation (new tokens)",
        total["tokens"],
        total["wall"],
        total["limits"][0],
        "",
        total["limits"][1] if len(limits) > 1 else None,
    )


def report_full_batch(limits, rows: int, context: int) -> None:
    """What a batch that stays full could reach: the decode-step limit at ``rows`` rows of ``context`` tokens."""
    for lim in limits:
        seconds, bound = lim.decode_step(rows, rows * context)
        memory = lim.decode_bytes(rows, rows * context)
        print(
            f"  {rows} rows at {context} tokens of context, {lim.tp.bytes_per * 8}-bit weights: "
            f"{rows / seconds:,.0f} tokens/s ({bound}-bound: {memory / 1e6:,.0f} MB of weights and KV cache / "
            f"{lim.tp.bandwidth:.1f} GB/s = {1e3 * memory / lim.tp.bandwidth / 1e9:.0f} ms, matmuls "
            f"{1e3 * lim.decode_compute(rows, rows * context):.0f} ms per step)"
        )


def report_training(training: dict, limits: list, batch: int) -> list[dict]:
    """Steady-state training (the steps between the first, which warms up, and the last, which has no next start)
    against ``limits``; returns those steps."""
    steps = training["steps"]
    # the first step warms up, the last has no next start, the profiled one pays for profiling
    steady = [c for c in steps[1:-1] if not c.get("profiled")] or steps[:1]
    tokens, seconds = sum(c["tokens"] for c in steady), sum(c.get("period", c["seconds"]) for c in steady)
    padded = sum(c["computed"] for c in steady)
    step_limits = [sum(lim.training_step(c["lengths"]) for c in steady) for lim in limits]
    print(
        f"  LoRA training, batch {batch}: {len(steady)} of {len(steps)} steps, {tokens / len(steady):.0f} "
        f"tokens per step ({padded / len(steady):.0f} computed, padding included)"
    )
    share_row(
        "  training (tokens, padding excluded)",
        tokens,
        seconds,
        step_limits[0],
        "compute",
        step_limits[1] if len(limits) > 1 else None,
    )
    full = sum(limits[0].training_step(c["lengths"], full=True) for c in steady)
    print(
        f"    the whole train() call: {sum(c['tokens'] for c in steps) / training['runtime']:.1f} tokens/s "
        f"({training['runtime']:.1f} s for {len(steps)} steps, the first one's warm-up included); full "
        f"fine-tuning (frozen weights' gradients too) would be limited to {tokens / full:,.0f} tokens/s"
    )
    return steady


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gsm8k-limit", type=int, default=10, help="GSM8K problems decoded (default run: 10)")
    parser.add_argument("--batch-size", type=int, default=16, help="decoding batch (default run: 16)")
    parser.add_argument("--train-steps", type=int, default=5, help="LoRA training steps measured")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: the cores)")
    parser.add_argument("--skip-bf16", action="store_true", help="fp32 only, even if the CPU has bf16")
    a = parser.parse_args()
    from ftbench.cpu_kernels import use_avx2_mkl

    mkl = use_avx2_mkl()  # the kernels `ftbench`'s CLI runs on, set before torch's first product
    print(f"MKL_CBWR: {mkl or 'unset'}", file=sys.stderr)

    import torch
    import transformers

    transformers.utils.logging.set_verbosity_error()
    torch.set_num_threads(a.threads)
    from ftbench.data.loader import load_samples
    from ftbench.inference.models import load_model_for_generation, load_tokenizer, resolve_model
    from ftbench.recipes.run_settings import prepare_run
    from ftbench.training.data import encode, train_and_eval_samples

    load_before = uptime()
    path = resolve_model("smollm2")
    with open(os.path.join(path, "config.json"), encoding="utf-8") as fh:
        shape = ModelShape.from_config(json.load(fh))
    bf16 = not a.skip_bf16 and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()

    with tempfile.TemporaryDirectory(prefix="bench-roofline-") as tmp:
        cfg, rs, _ = prepare_run(
            None,
            [f"max_steps={a.train_steps}", "save_strategy=no", "eval_strategy=no", "logging_steps=1000"],
            output_dir=os.path.join(tmp, "run"),
        )
        tokenizer = load_tokenizer(path)
        train_samples, eval_samples = train_and_eval_samples(cfg)
        gsm8k = load_samples(rs.gsm8k)[: a.gsm8k_limit]
        sets = [
            ("identity (held out)", eval_samples, rs.max_new_tokens),
            ("GSM8K", gsm8k, rs.gsm8k_max_new_tokens or rs.max_new_tokens),
        ]
        # the matmul shapes: decode rows, the first prefill's rows x width, a training batch's padded tokens
        from ftbench.inference.engines import render_prompts

        widths = sorted(
            (len(p.ids) for p in render_prompts(tokenizer, eval_samples, range(len(eval_samples))).values()),
            reverse=True,
        )
        prefill_rows = min(a.batch_size, len(widths)) * widths[0]
        lengths = sorted(len(r["input_ids"]) for r in encode(tokenizer, train_samples, cfg, "train"))
        train_rows = cfg.per_device_train_batch_size * -(-int(statistics.median(lengths)) // 8) * 8
        rows = {"decode": a.batch_size, "prefill": prefill_rows, "train": train_rows}

        print(
            f"machine: {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"{torch.backends.cpu.get_cpu_capability()}, bf16 matmul: {'yes' if bf16 else 'no'}; "
            f"load {load_before}",
            flush=True,
        )
        dtypes = [torch.float32] + ([torch.bfloat16] if bf16 else [])
        tables = {
            dt: {
                kind: matmul_table(shape, m, dt, head=kind != "prefill", backward=kind == "train")
                for kind, m in rows.items()
            }
            for dt in dtypes
        }
        bw = bandwidth()
        streamed = {dt: streamed_matmuls(shape, a.batch_size, dt) for dt in dtypes}
        print("\nmatmul GFLOP/s (F.linear, rows x in -> out; best of 3 timed blocks)")
        for kind, m in rows.items():
            for (k, n), fp32 in tables[torch.float32][kind].items():
                other = f"{tables[torch.bfloat16][kind][(k, n)]:>8.1f}" if bf16 else ""
                print(f"  {kind:<8}{m:>6} x {k:>5} -> {n:<6}  fp32 {fp32:>8.1f}" + (f"  bf16{other}" if bf16 else ""))
        print(
            f"memory bandwidth: copy {bw['copy']:.1f} GB/s, triad {bw['triad']:.1f} GB/s, read {bw['read']:.1f} "
            f"GB/s (the limits use the best of the three)",
            flush=True,
        )
        limits = Limits(shape, Throughput(tables[torch.float32], max(bw.values()), 4, cfg.lora_rank))
        limits_bf16 = (
            Limits(shape, Throughput(tables[torch.bfloat16], max(bw.values()), 2, cfg.lora_rank)) if bf16 else None
        )

        limits = [lim for lim in (limits, limits_bf16) if lim is not None]
        model = load_model_for_generation(path)
        decoding, decode_profile = measure_decoding(model, tokenizer, sets, a.batch_size, profile_step=8)
        del model
        print(
            f"\nthe default run, SmolLM2-135M-Instruct fp32, {torch.get_num_threads()} threads (load "
            f"{load_before} before, {uptime()} after decoding)"
        )
        print(HEADER)
        report_decoding(decoding, limits)
        sys.stdout.flush()
        training = measure_training(cfg, profile_step=3)
    steady = report_training(training, limits, cfg.per_device_train_batch_size)
    print(f"  (load {uptime()} after training)")
    print("\nwhat a decoding batch that stays full would be limited to:")
    report_full_batch(limits, a.batch_size, 200)
    for dt, seconds in streamed.items():
        print(
            f"  the model's matmuls alone at {a.batch_size} rows, {str(dt).replace('torch.', '')}, each layer with "
            f"its own weights (measured): {1e3 * seconds:.0f} ms per step = {a.batch_size / seconds:,.0f} tokens/s"
        )

    tokenise = sum(s["tokenise"] for s in decoding)
    gen_wall = sum(s["wall"] for s in decoding)
    print(
        f"\ntokenisation: rendering and tokenising {sum(s['prompts'] for s in decoding)} prompts took "
        f"{1e3 * tokenise:.0f} ms ({100 * tokenise / (tokenise + gen_wall):.2f}% of generation); the "
        f"{len(lengths)} training samples {1e3 * training['encode']:.0f} ms "
        f"({100 * training['encode'] / (training['encode'] + training['runtime']):.2f}% of this training run)"
    )
    collate = training["collate"]
    print(f"data collation: {1e3 * statistics.median(collate):.2f} ms per batch (median of {len(collate)})")
    if decode_profile:
        unprofiled = statistics.median(
            c["seconds"] for s in decoding for c in s["steps"] if c["rows"] == decode_profile["facts"]["rows"]
        )
        print_breakdown(
            f"one decode step ({decode_profile['set']}, {decode_profile['facts']['rows']} rows, "
            f"{decode_profile['facts']['context']} context tokens; unprofiled median at these rows "
            f"{1e3 * unprofiled:.0f} ms + the loop between steps)",
            profile_breakdown(decode_profile),
        )
    if training["profile"]:
        print_breakdown(
            f"one training step ({training['profile']['facts']['rows']} rows x "
            f"{training['profile']['facts']['width']} tokens; unprofiled median "
            f"{1e3 * statistics.median(c.get('period', c['seconds']) for c in steady):.0f} ms)",
            profile_breakdown(training["profile"]),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

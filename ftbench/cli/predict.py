"""`ftbench predict`: answer every prompt of a data file with a model (and optional LoRA adapter), writing
LLaMA-Factory's generated_predictions.jsonl rows as they are made, resumable after a crash."""

from __future__ import annotations

import os
import sys
import time

import click

from ftbench.api.errors import EXIT_INTERRUPTED, UsageError
from ftbench.cli.options import (
    SEED,
    FiniteFloat,
    allow_other_base_option,
    common_options,
    engine_options,
    engine_settings,
    print_json,
    settings,
)
from ftbench.data.formats import FORMAT_CHOICES
from ftbench.data.schema import MAX_THREADS, MAX_TOKENS


def _generation_params(max_new_tokens, temperature, top_p, top_k, seed, stop):
    from ftbench.inference.generate import GenerationParams

    if temperature is not None and temperature < 0:
        raise UsageError("--temperature must be >= 0 (0 means greedy)")
    if top_p is not None and not 0 < top_p <= 1:
        raise UsageError("--top-p must be in (0, 1]")
    if any(s == "" for s in stop):
        raise UsageError("--stop: an empty stop string would stop at once")
    return GenerationParams(
        max_new_tokens=max_new_tokens,
        temperature=temperature or None,
        top_p=top_p,
        top_k=top_k,
        seed=seed,
        stop=tuple(stop),
    )


def _meta(data, fmt, model, adapter, params, cutoff_len, engine: str = "local", template=None) -> dict:
    """The sidecar: what the rows are made from (the RESUME_KEYS must match to resume) and how."""
    from ftbench.data.predictions import prediction_meta
    from ftbench.io import sha256_of_path

    return prediction_meta(
        data=os.path.abspath(data),
        data_sha256=sha256_of_path(data),
        fmt=fmt,
        model=model,
        adapter=adapter,
        params=params,
        cutoff_len=cutoff_len,
        engine=engine,
        template=template,
    )


def _prepare_output(out: str, meta: dict, overwrite: bool) -> int:
    """Create, reset or check-and-repair the output (`data.predictions.prepare_output`); returns how many rows are
    already done."""
    from ftbench.data.predictions import prepare_output

    existing = prepare_output(out, meta, overwrite=overwrite)
    if existing.repaired_bytes and not settings(click.get_current_context()).quiet:
        click.echo(
            f"{out}: cut off a half-written last line ({existing.repaired_bytes} bytes); it is generated again",
            err=True,
        )
    return existing.count


@click.command()
@click.option(
    "--model",
    required=True,
    help="Hub id (Qwen/Qwen2.5-0.5B-Instruct), local folder, or 'tiny' (the built-in offline pipeline model).",
)
@click.option("--adapter", type=click.Path(), help="A peft/LoRA adapter folder to apply to --model.")
@click.option(
    "--data",
    required=True,
    type=click.Path(),
    help="Data file (alpaca, sharegpt, OpenAI messages or "
    "GSM8K question/answer JSON/JSONL); the final assistant turn is the label.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMAT_CHOICES),
    default="auto",
    show_default=True,
    help="Data format; auto-detected by default.",
)
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(),
    help="Output JSONL (LLaMA-Factory's generated_predictions.jsonl rows); rerunning the same command resumes it.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    default=16,
    show_default=True,
    help="Prompts per batch (same text as batch 1 under greedy decoding on CPU).",
)
@click.option("--max-new-tokens", type=click.IntRange(1, MAX_TOKENS), default=512, show_default=True)
@click.option("--stop", multiple=True, help="Stop at this string (repeatable); the text is cut before it.")
@click.option("--limit", type=click.IntRange(1), help="Only the first N samples.")
@click.option("--cutoff-len", type=click.IntRange(1, MAX_TOKENS), help="Keep only the last N prompt tokens.")
@click.option(
    "--max-prompt-tokens",
    type=click.IntRange(1, MAX_TOKENS),
    help="A longer prompt keeps its last N "
    "tokens, with a warning (default: the model's context, so a huge prompt cannot exhaust memory).",
)
@click.option(
    "--template",
    help="Render prompts with this LLaMA-Factory template (qwen, llama3, chatml, smollm2, "
    "...; `ftbench templates` lists them) instead of the tokenizer's chat template.",
)
@click.option(
    "--default-system",
    help='System prompt for samples without one (with --template: replaces the template\'s default; "" removes it).',
)
@click.option("--temperature", type=FiniteFloat(), help="Sample with this temperature (default: greedy).")
@click.option("--top-p", type=FiniteFloat(), help="Nucleus sampling threshold (turns sampling on).")
@click.option("--top-k", type=click.IntRange(0), help="Top-k when sampling (default: off).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Random seed for sampling.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option(
    "--dtype",
    type=click.Choice(["auto", "bfloat16", "float16", "float32"]),
    default="auto",
    show_default=True,
    help="auto: bf16 on CUDA if supported (else fp16), fp16 on MPS, fp32 on CPU.",
)
@click.option("--threads", type=click.IntRange(1, MAX_THREADS), help="CPU threads for torch (default: torch's choice).")
@click.option("--overwrite", is_flag=True, help="Start again even if OUT holds rows from an earlier run.")
@allow_other_base_option
@engine_options
@common_options
@click.pass_context
def predict(
    ctx,
    model,
    adapter,
    data,
    fmt,
    out,
    batch_size,
    max_new_tokens,
    stop,
    limit,
    cutoff_len,
    max_prompt_tokens,
    template,
    default_system,
    temperature,
    top_p,
    top_k,
    seed,
    device,
    dtype,
    threads,
    overwrite,
    allow_other_base,
    **engine,
):
    """Generate an answer for every sample of --data and write LLaMA-Factory's prompt/predict/label rows.

    Rows are written in input order as batches finish (flushed to disk each batch); if the run is killed,
    the same command continues where it stopped. Greedy decoding unless --temperature/--top-p; the model's own
    generation_config (e.g. a repetition_penalty) is not inherited; the settings used go to OUT.meta.json.
    With --engine openai the same prompts go to a server (docs/scaling.md), with the same resumable output.
    """
    from ftbench.data.loader import load_samples

    opts = settings(ctx)
    engine_name, engine_opts = engine_settings(engine, device=device, dtype=dtype, threads=threads)
    if not os.path.exists(data):
        raise UsageError(f"--data {data}: no such file")
    from ftbench.inference.engines import ENGINES
    from ftbench.inference.models import check_adapter, resolve_model

    if adapter:
        check_adapter(adapter, model, allow_other_base=allow_other_base)
    params = _generation_params(max_new_tokens, temperature, top_p, top_k, seed, stop)
    from ftbench.inference.templates import get_template

    chat_template = get_template(template, default_system)

    resolve_model(model)  # a missing local model fails here, before OUT is touched (and `tiny` is built)
    samples = load_samples(data, formatting=None if fmt == "auto" else fmt)
    if limit:
        samples = samples[:limit]
    if default_system and chat_template is None:
        for s in samples:
            s.system = s.system or default_system
    meta = _meta(
        data, fmt, model, adapter, params, cutoff_len, ENGINES.load(engine_name).resume_key(engine_opts), chat_template
    )
    done = _prepare_output(out, meta, overwrite)
    if done > len(samples):
        raise UsageError(
            f"{out} already has {done} rows but --data gives {len(samples)} samples"
            + (" (with --limit)" if limit else "")
        )
    start = time.perf_counter()
    generated, gen_seconds = 0, 0.0
    if done < len(samples):
        generated, gen_seconds, usage = _generate(
            ctx,
            samples,
            done,
            out,
            meta,
            params,
            engine_name,
            engine_opts,
            model=model,
            adapter=adapter,
            batch_size=batch_size,
            cutoff_len=cutoff_len,
            template=chat_template,
            max_prompt_tokens=max_prompt_tokens,
        )
    else:
        usage = {}
    seconds = time.perf_counter() - start
    # samples/s counts generation only: loading the model is a fixed cost that says nothing about throughput
    summary = {
        "n": len(samples),
        "generated": generated,
        "resumed": done,
        "seconds": round(seconds, 3),
        "generation_seconds": round(gen_seconds, 3),
        "samples_per_second": round(generated / gen_seconds, 3) if gen_seconds > 0 and generated else None,
        "engine": engine_name,
        "tokens": {"prompt": usage.get("prompt_tokens", 0), "completion": usage.get("completion_tokens", 0)},
        "output": out,
        "meta": out + ".meta.json",
    }
    if opts.json:
        print_json(summary)
    elif not opts.quiet:
        rate = f", {summary['samples_per_second']} samples/s" if summary["samples_per_second"] else ""
        resumed = f" ({done} from an earlier run)" if done else ""
        click.echo(f"wrote {len(samples)} predictions to {out}{resumed} in {seconds:.1f}s{rate}")
    return 0


def _generate(
    ctx,
    samples,
    done,
    out,
    meta,
    params,
    engine_name,
    engine_opts,
    *,
    model,
    adapter,
    batch_size,
    cutoff_len,
    template,
    max_prompt_tokens=None,
) -> tuple[int, float, dict]:
    """Generate for samples[done:] into OUT; an interrupt says how far it got and how to resume."""
    from ftbench.api.errors import FtbenchError
    from ftbench.inference.engines import ENGINES
    from ftbench.inference.predict import generate_rows

    engine = ENGINES.create(engine_name, model, adapter, engine_opts, template=template)
    try:
        written, seconds = generate_rows(
            samples,
            out,
            done,
            engine=engine,
            params=params,
            batch_size=batch_size,
            cutoff_len=cutoff_len,
            quiet=settings(ctx).quiet,
            meta=meta,
            max_prompt_tokens=max_prompt_tokens,
        )
        return written, seconds, dict(engine.usage)
    except FtbenchError as e:  # a server that stopped answering: what is kept, and how to go on
        from ftbench.data.predictions import read_existing

        raise type(e)(
            f"{e}; {read_existing(out).count} of {len(samples)} rows are in {out}: run the same command "
            "again to resume",
            exit_code=e.exit_code,
        ) from None
    except KeyboardInterrupt:
        from ftbench.data.predictions import read_existing

        click.echo(
            f"ftbench: interrupted: {read_existing(out).count} of {len(samples)} rows are in {out}; run the "
            "same command again to resume",
            err=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    finally:
        engine.close()

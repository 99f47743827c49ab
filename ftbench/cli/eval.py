"""`ftbench eval`: run a task YAML from tasks/ (lm-eval's format) on a model and optional LoRA adapter, with
ftbench's harness or lm-eval's, generating with any generation engine; both harnesses report the same figures on
the same model, task and documents."""

from __future__ import annotations

import click

from ftbench.cli.options import (
    allow_other_base_option,
    common_options,
    engine_options,
    engine_settings,
    print_json,
    settings,
)
from ftbench.data.schema import MAX_THREADS, MAX_TOKENS


@click.command()
@click.option(
    "--task", required=True, help="Task name in tasks/ (e.g. gsm8k_local, gsm8k, sft_similarity) or a task YAML path."
)
@click.option("--model", required=True, help="Hub id (Qwen/Qwen2.5-0.5B-Instruct), local folder, or 'tiny'.")
@click.option("--adapter", type=click.Path(), help="A peft/LoRA adapter folder to apply to --model.")
@click.option(
    "--harness",
    type=click.Choice(["ftbench", "lm-eval"]),
    help="Who runs the evaluation: ftbench "
    "(default; lm-eval's prompts, decoding and scoring, reproduced, with any --engine) or lm-eval "
    "(lm_eval.simple_evaluate: its HF model with --engine local, its local-completions model with "
    "--engine openai --base-url). The old spellings --engine ftbench / --engine lm-eval still work.",
)
@click.option("--limit", type=click.IntRange(1), help="Only the first N documents of the test split.")
@click.option("--num-fewshot", type=click.IntRange(0), help="Few-shot examples per prompt (default: the task's).")
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True)
@click.option(
    "--max-gen-toks",
    type=click.IntRange(1, MAX_TOKENS),
    help="Most new tokens per answer (default: the task's generation_kwargs, else lm-eval's 256).",
)
@click.option(
    "--apply-chat-template",
    is_flag=True,
    help="Render prompts with the tokenizer's chat template, "
    "as lm-eval's --apply_chat_template does (for chat/instruct models).",
)
@click.option(
    "--fewshot-as-multiturn/--no-fewshot-as-multiturn",
    default=True,
    show_default=True,
    help="With --apply-chat-template: few-shot examples as separate user/assistant turns.",
)
@click.option("--system-instruction", help="A system prompt, as lm-eval's --system_instruction.")
@click.option(
    "--template",
    help="With --apply-chat-template: render with this LLaMA-Factory template (`ftbench "
    "templates`) instead of the tokenizer's chat template (the ftbench harness, any engine).",
)
@click.option("--default-system", help='With --template: its default system prompt ("" removes it).')
@click.option(
    "--seed",
    "fewshot_seed",
    type=int,
    default=1234,
    show_default=True,
    help="Seed of the few-shot sampler (lm-eval's fewshot_random_seed).",
)
@click.option(
    "--samples",
    "samples_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write per-sample rows (prompt, response, filtered answers, scores) to this JSONL file.",
)
@click.option(
    "--include-path",
    type=click.Path(exists=True, file_okay=False),
    help="Look task names up in this folder of task YAMLs instead of tasks/.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option(
    "--dtype",
    type=click.Choice(["auto", "bfloat16", "float16", "float32"]),
    default="auto",
    show_default=True,
    help="auto: bf16 on CUDA if supported (else fp16), fp16 on MPS, fp32 on CPU.",
)
@click.option("--threads", type=click.IntRange(1, MAX_THREADS), help="CPU threads for torch (default: torch's choice).")
@allow_other_base_option
@engine_options
@common_options
@click.pass_context
def eval(
    ctx,
    task,
    model,
    adapter,
    harness,
    limit,
    num_fewshot,
    batch_size,
    max_gen_toks,
    apply_chat_template,
    fewshot_as_multiturn,
    system_instruction,
    template,
    default_system,
    fewshot_seed,
    samples_path,
    include_path,
    device,
    dtype,
    threads,
    allow_other_base,
    **engine_values,
):  # noqa: A001 (the command is called eval)
    """Evaluate --model (with --adapter) on --task, a task YAML in lm-eval's format (see tasks/ and
    docs/evaluation.md).

    \b
    Prompts, few-shot examples (seed 1234), tokenization, greedy decoding, stop strings and scoring follow
    lm-eval, so --harness ftbench and --harness lm-eval report the same figures on the same documents; --engine
    chooses where the ftbench harness generates (local, openai, vllm, plug-ins), from the same prompts.
    Every figure comes with lm-eval's standard error, a 95% bootstrap interval and a signature.
    """
    from ftbench.evaluation.evaluate import evaluate_task, harness_and_engine
    from ftbench.inference.templates import get_template

    opts = settings(ctx)
    harness, engine_values["engine"] = harness_and_engine(
        harness, engine_values["engine"], served=engine_values.get("base_url") is not None
    )
    engine, engine_opts = engine_settings(engine_values, device=device, dtype=dtype, threads=threads)
    result = evaluate_task(
        task,
        model,
        adapter=adapter,
        allow_other_base=allow_other_base,
        harness=harness,
        engine=engine,
        limit=limit,
        num_fewshot=num_fewshot,
        batch_size=batch_size,
        max_gen_toks=max_gen_toks,
        apply_chat_template=apply_chat_template,
        fewshot_as_multiturn=fewshot_as_multiturn,
        system_instruction=system_instruction,
        fewshot_seed=fewshot_seed,
        device=None if device == "auto" else device,
        dtype=None if dtype == "auto" else dtype,
        threads=threads,
        include_path=include_path,
        samples_path=samples_path,
        progress=not (opts.quiet or opts.json),
        engine_options=engine_opts,
        template=get_template(template, default_system),
    )
    if opts.json:
        out = result.to_json()
        if samples_path:
            out["samples_file"] = samples_path
        print_json(out)
        return 0
    if opts.quiet:
        return 0
    from ftbench.report.score_text import score_text

    shots = result.config["num_fewshot"]
    about = (
        f"{model}{' + ' + adapter if adapter else ''}, engine {result.engine}, {shots}-shot"
        f"{', chat template' if apply_chat_template else ''}"
    )
    click.echo(score_text(result.score, source=result.task, description=about, kind="task"))
    t = result.timings
    click.echo(
        f"took {t['total_seconds']:.1f}s"
        + (f" (generation {t['generate_seconds']:.1f}s)" if "generate_seconds" in t else "")
    )
    if samples_path:
        click.echo(f"per-sample rows: {samples_path}")
    return 0

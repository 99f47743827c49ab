"""`ftbench train-and-compare`: the main command. With no arguments it runs the embedded offline demo."""

from __future__ import annotations

import os

import click

from ftbench.cli.options import (
    LazyChoice,
    allow_other_base_option,
    benchmark_options,
    common_options,
    engine_options,
    engine_settings,
    judge_options,
    print_json,
    seeds_option,
    settings,
)
from ftbench.data.schema import MAX_THREADS, MAX_TOKENS


def _select_by_choices() -> list[str]:
    from ftbench.recipes.run_settings import select_by_choices

    return select_by_choices()


# the checkpoint rules: eval loss, or a figure a scorer judges runs by (asked for only when click needs them)
SELECT_BY = LazyChoice(_select_by_choices)


@click.command()
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    help="A LLaMA-Factory-style training YAML (plus the "
    "compare keys gsm8k, gsm8k_limit, max_new_tokens, gsm8k_max_new_tokens, retention, "
    "retention_max_new_tokens, benchmark, benchmark_limit, predict_batch_size, threads, seeds, select_by, judge).",
)
@click.argument("overrides", nargs=-1)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False),
    help="The run folder (default reports/<run-id>). Rerun with the same folder to resume an interrupted run.",
)
@click.option("--model", help="Shortcut for model_name_or_path (e.g. Qwen/Qwen2.5-0.5B-Instruct).")
@click.option("--backend", help="Training backend (see `ftbench backends`; default peft).")
@click.option(
    "--gsm8k",
    help="GSM8K test set: a local JSONL (question/answer), openai/gsm8k (hub), or none "
    "(default: the test split bundled in datasets/gsm8k/, offline).",
)
@click.option("--gsm8k-limit", type=click.IntRange(1), help="GSM8K problems to evaluate (default 100).")
@click.option("--max-new-tokens", type=click.IntRange(1, MAX_TOKENS), help="Generation length for every evaluation.")
@click.option(
    "--gsm8k-max-new-tokens",
    type=click.IntRange(1, MAX_TOKENS),
    help="Generation length for GSM8K (default: --max-new-tokens).",
)
@click.option(
    "--retention",
    help="General prompts the base and the fine-tuned model both answer, to show what the fine-tune changed "
    "where it should not have: a dataset file (answers ignored), or none (default: the 100 bundled prompts, "
    "half Chinese, half English).",
)
@click.option(
    "--retention-max-new-tokens",
    type=click.IntRange(1, MAX_TOKENS),
    help="Generation length for the retention prompts (default: --max-new-tokens).",
)
@benchmark_options
@click.option("--threads", type=click.IntRange(1, MAX_THREADS), help="CPU threads for torch.")
@click.option(
    "--select-by",
    type=SELECT_BY,
    help="Choose the checkpoint by this metric of its "
    "generations on the eval split (every saved checkpoint is scored) instead of the lowest eval loss, "
    "which is shown beside it.",
)
@click.option(
    "--trained-run",
    type=click.Path(file_okay=False, exists=True),
    help="Evaluate this finished run "
    "(a LLaMA-Factory or ftbench output_dir) instead of training: its best checkpoint against the base "
    "model. The model and data come from --config, else from the YAML ftbench saved in it.",
)
@judge_options
@allow_other_base_option
@seeds_option
@engine_options
@click.option(
    "--served-model-after",
    help="(openai) the fine-tuned model's name at the server (e.g. a vLLM LoRA "
    "module); default: the chosen checkpoint is merged into <run>/merged and asked for by its path.",
)
@common_options
@click.pass_context
def train_and_compare(
    ctx,
    config,
    overrides,
    output_dir,
    model,
    backend,
    gsm8k,
    gsm8k_limit,
    max_new_tokens,
    gsm8k_max_new_tokens,
    retention,
    retention_max_new_tokens,
    benchmark,
    benchmark_limit,
    threads,
    select_by,
    trained_run,
    allow_other_base,
    seeds,
    judge_model,
    judge_url,
    served_model_after,
    **engine,
):
    """Answer "did the fine-tune help?" in one command: validate the data, evaluate the base model on a held-out
    split (LLaMA-Factory BLEU/ROUGE) and on GSM8K (lm-eval strict/flexible), train a LoRA adapter, pick the
    checkpoint with the lowest eval loss, evaluate it the same way, and write report.html and metrics.json.

    OVERRIDES are key=value pairs over the config (LLaMA-Factory keys, e.g. num_train_epochs=3).
    With no arguments: the offline demo, the self-cognition tutorial on SmolLM2-135M-Instruct (bundled identity data,
    real GSM8K test problems), a few minutes on a CPU; `--model tiny` runs the fast pipeline demo instead.
    Evaluations can generate on a server (--engine openai --base-url) or offline vLLM (docs/scaling.md).
    """
    from ftbench.recipes.run_settings import prepare_run, trained_run_config
    from ftbench.recipes.seeds import run_with_seeds

    opts = settings(ctx)
    # --threads is the run's (training and evaluation), not the engine's
    engine_name, engine_opts = engine_settings(dict(engine, served_model_after=served_model_after))
    if trained_run and not config:
        config = trained_run_config(trained_run)
    cfg, rs, warnings = prepare_run(
        config,
        overrides,
        output_dir=output_dir,
        model=model,
        backend=backend,
        gsm8k=gsm8k,
        gsm8k_limit=gsm8k_limit,
        max_new_tokens=max_new_tokens,
        gsm8k_max_new_tokens=gsm8k_max_new_tokens,
        retention=retention,
        retention_max_new_tokens=retention_max_new_tokens,
        benchmark=benchmark,
        benchmark_limit=benchmark_limit,
        threads=threads,
        select_by=select_by,
        engine=engine_name,
        engine_options=engine_opts,
        trained_run=os.path.abspath(trained_run) if trained_run else None,
        allow_other_base=allow_other_base or None,
        seeds=seeds,
        judge_model=judge_model,
        judge_url=judge_url,
    )
    if not opts.quiet:
        for w in warnings:
            click.echo(f"warning: {w}", err=True)
        click.echo(
            f"run folder: {rs.output_dir} (an interrupted run resumes with --output-dir {rs.output_dir})", err=True
        )
    metrics = run_with_seeds(cfg, rs, quiet=opts.quiet or opts.json)
    if metrics is None:  # a non-zero rank of a multi-GPU launch: rank 0 reports
        return 0
    if opts.json:
        print_json({k: metrics[k] for k in ("before", "after", "checkpoint")} | {"report": rs.folder.report})
    elif not opts.quiet:
        from ftbench.report.comparison_text import run_summary

        click.echo(run_summary(metrics, rs.output_dir))
    return 0

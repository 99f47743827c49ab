"""`ftbench sweep`: one lever at a time around a training config, each run evaluated as train-and-compare does,
read out in a report that says which change moves the metric. With no arguments: the embedded default sweep."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import click

from ftbench.cli.options import (
    LazyChoice,
    benchmark_options,
    common_options,
    judge_options,
    judged_figure_names,
    print_json,
    seeds_option,
    settings,
)
from ftbench.cli.train_and_compare import SELECT_BY
from ftbench.data.schema import MAX_THREADS, MAX_TOKENS
from ftbench.training.config_keys import MAX_LORA_RANK


@dataclass(frozen=True)
class EmbeddedSweep:
    """What `ftbench sweep` runs with no config: the levers, settings and note of an embedded demo sweep."""

    overrides: tuple[str, ...]
    vary: tuple[str, ...]
    fractions: tuple[float, ...]
    lr_factors: tuple[float, ...]
    gsm8k: str | None
    note: str


# the embedded defaults: the real model (smollm2), or `--model tiny`'s fast pipeline demo (see docs/sweep.md)
EMBEDDED = {
    "smollm2": EmbeddedSweep(
        overrides=(),
        vary=("data", "lr"),
        fractions=(0.5, 1.0),
        lr_factors=(1.0, 3.0),
        gsm8k="none",
        note="SmolLM2-135M-Instruct on the self-cognition demo (its 12 held-out identity questions), 3 runs: all "
        "the data against half of it, and the learning rate ×3. Traded to fit about 10 minutes on a 2-core CPU: "
        "GSM8K is not evaluated (train-and-compare measures it), so this sweep says which lever moves ROUGE-L on "
        "the identity task, not what each setting costs elsewhere; one training seed per setting.",
    ),
    "tiny": EmbeddedSweep(
        overrides=("num_train_epochs=3",),
        vary=("data", "lr"),
        fractions=(0.25, 0.5, 1.0),
        lr_factors=(1 / 3, 1.0, 3.0),
        gsm8k=None,
        note="the tiny random-weights model on its bundled demo data (identity + synthetic arithmetic), 3 epochs "
        "per run: the fast pipeline demo. The figures show the sweep machinery, not model quality.",
    ),
}


def _numbers(kind, low: float, integer: bool = False, high: float | None = None):
    def parse(ctx, param, value):
        if value is None:
            return None
        out = []
        for part in value.split(","):
            try:
                x = int(part) if integer else float(part)
            except ValueError:
                raise click.BadParameter(f"{part.strip()!r} is not {kind}") from None
            if not math.isfinite(x):
                raise click.BadParameter(f"{part.strip()} is not a finite number")
            if not x > low or (high is not None and x > high):
                raise click.BadParameter(f"{part.strip()} must be > {low:g}" + (f" and <= {high:g}" if high else ""))
            out.append(x)
        return tuple(out)

    return parse


def _vary(ctx, param, value):
    from ftbench.recipes.sweep import LEVER_CHOICES

    if value is None:
        return None
    levers = tuple(v.strip() for v in value.split(",") if v.strip())
    bad = [v for v in levers if v not in LEVER_CHOICES]
    if bad or not levers:
        raise click.BadParameter(f"{', '.join(bad) or 'nothing'}: choose from {', '.join(LEVER_CHOICES)}")
    return levers


@click.command()
@click.option("--config", type=click.Path(dir_okay=False), help="A LLaMA-Factory training YAML (as train-and-compare).")
@click.argument("overrides", nargs=-1)
@click.option(
    "--vary",
    callback=_vary,
    help="Levers, comma-separated: data, lr, epochs, rank, model (default data,lr; model is implied by --models).",
)
@click.option(
    "--fractions",
    callback=_numbers("a fraction", 0, high=1),
    help="Data sizes as fractions of the training data, nested subsets (default 0.25,0.5,1).",
)
@click.option(
    "--lr-factors",
    callback=_numbers("a number", 0),
    help="Learning rates as multiples of the config's (default 0.333,1,3).",
)
@click.option(
    "--ranks",
    callback=_numbers("an integer", 0, integer=True, high=MAX_LORA_RANK),
    help="LoRA ranks (default the config's ×½, ×1, ×2; alpha keeps its ratio to the rank).",
)
@click.option("--models", help="Base models to compare, comma-separated (the config's is the baseline).")
@click.option(
    "--metric",
    default="rouge-l",
    show_default=True,
    type=LazyChoice(judged_figure_names),
    help="The metric the sweep is judged by: BLEU/ROUGE on the held-out split, or GSM8K's.",
)
@click.option(
    "--select-by",
    type=SELECT_BY,
    help="Choose each run's checkpoint by this metric of "
    "its generations on the eval split instead of the lowest eval loss (as train-and-compare --select-by).",
)
@click.option("--devices", help="GPU ids, comma-separated: runs go side by side, one process per GPU.")
@click.option(
    "--ray",
    "ray_address",
    metavar="ADDRESS",
    help="Run each run as a task on this existing Ray cluster "
    "(host:port of `ray start --head`; one GPU per task, or one CPU on a cluster without GPUs). The "
    "sweep folder must be on a filesystem every node sees.",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False),
    help="The sweep folder (default reports/sweep-<id>); rerun with the same folder to resume.",
)
@click.option("--model", help="Shortcut for model_name_or_path.")
@click.option("--backend", help="Training backend (see `ftbench backends`; default peft).")
@click.option("--gsm8k", help="GSM8K test set: a local JSONL, openai/gsm8k (hub), or none.")
@click.option("--gsm8k-limit", type=click.IntRange(1), help="GSM8K problems to evaluate.")
@click.option("--max-new-tokens", type=click.IntRange(1, MAX_TOKENS), help="Generation length for every evaluation.")
@benchmark_options
@click.option("--threads", type=click.IntRange(1, MAX_THREADS), help="CPU threads for torch.")
@judge_options
@seeds_option
@common_options
@click.pass_context
def sweep(
    ctx,
    config,
    overrides,
    vary,
    fractions,
    lr_factors,
    ranks,
    models,
    metric,
    select_by,
    devices,
    ray_address,
    output_dir,
    model,
    backend,
    gsm8k,
    gsm8k_limit,
    max_new_tokens,
    benchmark,
    benchmark_limit,
    threads,
    judge_model,
    judge_url,
    seeds,
):
    """Which lever to pull: train around your config one change at a time (data size as a learning curve on nested
    subsets, learning rate, LoRA rank, base model; epochs from the checkpoints), evaluate every run exactly as
    train-and-compare does, and write report.html and sweep.json with the verdict and its evidence.

    OVERRIDES are key=value pairs over the config. With no arguments: a data-size and learning-rate sweep of the
    embedded self-cognition demo on SmolLM2-135M-Instruct (3 runs, about 10 minutes on a 2-core CPU); with
    `--model tiny`, the fast pipeline demo on the tiny random model.
    """
    from ftbench.recipes.run_folder import SweepFolder
    from ftbench.recipes.run_settings import prepare_run, run_id
    from ftbench.recipes.sweep import SweepSettings, check_settings
    from ftbench.recipes.sweep import sweep as run_sweep

    opts = settings(ctx)
    demo = None
    if not config and not any(o.startswith(("dataset=", "model_name_or_path=")) for o in overrides):
        demo = EMBEDDED.get(model or "smollm2")
    if demo:  # an embedded demo sweep: its settings, under anything given on the command line
        model, overrides = model or "smollm2", demo.overrides + tuple(overrides)
        vary, fractions = vary or demo.vary, fractions or demo.fractions
        lr_factors, gsm8k = lr_factors or demo.lr_factors, gsm8k or demo.gsm8k
    model_list = tuple(m.strip() for m in models.split(",") if m.strip()) if models else ()
    vary = (vary or ("data", "lr")) + (("model",) if model_list and "model" not in (vary or ()) else ())
    if "model" in vary and not model_list:
        raise click.BadParameter("--vary model needs --models a,b", param_hint="--vary")
    if ray_address and devices:
        raise click.BadParameter("give --devices (one machine) or --ray (a cluster), not both", param_hint="--ray")
    if "epochs" in vary and not select_by:
        select_by = metric  # epochs by the metric: every checkpoint's generations scored (no extra training)
    folder = os.path.abspath(output_dir or os.path.join("reports", "sweep-" + run_id(model or config or "run")))
    cfg, rs, warnings = prepare_run(
        config,
        overrides,
        output_dir=folder,
        model=model,
        backend=backend,
        gsm8k=gsm8k,
        gsm8k_limit=gsm8k_limit,
        max_new_tokens=max_new_tokens,
        benchmark=benchmark,
        benchmark_limit=benchmark_limit,
        threads=threads,
        select_by=select_by,
        seeds=seeds,
        judge_model=judge_model,
        judge_url=judge_url,
    )
    if ray_address:  # a cluster that is not there is said before anything is trained
        from ftbench.recipes.ray_jobs import connect

        connect(ray_address)
    ss = SweepSettings(
        output_dir=folder,
        vary=vary,
        metric=metric,
        models=model_list,
        devices=tuple(d.strip() for d in devices.split(",") if d.strip()) if devices else (),
        ray=ray_address,
        note=demo.note if demo else None,
        **{k: v for k, v in (("fractions", fractions), ("lr_factors", lr_factors), ("ranks", ranks)) if v},
    )
    check_settings(cfg, ss)  # before anything is written (the recipe checks again for library callers)
    if not opts.quiet:
        for w in warnings:
            click.echo(f"warning: {w}", err=True)
        click.echo(f"sweep folder: {folder} (an interrupted sweep resumes with --output-dir {folder})", err=True)
    result = run_sweep(cfg, rs, ss, quiet=opts.quiet or opts.json)
    if opts.json:
        print_json(
            {
                "verdicts": result["analysis"]["verdicts"],
                "report": SweepFolder(folder).report,
                "sweep": SweepFolder(folder).sweep_json,
            }
        )
    elif not opts.quiet:
        for v in result["analysis"]["verdicts"]:
            click.echo(f"- {v['text']}")
        click.echo(f"report: {os.path.join(folder, 'report.html')}")
    return 0

"""`ftbench train CONFIG.yaml [key=value ...]`: LoRA SFT from a LLaMA-Factory-style YAML, unchanged."""

from __future__ import annotations

import click

from ftbench.api.errors import EXIT_OK, UsageError
from ftbench.cli.options import common_options, print_json, settings


@click.command(context_settings={"ignore_unknown_options": False})
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option(
    "--backend", help="Training backend (default: the config's `backend:`, else peft). See `ftbench backends`."
)
@click.option("--resume", is_flag=True, help="Continue from the last complete checkpoint in output_dir.")
@common_options
@click.pass_context
def train(ctx, config, overrides, backend, resume):
    """Train a LoRA adapter as LLaMA-Factory's `llamafactory-cli train CONFIG.yaml` would: same YAML keys
    (model_name_or_path, dataset, dataset_dir, lora_rank, cutoff_len, learning_rate, ...), same output folder
    (adapter, checkpoint-N/, trainer_log.jsonl), plus checkpoints.json with each checkpoint's eval loss.

    KEY=VALUE pairs override the YAML (values read as YAML: lora_rank=16, max_samples=null). Unknown keys are a
    warning; known keys this backend cannot honour are an error. Multi-GPU: `torchrun --nproc_per_node N -m
    ftbench train CONFIG.yaml` (see docs/training.md).
    """
    from ftbench.console import configure

    opts = settings(ctx)
    for item in overrides:
        if "=" not in item:
            raise click.UsageError(f"{item!r}: overrides are KEY=VALUE (e.g. lora_rank=16)")
    previous = configure(quiet=opts.quiet)  # warnings go to stderr, so --json keeps them
    try:
        return _train(opts, config, overrides, backend, resume)
    finally:
        configure(quiet=previous)


def _train(opts, config, overrides, backend, resume):
    from ftbench.backends import get_backend
    from ftbench.console import is_main_process, warn
    from ftbench.training.checkpoints import settle_choice
    from ftbench.training.config import load_train_config

    cfg, warnings = load_train_config(config, overrides)
    for warning in warnings:
        warn(warning)
    if backend:
        cfg.backend = backend
        cfg.lines["backend"] = None
    try:
        chosen = get_backend(cfg.backend)
    except UsageError as e:
        if "backend" in cfg.lines and cfg.lines["backend"] is not None:
            raise cfg.error("backend", str(e)) from e
        raise
    chosen.check_config(cfg)
    result = chosen.train(cfg, resume=resume, quiet=opts.quiet or opts.json)
    settle_choice(result)
    if not is_main_process():
        return EXIT_OK
    if opts.json:
        print_json(result.to_json())
    elif not opts.quiet:
        click.echo(f"adapter: {result.adapter_dir}")
        click.echo(
            f"steps: {result.global_step}  train samples: {result.train_samples}  "
            f"eval samples: {result.eval_samples}  "
            f"{result.train_samples_per_second:.2f} samples/s on {result.device} ({result.dtype})"
        )
        if result.final_loss is not None:
            click.echo(f"final train loss: {result.final_loss:.4f}")
        if result.final_eval_loss is not None:
            click.echo(f"final eval loss: {result.final_eval_loss:.4f}")
        if result.best_checkpoint:
            best = next(c for c in result.checkpoints if c.path == result.best_checkpoint)
            click.echo(f"best checkpoint (lowest eval loss {best.eval_loss:.4f}): {result.best_checkpoint}")
        click.echo(f"log: {result.trainer_log}")
    return EXIT_OK

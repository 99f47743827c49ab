"""`ftbench make-tiny-model DIR`: build the offline pipeline model (random weights, real Qwen2 architecture and
ChatML tokenizer) deterministically; `--model tiny` elsewhere builds or reuses the same thing in a cache."""

from __future__ import annotations

import json
import os

import click

from ftbench.api.errors import UsageError
from ftbench.cli.options import SEED, common_options, print_json, settings


@click.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the random weights.")
@click.option("--force", is_flag=True, help="Replace DIRECTORY if it already exists.")
@common_options
@click.pass_context
def make_tiny_model(ctx, directory, seed, force):
    """Build a tiny Qwen2-architecture causal LM with random weights and a byte-level BPE tokenizer trained on
    the bundled datasets/ (Chinese and English), with a ChatML chat template, into DIRECTORY.

    The same seed gives byte-identical files. It trains and generates in seconds on a CPU, so the whole pipeline
    runs offline; its outputs mean nothing about quality. `--model tiny` uses a cached copy (seed 0).
    """
    import time

    from ftbench.inference.tiny import BUILD_INFO, build_atomically

    opts = settings(ctx)
    if os.path.exists(directory) and not force and (not os.path.isdir(directory) or os.listdir(directory)):
        raise UsageError(f"{directory}: already exists and is not empty; pass --force to replace it")
    start = time.perf_counter()
    path = build_atomically(directory, seed, replace=force)
    with open(os.path.join(path, BUILD_INFO), encoding="utf-8") as fh:
        info = json.load(fh)
    seconds = time.perf_counter() - start
    if opts.json:
        print_json({"path": path, "seconds": round(seconds, 3), **info})
    elif not opts.quiet:
        click.echo(
            f"built the tiny model (seed {seed}, {info['parameters']:,} parameters, vocabulary "
            f"{info['vocab_size']}) in {path} in {seconds:.1f}s; random weights: use it to test pipelines, "
            "not to judge quality"
        )
    return 0

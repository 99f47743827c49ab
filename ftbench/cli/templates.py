"""`ftbench templates`: the named chat templates `template:` / `--template` accept (LLaMA-Factory's names)."""

from __future__ import annotations

import click

from ftbench.api.errors import EXIT_OK
from ftbench.cli.options import common_options, print_json, settings


@click.command()
@common_options
@click.pass_context
def templates(ctx):
    """List the chat templates ftbench renders exactly as LLaMA-Factory does (`template: qwen` in a config,
    `--template qwen` on predict). Without one, the tokenizer's own chat template is used."""
    from ftbench.inference.templates import TEMPLATES

    opts = settings(ctx)
    entries = TEMPLATES.entries()
    if opts.json:
        print_json([e.to_json() for e in entries])
        return EXIT_OK
    width = max(len(e.name) for e in entries)
    for entry in entries:
        text = f"error: {entry.error}" if entry.error else entry.description
        source = "" if entry.source == "built-in" else f" [{entry.source}]"
        click.echo(f"{entry.name.ljust(width)}  {text}{source}")
    return EXIT_OK

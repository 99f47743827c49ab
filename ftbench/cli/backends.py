"""`ftbench backends`: the training backends that are installed, and where each comes from."""

from __future__ import annotations

import click

from ftbench.api.errors import EXIT_OK
from ftbench.cli.options import common_options, print_json, settings


@click.command()
@common_options
@click.pass_context
def backends(ctx):
    """List training backends: the built-in `peft` and any installed through the `ftbench.backends` entry-point
    group (see docs/backends.md). Choose one with `--backend NAME` or `backend: NAME` in the YAML."""
    from ftbench.api.backends import DEFAULT_BACKEND
    from ftbench.backends import available_backends

    opts = settings(ctx)
    infos = available_backends()
    if opts.json:
        print_json([dict(i.to_json(), default=i.name == DEFAULT_BACKEND) for i in infos])
        return EXIT_OK
    width = max(len(i.name) for i in infos)
    for info in infos:
        mark = " (default)" if info.name == DEFAULT_BACKEND else ""
        text = f"error: {info.error}" if info.error else info.description
        click.echo(f"{info.name.ljust(width)}  {info.source}{mark}: {text}")
    return EXIT_OK

"""`ftbench export --model M --adapter A --output DIR`: merge a LoRA adapter into its base model."""

from __future__ import annotations

import click

from ftbench.api.errors import EXIT_OK
from ftbench.cli.options import allow_other_base_option, common_options, print_json, settings


@click.command()
@click.option("--model", required=True, help="The base model: hub id, local folder, or `tiny`.")
@click.option(
    "--adapter",
    required=True,
    type=click.Path(file_okay=False),
    help="The LoRA adapter folder (a training output_dir or one of its checkpoint-N folders).",
)
@click.option("--output", required=True, type=click.Path(), help="Folder for the merged model.")
@click.option("--overwrite", is_flag=True, help="Replace --output if it is not empty.")
@allow_other_base_option
@common_options
@click.pass_context
def export(ctx, model, adapter, output, overwrite, allow_other_base):
    """Merge the adapter's LoRA weights into the base model (peft merge_and_unload) and save a standalone model:
    safetensors weights in the base model's dtype, config, generation config and tokenizer. It loads with plain
    transformers, no peft needed, and generates exactly what base model + adapter generate.
    """
    from ftbench.inference.export import merge_and_save

    opts = settings(ctx)
    path = merge_and_save(model, adapter, output, overwrite=overwrite, allow_other_base=allow_other_base)
    if opts.json:
        print_json({"output": path, "model": model, "adapter": adapter})
    elif not opts.quiet:
        click.echo(f"merged model: {path}")
    return EXIT_OK

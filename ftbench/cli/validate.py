"""`ftbench validate`: find every mistake in SFT data files before a GPU hour is spent on them."""

from __future__ import annotations

import os
import sys

import click

from ftbench.api.errors import EXIT_INPUT_ERRORS, EXIT_OK, UsageError
from ftbench.cli.options import FiniteFloat, common_options, print_json, settings
from ftbench.data.formats import FORMAT_CHOICES
from ftbench.data.schema import MAX_TOKENS


def _split_names(values: tuple[str, ...]) -> list[str]:
    """--dataset a --dataset b, or LLaMA-Factory's comma-separated 'a,b'."""
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def _config_datasets(path: str, findings: list) -> list:
    """The DatasetSpecs of a training config's `dataset` and `eval_dataset`, resolved as training resolves them."""
    from ftbench.api.findings import Finding
    from ftbench.training.config import load_train_config
    from ftbench.training.data import resolve_datasets

    cfg, _ = load_train_config(path, base={"output_dir": "unused-by-validate"})  # only its data is read
    specs = resolve_datasets(cfg, cfg.dataset) + resolve_datasets(cfg, cfg.eval_dataset or [], "eval_dataset")
    names = ", ".join(cfg.dataset + (cfg.eval_dataset or []))
    findings.append(
        Finding(
            "training-config",
            f"a training config, not data: its datasets are validated ({names or 'none'})",
            severity="note",
            hint="validate data files, a data/ folder, or a config's datasets like this",
            file=path,
        )
    )
    return specs


def resolve_specs(paths, dataset_info, datasets, fmt, findings, media_dir=None):
    """Data files and dataset_info entries named on the command line, as DatasetSpecs."""
    from ftbench.data.dataset_info import declared_names, parse_dataset_info, resolve_dataset_names, unknown_name
    from ftbench.data.loader import DatasetSpec

    specs = []
    for path in paths:
        if (
            os.path.isdir(path)
            and os.path.isfile(os.path.join(path, "dataset_info.json"))
            and not dataset_info
            and not os.path.isfile(os.path.join(path, "state.json"))
        ):  # (state.json: a datasets save_to_disk)
            dataset_info = os.path.join(path, "dataset_info.json")  # a LLaMA-Factory data/ folder
            continue
        if not os.path.exists(path):
            raise UsageError(f"{path}: no such file")
        if os.path.basename(path) == "dataset_info.json":
            dataset_info = path
            continue
        if path.lower().endswith((".yaml", ".yml")):  # a training config: the data it trains and evaluates on
            specs += _config_datasets(path, findings)
            continue
        specs.append(DatasetSpec(path, formatting=None if fmt == "auto" else fmt))
    if datasets and not dataset_info:
        raise UsageError("--dataset names a dataset in a dataset_info.json: give --dataset-info FILE too")
    names = _split_names(datasets)
    info_path = (
        os.path.join(dataset_info, "dataset_info.json")
        if dataset_info and os.path.isdir(dataset_info)
        else dataset_info
    )
    if info_path and not names and specs:  # files given with their dataset_info: each read once, as declared
        entries = _entries_for_files(info_path, [s.path for s in specs if not s.declared])
        names = list(entries)
        specs = [s for s in specs if s.declared or os.path.realpath(s.path) not in entries.values()]
    if dataset_info and names and os.path.isfile(info_path):  # names resolve as a training config's `dataset:`
        found, unknown = resolve_dataset_names(
            names, info_path, findings, media_dir=media_dir, formatting=None if fmt == "auto" else fmt
        )
        if unknown:
            raise UsageError(unknown_name(info_path, unknown[0], declared_names(info_path)))
        specs += found
    elif dataset_info:
        specs += parse_dataset_info(dataset_info, names or None, findings, media_dir=media_dir)
    return specs


def _entries_for_files(info_path: str, paths: list[str]) -> dict[str, str]:
    """entry name -> file, for the dataset_info entries whose file_name is one of ``paths`` (none when the file
    cannot be read: the dataset_info checks say why)."""
    import json

    wanted = {os.path.realpath(p) for p in paths}
    try:
        with open(info_path, encoding="utf-8") as fh:
            info = json.load(fh)
    except (OSError, ValueError):
        return []
    folder = os.path.dirname(os.path.abspath(info_path))
    entries = {
        name: os.path.realpath(os.path.join(folder, entry["file_name"]))
        for name, entry in (info.items() if isinstance(info, dict) else ())
        if isinstance(entry, dict) and isinstance(entry.get("file_name"), str)
    }
    return {name: path for name, path in entries.items() if path in wanted}


class _Progress:
    """A byte-based progress bar that appears only if reading takes more than a couple of seconds."""

    def __init__(self, total: int, enabled: bool):
        self.bar = None
        if enabled and total > 0:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, unit="B", unit_scale=True, delay=2.0, desc="validate", leave=False, file=sys.stderr
            )

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--dataset-info", type=click.Path(), help="A LLaMA-Factory dataset_info.json (file paths in it are relative to it)."
)
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    help="Dataset name(s) in --dataset-info (repeat, or a,b), or "
    "data file paths, as a training config's dataset: takes them. Default: all of them.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMAT_CHOICES),
    default="auto",
    show_default=True,
    help="Data format of PATHS; auto-detection says what it chose and why.",
)
@click.option(
    "--media-dir",
    type=click.Path(file_okay=False),
    help="Where image/video/audio paths in the data are "
    "relative to (LLaMA-Factory's media_dir). Default: the folder of dataset_info.json.",
)
@click.option(
    "--near-dup/--no-near-dup", default=True, show_default=True, help="Find near-duplicates with MinHash LSH."
)
@click.option(
    "--near-dup-threshold",
    type=FiniteFloat(0.1, 1.0),
    default=0.8,
    show_default=True,
    help="Estimated Jaccard similarity (character 5-grams) from which records are near-duplicates.",
)
@click.option(
    "--cutoff-len", type=click.IntRange(1, MAX_TOKENS), help="Warn about samples longer than this many tokens."
)
@click.option(
    "--tokenizer",
    help="Count real tokens with this tokenizer (hub id or path; imports transformers). "
    "Without it, token counts are estimates.",
)
@click.option(
    "--against", multiple=True, type=click.Path(), help="A test set: warn about train/test overlap (exact and near)."
)
@click.option(
    "--answer-format",
    type=click.Choice(["gsm8k"]),
    help="Check every answer's format: gsm8k answers must end in '#### <number>'.",
)
@click.option("--task", "old_answer_format", type=click.Choice(["gsm8k"]), hidden=True)  # its old name
@click.option(
    "--html", "html_path", type=click.Path(dir_okay=False), help="Also write the report as a self-contained HTML page."
)
@click.option(
    "--max-shown",
    type=click.IntRange(0),
    default=20,
    show_default=True,
    help="Findings of each kind listed in the text summary.",
)
@common_options
@click.pass_context
def validate(
    ctx,
    paths,
    dataset_info,
    datasets,
    fmt,
    media_dir,
    near_dup,
    near_dup_threshold,
    cutoff_len,
    tokenizer,
    against,
    answer_format,
    old_answer_format,
    html_path,
    max_shown,
):
    """Check SFT data: JSON syntax (with file:line:column), record structure (with field paths) and data
    quality (duplicates, placeholders, broken text, lengths, overlap with a test set).

    PATHS are data files of any type LLaMA-Factory reads (.json, .jsonl, .csv, .parquet, .arrow, .txt), folders
    of them, or a LLaMA-Factory data/ folder holding dataset_info.json (hub entries are checked when the hub or
    its cache has them). Exit code 0: no errors (warnings and notes allowed); 1: the data has errors; 2: usage or
    I/O problem.
    """
    from ftbench.api.findings import Finding
    from ftbench.data.loader import DatasetSpec
    from ftbench.quality.checks import QualityOptions
    from ftbench.quality.validate import validate as run_validate

    opts = settings(ctx)
    if not paths and not dataset_info:
        raise click.UsageError("give data files, a folder with dataset_info.json, or --dataset-info FILE")
    findings: list[Finding] = []
    specs = resolve_specs(paths, dataset_info, datasets, fmt, findings, media_dir)
    against_specs = []
    for path in against:
        if not os.path.exists(path):
            raise UsageError(f"--against {path}: no such file")
        against_specs.append(DatasetSpec(path))
    counter = None
    if tokenizer:
        from ftbench.quality.tokens import TokenCounter

        counter = TokenCounter(tokenizer)
    options = QualityOptions(
        near_dup=near_dup,
        near_dup_threshold=near_dup_threshold,
        cutoff_len=cutoff_len,
        answer_format=answer_format or old_answer_format,
        token_counter=counter,
    )
    bars: list[_Progress] = []

    def progress(total: int):
        bars.append(_Progress(total, enabled=not opts.quiet and sys.stderr.isatty()))
        return bars[-1].update

    try:
        report = run_validate(specs, options, against=against_specs, findings=findings, progress=progress)
    finally:
        for bar in bars:
            bar.close()

    if html_path:
        from ftbench.io import atomic_write_text
        from ftbench.report.validation import validation_html

        atomic_write_text(html_path, validation_html(report))
    if opts.json:
        print_json(report.to_json())
    elif opts.quiet:
        for f in report.errors:
            click.echo(f.one_line(), err=True)
    else:
        from ftbench.report.validation import validation_text

        click.echo(validation_text(report, max_shown=max_shown, color=sys.stdout.isatty()))
        if html_path:
            click.echo(f"HTML report: {html_path}")
    return EXIT_OK if report.ok else EXIT_INPUT_ERRORS

"""`ftbench compare A B`: two prediction files, two run folders, or two metrics.json, side by side."""

from __future__ import annotations

import json
import os

import click

from ftbench.api.errors import InputError, UsageError
from ftbench.cli.options import common_options, print_json, scorer_option, settings


def _kind(path: str) -> str:
    from ftbench.recipes.run_folder import RunFolder

    if os.path.isdir(path):
        if not RunFolder.holds_run(path):
            raise UsageError(f"{path}: not a train-and-compare run folder (no metrics.json)")
        return "run"
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such file")
    if os.path.basename(path).endswith(".json"):
        with open(path, "rb") as fh:  # a JSON array of prediction rows is predictions, as `score` reads it
            head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        return "predictions" if head.startswith(b"[") else "metrics"
    return "predictions"


def _load_metrics(path: str) -> dict:
    from ftbench.data.reader import read_small_file
    from ftbench.data.schema import MetricsFile, SchemaError, check

    try:
        data = json.loads(read_small_file(path, "metrics.json"))
    except (ValueError, RecursionError) as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or "after" not in data:
        raise InputError(f'{path}: not a train-and-compare metrics.json (no "after" figures)')
    try:
        check(data, MetricsFile)
    except SchemaError as e:
        raise InputError(f"{path}: {e}") from None
    return data


def _compare_metrics(a: str, b: str) -> tuple[dict, dict, list[str]]:
    """The "after" figures of two metrics.json, and a warning for every figure whose signatures differ: such
    figures were computed differently (another tokeniser, task version, library) and are not comparable."""
    ma, mb = _load_metrics(a), _load_metrics(b)
    figures = {
        f: {
            "before": ma["after"][f],
            "after": mb["after"].get(f),
            "delta": (mb["after"].get(f) or 0) - (ma["after"][f] or 0),
        }
        for f in ma["after"]
        if ma["after"][f] is not None and mb["after"].get(f) is not None
    }
    sa, sb = ma.get("signatures") or {}, mb.get("signatures") or {}
    warnings = [
        f"{f}: the signatures differ, so the two figures are not comparable: A {sa.get(f)!r}, B {sb.get(f)!r}"
        for f in figures
        if sa.get(f) != sb.get(f)
    ]
    return figures, {f: sa.get(f) for f in figures}, warnings


@click.command()
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@scorer_option(
    default="auto",
    extra=("auto",),
    help="How to score prediction files (auto: the scorer that "
    "recognises the labels, gsm8k if they end in '#### N', else similarity).",
)
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Also write a self-contained HTML page.")
@common_options
@click.pass_context
def compare(ctx, a, b, scorer, html_path):
    """Compare A (before / baseline) with B (after / candidate) on the same samples: each figure's delta with a
    95% paired-bootstrap CI, wins/losses/ties, McNemar's test for GSM8K accuracy.

    Prediction files are LLaMA-Factory generated_predictions.jsonl (prompt/predict/label). For two run folders the
    fine-tuned models (each run's "after") are compared; for two metrics.json only the figures (no per-sample
    statistics), with a warning for every figure whose signatures differ.
    """
    from ftbench.data.predictions import read_prediction_rows
    from ftbench.evaluation.comparison import compare_scorer, read_side
    from ftbench.metrics.registry import SCORERS, recognise_scorer
    from ftbench.recipes.run_folder import RunFolder

    opts = settings(ctx)
    kind_a, kind_b = _kind(a), _kind(b)
    if kind_a != kind_b:
        raise UsageError(f"A is {kind_a} and B is {kind_b}: compare like with like")
    compared, warnings = {}, []
    if kind_a == "predictions":
        rows_a, rows_b = read_prediction_rows(a), read_prediction_rows(b)
        name = recognise_scorer([r["label"] for r in rows_a]) if scorer == "auto" else scorer
        compared[name] = compare_scorer(name, rows_a, rows_b)
    elif kind_a == "run":
        for name in SCORERS.targets():
            pa, pb = RunFolder(a).predictions(name, "after"), RunFolder(b).predictions(name, "after")
            if os.path.exists(pa) and os.path.exists(pb):
                scoring = SCORERS.create(name)
                compared[name] = compare_scorer(name, read_side(scoring, pa), read_side(scoring, pb))
    if compared:
        figures = {f: e for t in compared.values() for f, e in t.figures.items()}
        signatures = {f: s for t in compared.values() for f, s in t.signatures.items()}
    else:  # two metrics.json: the figures only
        figures, signatures, warnings = _compare_metrics(a, b)
    result = {
        "a": a,
        "b": b,
        "kind": kind_a,
        "comparison": figures,
        "signatures": signatures,
        "n": {name: t.n for name, t in compared.items()},
        "warnings": warnings,
    }
    if html_path:
        from ftbench.io import atomic_write_text
        from ftbench.report.run_report import render_compare_report

        atomic_write_text(html_path, render_compare_report(result, compared))
    if not opts.quiet:
        for warning in warnings:
            click.echo(f"ftbench: warning: {warning}", err=True)
    if opts.json:
        print_json(result)
    elif not opts.quiet:
        from ftbench.report.comparison_text import comparison_table

        click.echo(f"A = {a}\nB = {b}\n")
        click.echo("\n".join(comparison_table(figures, labels=("A", "B", "B - A"), details=True)))
        if html_path:
            click.echo(f"\nHTML report: {html_path}")
    return 0

"""`ftbench compare A B`: two prediction files, two run folders, or two metrics.json, side by side."""

from __future__ import annotations

import json
import os
import re

import click

from ftbench.api.errors import InputError, UsageError
from ftbench.cli import common_options, settings

_GSM8K_LABEL = re.compile(r"#### *-?[0-9.,$]+\s*$")


def _guess_task(rows: list[dict]) -> str:
    hits = sum(1 for r in rows if _GSM8K_LABEL.search(str(r.get("label", ""))))
    return "gsm8k" if rows and hits >= 0.8 * len(rows) else "similarity"


def _kind(path: str) -> str:
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "metrics.json")):
            raise UsageError(f"{path}: not a train-and-compare run folder (no metrics.json)")
        return "run"
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such file")
    if os.path.basename(path).endswith(".json"):
        return "metrics"
    return "predictions"


def _load_metrics(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except ValueError as e:
        raise InputError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or "after" not in data:
        raise InputError(f"{path}: not a train-and-compare metrics.json (no \"after\" figures)")
    return data


@click.command(short_help="Compare two prediction files, two run folders, or two metrics.json.")
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@click.option("--task", type=click.Choice(["auto", "similarity", "gsm8k"]), default="auto", show_default=True,
              help="How to score prediction files (auto: gsm8k if the labels end in '#### N').")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Also write a self-contained HTML page.")
@common_options
@click.pass_context
def compare(ctx, a, b, task, html_path):
    """Compare A (before / baseline) with B (after / candidate) on the same samples: each figure's delta with a
    95% paired-bootstrap CI, wins/losses/ties, McNemar's test for GSM8K accuracy.

    Prediction files are LLaMA-Factory generated_predictions.jsonl (prompt/predict/label). For two run folders the
    fine-tuned models (each run's "after") are compared; for two metrics.json only the figures (no per-sample
    statistics).
    """
    from ftbench.compare import compare_task, read_prediction_rows

    opts = settings(ctx)
    kind_a, kind_b = _kind(a), _kind(b)
    if kind_a != kind_b:
        raise UsageError(f"A is {kind_a} and B is {kind_b}: compare like with like")
    tasks = {}
    if kind_a == "predictions":
        rows_a, rows_b = read_prediction_rows(a), read_prediction_rows(b)
        name = _guess_task(rows_a) if task == "auto" else task
        tasks[name] = compare_task(name, rows_a, rows_b)
    elif kind_a == "run":
        for name, file in (("similarity", "predictions_after.jsonl"), ("gsm8k", "gsm8k_predictions_after.jsonl")):
            pa, pb = os.path.join(a, file), os.path.join(b, file)
            if os.path.exists(pa) and os.path.exists(pb):
                tasks[name] = compare_task(name, read_prediction_rows(pa), read_prediction_rows(pb))
    if tasks:
        figures = {f: e for t in tasks.values() for f, e in t.figures.items()}
    else:  # two metrics.json: the figures only
        ma, mb = _load_metrics(a), _load_metrics(b)
        figures = {f: {"before": ma["after"][f], "after": mb["after"].get(f),
                       "delta": (mb["after"].get(f) or 0) - (ma["after"][f] or 0)}
                   for f in ma["after"] if ma["after"][f] is not None and mb["after"].get(f) is not None}
    result = {"a": a, "b": b, "kind": kind_a, "comparison": figures,
              "signatures": {f: s for t in tasks.values() for f, s in t.signatures.items()},
              "n": {name: t.n for name, t in tasks.items()}}
    if html_path:
        from ftbench.io import atomic_write_text
        from ftbench.report.run_report import render_run_report

        atomic_write_text(html_path, render_run_report({**result, "run": {}}, tasks, [], None,
                                                       title=f"ftbench compare: {a} → {b}"))
    if opts.json:
        click.echo(json.dumps(result, ensure_ascii=False, default=str))
    elif not opts.quiet:
        click.echo(f"A = {a}\nB = {b}\n")
        click.echo(f"{'metric':<18}{'A':>10}{'B':>10}{'B - A':>10}   95% CI (paired)   wins/losses/ties")
        for fig, e in figures.items():
            ci = e.get("delta_ci95")
            wlt = f"{e['wins']}/{e['losses']}/{e['ties']}" if "wins" in e else ""
            click.echo(f"{fig:<18}{e['before']:>10.4f}{e['after']:>10.4f}{e['delta']:>+10.4f}   "
                       + (f"[{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "–".ljust(18)) + f"   {wlt}")
            if "mcnemar" in e:
                m = e["mcnemar"]
                click.echo(f"{'':<18}McNemar p = {m['p_value']:.3g} ({m['wrong_to_right']} wrong→right, "
                           f"{m['right_to_wrong']} right→wrong)")
        if html_path:
            click.echo(f"\nHTML report: {html_path}")
    return 0

"""`ftbench score`: LLaMA-Factory's BLEU/ROUGE and lm-eval's GSM8K figures for a prediction file, with
their uncertainty, signatures, and (GSM8K) why strict-match and flexible-extract disagree."""

from __future__ import annotations

import click

from ftbench.api.errors import UsageError
from ftbench.cli.options import common_options, print_json, scorer_option, settings


def _split(values: tuple[str, ...], known: frozenset[str] = frozenset()) -> list[str]:
    """Comma-separated names; a known name that itself holds commas (lm-eval's `exact_match,strict-match`) is
    kept whole, the longest match first."""
    names = []
    for value in values:
        parts = [p.strip() for p in value.split(",")]
        i = 0
        while i < len(parts):
            j = next((j for j in range(len(parts), i + 1, -1) if ",".join(parts[i:j]) in known), i + 1)
            if ",".join(parts[i:j]):
                names.append(",".join(parts[i:j]))
            i = j
    return names


def write_samples(path: str, predictions, result) -> None:
    """One JSON object per input record, in input order: its location and every per-sample field."""
    import orjson

    fields = list(result.samples)
    with open(path, "wb") as out:
        for i in range(result.n):
            row = {"index": predictions.indices[i], "line": predictions.lines[i]}
            row.update({name: result.samples[name][i] for name in fields})
            out.write(orjson.dumps(row) + b"\n")


@click.command()
@click.argument("file", type=click.Path())
@scorer_option(
    default="similarity",
    help="How to score: similarity, LLaMA-Factory's predict metrics (bleu-4, "
    "rouge-1/2/l); gsm8k, lm-eval's gsm8k exact_match (strict-match, flexible-extract); or a scorer a "
    "package registers (ftbench.scorers entry points).",
)
@click.option(
    "--metrics",
    "metric_names",
    multiple=True,
    metavar="NAMES",
    help="Metrics or figures to compute, comma-separated (default: the scorer's). Also available: "
    "sacrebleu (corpus BLEU), rouge-score (rouge1, rouge2, rougeL, rougeLsum).",
)
@click.option(
    "--samples",
    "samples_path",
    type=click.Path(dir_okay=False, writable=True),
    help="Write per-sample scores (and GSM8K extractions) to this JSONL file, one row per input.",
)
@click.option(
    "--until",
    multiple=True,
    metavar="TEXT",
    help="gsm8k: cut each prediction at this stop sequence first, as lm-eval's generation does "
    "(repeatable; e.g. --until 'Question:').",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1),
    help="Worker processes for BLEU/ROUGE (default: one per CPU for large files).",
)
@common_options
@click.pass_context
def score(ctx, file, scorer, metric_names, samples_path, until, jobs):
    """Score FILE, a LLaMA-Factory generated_predictions.jsonl (prompt/predict/label), an ftbench prediction
    file (same fields) or an lm-eval samples file (resps/target).

    \b
    similarity figures equal LLaMA-Factory's do_predict figures to the last printed decimal;
    gsm8k figures equal lm-eval's (its own filter and metric code runs).
    Every figure comes with lm-eval's standard error, a 95% bootstrap interval and a signature.
    """
    opts = settings(ctx)
    from ftbench.data.predictions import check_path, read_predictions
    from ftbench.metrics.registry import SCORERS, figure_owners, get_metric
    from ftbench.metrics.scoring import score_pairs

    names = _split(metric_names, frozenset(figure_owners())) or None
    for name in names or ():
        get_metric(name)  # an unknown name fails here, before the file is read
    chosen = SCORERS.create(scorer)
    if until and not any(
        chosen.metric_options(name, {"until": until}).get("until") for name in names or chosen.default_metrics
    ):
        raise UsageError(
            f"--until applies to generations a stop sequence cuts (--scorer gsm8k), not to --scorer "
            f"{scorer}{' --metrics ' + ','.join(names) if names else ''}"
        )
    check_path(file)
    predictions = read_predictions(file, numeric_labels=chosen.numeric_labels)
    result = score_pairs(
        predictions.predictions,
        predictions.references,
        scorer=scorer,
        metrics=names,
        jobs=jobs,
        until=until,
        lines=predictions.lines,
    )
    if samples_path:
        write_samples(samples_path, predictions, result)
    if opts.json:
        out = {"file": file, "format": predictions.format, **result.to_json()}
        if samples_path:
            out["samples_file"] = samples_path
        print_json(out)
        return 0
    if opts.quiet:
        return 0
    from ftbench.report.score_text import score_text

    click.echo(score_text(result, source=file, description=chosen.description))
    if samples_path:
        click.echo(f"per-sample scores: {samples_path}")
    return 0

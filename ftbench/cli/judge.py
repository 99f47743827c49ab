"""`ftbench judge A B`: a judge model compares two sets of answers to the same prompts, pairwise, in both orders."""

from __future__ import annotations

import os

import click

from ftbench.cli.options import FiniteFloat, common_options, print_json, settings


def _rows(path: str) -> list[dict]:
    """Prediction rows of a prediction file, or of a run folder's fine-tuned model on its held-out split."""
    from ftbench.api.errors import UsageError
    from ftbench.data.predictions import check_path, read_prediction_rows
    from ftbench.metrics.registry import DEFAULT_SCORER
    from ftbench.recipes.run_folder import RunFolder

    if os.path.isdir(path):
        if not RunFolder.holds_run(path):
            raise UsageError(f"{path}: not a train-and-compare run folder (no metrics.json)")
        path = RunFolder(path).predictions(DEFAULT_SCORER, "after")
    check_path(path)
    return read_prediction_rows(path)


@click.command()
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@click.option(
    "--judge-model",
    required=True,
    help="The judge: its name at --judge-url, or a local model (hub id, folder, smollm2) run here without --judge-url.",
)
@click.option("--judge-url", help="An OpenAI-compatible server (its /chat/completions) serving --judge-model.")
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(dir_okay=False),
    help="The judgments file (JSONL, append-only); rerun with the same file to resume.",
)
@click.option(
    "--api-key-env",
    default="OPENAI_API_KEY",
    show_default=True,
    help="The environment variable holding the judge server's API key (never printed or written).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=4,
    show_default=True,
    help="Requests in flight (a local judge: prompts per batch).",
)
@click.option(
    "--request-timeout",
    type=FiniteFloat(1.0, 86_400.0),
    default=600.0,
    show_default=True,
    help="Seconds for one reply, all of it.",
)
@click.option(
    "--max-new-tokens",
    type=click.IntRange(1, 8192),
    default=512,
    show_default=True,
    help="Length of the judge's reply (its reasoning, then the verdict).",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 10),
    default=2,
    show_default=True,
    help="Asks again when a reply has no [[A]]/[[B]]/[[C]] verdict, then records it as unparseable.",
)
@click.option(
    "--judge-templates",
    type=click.Path(file_okay=False, exists=True),
    help="A folder of judge prompts (system.j2, pair.j2, pair_reference.j2; or en/ and zh/ with them) "
    "replacing the shipped ones.",
)
@common_options
@click.pass_context
def judge(
    ctx,
    a,
    b,
    judge_model,
    judge_url,
    out,
    api_key_env,
    concurrency,
    request_timeout,
    max_new_tokens,
    retries,
    judge_templates,
):
    """Judge B (the candidate, e.g. the fine-tuned model) against A (the baseline) on the same prompts: each
    prompt twice with the answers swapped (MT-Bench's pairwise judge; a pair whose two orders disagree is a tie),
    with the reference answer shown where there is one. A and B are prediction files (prompt/predict/label) or
    train-and-compare run folders. Prints B's wins/losses/ties, its win rate with a 95% paired-bootstrap CI, a
    sign test, the win rate by which answer is longer, and the agreement with ROUGE-L's direction.
    """
    from ftbench.api.errors import InputError
    from ftbench.evaluation.judge import JudgeSettings, Pair, rouge_l_gain
    from ftbench.evaluation.judge import judge as run_judge
    from ftbench.inference.chat import user_text

    opts = settings(ctx)
    rows_a, rows_b = _rows(a), _rows(b)
    if len(rows_a) != len(rows_b) or any(x["prompt"] != y["prompt"] for x, y in zip(rows_a, rows_b)):
        raise InputError(
            f"{a} and {b} are not answers to the same prompts ({len(rows_a)} and {len(rows_b)} rows, "
            "paired by position): judge files from the same held-out split"
        )
    pairs = [
        Pair(user_text(x["prompt"]) or x["prompt"], x["predict"], y["predict"], x["label"] or None)
        for x, y in zip(rows_a, rows_b)
    ]
    result = run_judge(
        pairs,
        JudgeSettings(
            judge_model, judge_url, api_key_env, concurrency, request_timeout, max_new_tokens, retries, judge_templates
        ),
        out,
        metric=rouge_l_gain(rows_a, rows_b),
    )
    if opts.json:
        print_json({"a": a, "b": b, "judgments": out, **result})
    elif not opts.quiet:
        click.echo(judgment_text(result, a, b))
    return 0


def judgment_text(r: dict, a: str, b: str) -> str:
    """The judgment in a few lines for the terminal."""
    ci = r["win_rate_ci95"]
    lines = [f"A = {a}\nB = {b}\njudge: {r['judge']}, {r['judged']} of {r['n']} prompts judged in both orders"]
    if r["win_rate"] is not None:
        lines.append(
            f"B wins {r['wins']}, loses {r['losses']}, ties {r['ties']} ({r['inconsistent']} ties are orders "
            f"that disagreed); win rate {r['win_rate']:.3f}"
            + (f" (95% CI {ci[0]:.3f}…{ci[1]:.3f})" if ci else "")
            + f", sign test p = {r['sign_test']['p_value']:.3g}"
        )
        separated = ci is not None and (ci[0] > 0.5 or ci[1] < 0.5)
        lines.append(
            "B is " + ("better" if r["win_rate"] > 0.5 else "worse") + " by this judge, and the CI excludes 0.5"
            if separated
            else "no clear preference: the CI of the win rate includes 0.5"
        )
    if r["unparseable"]:
        lines.append(f"{r['unparseable']} prompt(s) without a parseable verdict (see the judgments file)")
    bias = r["length_bias"]
    lines.append(
        "win rate when B is longer: "
        + ", when A is longer: ".join(
            f"{v['win_rate']:.3f} ({v['n']})" if v["win_rate"] is not None else f"– ({v['n']})"
            for v in (bias["candidate_longer"], bias["baseline_longer"])
        )
    )
    agree = r["metric_agreement"]
    if agree["share"] is not None:
        lines.append(f"agrees with ROUGE-L's direction on {agree['agree']} of {agree['decisive']} decisive verdicts")
    if r["tokens"]:
        lines.append("tokens: " + ", ".join(f"{k} {v:,}" for k, v in r["tokens"].items()))
    return "\n".join(lines)

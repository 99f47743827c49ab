"""Before/after comparison of two prediction sets over the same samples, by a scorer: every figure's delta with a
paired bootstrap CI, wins/losses/ties, McNemar's test for accuracies, and a per-sample table (improved / regressed
/ unchanged). Used by `train-and-compare`, `sweep` and `ftbench compare`. How a scorer compares is its own
(`Scorer.compare`: by default each side scored and paired, `ftbench.metrics.scorers.SampleScorer`); the statistics
live in `ftbench.metrics.uncertainty`.
"""

from __future__ import annotations

from dataclasses import asdict

from ftbench.api.errors import InputError
from ftbench.api.metrics import Comparison
from ftbench.inference.chat import user_text
from ftbench.metrics.evidence import Evidence, change_evidence
from ftbench.metrics.registry import SCORERS, scorer_for_figure


def score_figure(rows: list[dict], figure: str) -> tuple[float, list[float], list[float] | None]:
    """One figure of a prediction file's rows, named as the report names it: (value, per-sample values, 95% CI)."""
    result = scorer_for_figure(figure).score(rows)
    return result.metrics[figure], list(result.samples[figure]), result.ci95.get(figure)


def read_side(scorer, path: str) -> list[dict]:
    """One side's rows of ``scorer`` in a run folder: a prediction file (prompt/predict/label), or for a scorer that
    runs the model itself, the rows its `run_model` wrote (`Scorer.read_rows`)."""
    from ftbench.data.predictions import read_prediction_rows

    return scorer.read_rows(path) if scorer.runs_model else read_prediction_rows(path)


def compare_scorer(scorer: str, before: list[dict], after: list[dict], run: tuple | None = None) -> Comparison:
    """Compare two prediction lists (LLaMA-Factory rows: prompt/predict/label) with the scorer named ``scorer``;
    inside a run, ``run`` is its (RunSettings, RunFolder) (`Scorer.compare_in_run`).

    Rows are paired by position; their prompts and labels must agree, or the comparison is meaningless."""
    if len(before) != len(after):
        raise InputError(
            f"cannot compare {len(before)} predictions with {len(after)}: they must cover the same samples"
        )
    for i, (x, y) in enumerate(zip(before, after)):
        if x.get("label") != y.get("label") or x.get("prompt") != y.get("prompt"):
            raise InputError(
                f"row {i}: the two prediction files differ in prompt or label: they are not over the same samples"
            )
    # scorers and the report see what the user asked, not the rendered chat template
    before, after = ([{**r, "prompt": user_text(r.get("prompt", ""))} for r in rows] for rows in (before, after))
    scoring = SCORERS.create(scorer)
    comparison = scoring.compare_in_run(before, after, *run) if run else scoring.compare(before, after)
    for entry in comparison.figures.values():
        if entry is not None:
            # over its own samples where a figure says how many (a benchmark task's documents), else all of them
            entry["verdict"] = asdict(figure_evidence(scoring, entry, entry.get("n", comparison.n)))
    return comparison


def figure_evidence(scorer, entry: dict, n: int, seeds: int = 1) -> Evidence:
    """One figure's change in words (`metrics.evidence`), in the scorer's units and decimals; over ``seeds``
    trainings when there were several (the interval then covers them)."""
    return change_evidence(
        entry["delta"],
        entry.get("delta_ci95"),
        n,
        unit=scorer.sample_unit,
        seeds=seeds,
        higher_is_better=scorer.higher_is_better,
        fmt=(lambda v: f"{v:+.2f}") if scorer.percent else _three_decimals,
    )


def _three_decimals(v: float) -> str:
    """+0.123; a change too small for three decimals in three significant digits (+0.000119, not +0.000)."""
    return f"{v:+.3f}" if v == 0 or abs(v) >= 0.0005 else f"{v:+.3g}"


def answers_at_limit(sides: dict[str, list[dict]], tokenizer, limit: int) -> dict:
    """How many answers of each side reached the generation limit of ``limit`` new tokens (counted by
    re-tokenizing each answer with the model's tokenizer: an answer cut at the limit has ``limit`` tokens, one
    that ended on its own has fewer), and how many tokens each side generated ("tokens"). Figures over cut
    answers score text the model never finished."""
    out: dict = {"limit": limit, "tokens": {}}
    for side, rows in sides.items():
        texts = [str(r.get("predict", "")) for r in rows]
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        out[side] = sum(len(i) >= limit for i in ids)
        out["tokens"][side] = sum(min(len(i), limit) for i in ids)
        out["n"] = len(rows)
    return out


def limit_warning(scorer, info: dict) -> str | None:
    """A sentence when answers reached the generation limit: a warning that the figures mean little when most
    did (on either side), a note when some did; None when none did."""
    n, limit = info.get("n") or 0, info["limit"]
    worst = max(info.get("before", 0), info.get("after", 0))
    if not n or not worst:
        return None
    counts = f"{info.get('before', 0)} of {n} {scorer.sample_unit} before and {info.get('after', 0)} after"
    flag = "--" + scorer.length_setting.replace("_", "-")
    if worst * 2 >= n:
        return (
            f"Caution: {counts} reached the {limit}-token limit, so {', '.join(scorer.figures)} score "
            f"answers the model never finished and cannot show what it would answer; raise {flag}."
        )
    return f"Note: {counts} reached the {limit}-token limit ({flag})."

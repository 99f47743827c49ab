"""Before/after figures as terminal text: the table `train-and-compare` ends with and `ftbench compare` prints."""

from __future__ import annotations

import os


def comparison_table(
    figures: dict, *, labels: tuple[str, str, str] = ("before", "after", "delta"), details: bool = False
) -> list[str]:
    """One line per figure: both values, the difference and its 95% paired CI; with ``details`` also
    wins/losses/ties and McNemar's test where they were computed."""
    head = f"{'metric':<18}{labels[0]:>10}{labels[1]:>10}{labels[2]:>10}   95% CI of {labels[2]}"
    lines = [head + ("   wins/losses/ties" if details else "")]
    for fig, e in figures.items():
        ci = e.get("delta_ci95")
        line = f"{fig:<18}{e['before']:>10.4f}{e['after']:>10.4f}{e['delta']:>+10.4f}   " + (
            f"[{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "–".ljust(18)
        )
        if details and "wins" in e:
            line += f"   {e['wins']}/{e['losses']}/{e['ties']}"
        lines.append(line.rstrip())
        if details and "mcnemar" in e:
            m = e["mcnemar"]
            lines.append(
                f"{'':<18}McNemar p = {m['p_value']:.3g} ({m['wrong_to_right']} wrong→right, "
                f"{m['right_to_wrong']} right→wrong)"
            )
    return lines


ANSWERS = {"better": "Yes", "worse": "No, it got worse", "unchanged": "No change", "unclear": "Not detectably"}


def did_it_help(
    comparison: dict, primary: str | None, at_limit: dict | None = None, question: str = "Did it help?"
) -> list[str]:
    """The answer in words, one sentence per kind of evidence: the ``primary`` figure's verdict first ("did it
    help?"), then the other figures grouped as better, worse, unchanged or not detectably changed, then a caution
    per scorer whose answers reached the generation limit (``at_limit``: metrics.json's). Figures without a
    verdict (not measured) are left out."""
    from ftbench.evaluation.comparison import limit_warning
    from ftbench.metrics.registry import SCORERS

    verdicts = {f: e["verdict"] for f, e in comparison.items() if e and e.get("verdict")}
    if not verdicts:
        return []
    lines = []
    if primary in verdicts:
        v = verdicts.pop(primary)
        answer = ANSWERS.get(v["kind"], "Cannot tell")
        detail = v["words"].removeprefix(f"{v['kind']}: ")
        lines.append(
            f"{question} {answer} — {primary}: {detail}." + (f" {_sentence(v['surer'])}" if v["surer"] else "")
        )
    groups: dict[str, list[str]] = {}
    for figure, v in verdicts.items():
        groups.setdefault(v["kind"], []).append(figure)
    for kind, intro in (
        ("better", "Better (95% CI excludes 0)"),
        ("worse", "Worse (95% CI excludes 0)"),
        ("unchanged", "Unchanged on every sample"),
        ("unclear", "No detectable change (95% CI includes 0)"),
        ("unknown", "Too few samples for an interval"),
    ):
        if kind in groups:
            lines.append(f"{intro}: {', '.join(groups[kind])}.")
    for name, info in (at_limit or {}).items():
        warning = limit_warning(SCORERS.create(name), info) if name in SCORERS else None
        if warning:
            lines.append(warning)
    return lines


def scorer_lines(metrics: dict) -> list[str]:
    """Each scorer's own headline sentences from its run detail and figures (retention: what the fine-tune cost
    on general prompts, the phrases it spread)."""
    from ftbench.metrics.registry import scorers

    comparison = metrics.get("comparison") or {}
    return [
        line
        for name, scorer in scorers().items()
        for line in scorer.headline_lines(metrics.get(name) if scorer.run_detail else None, comparison)
    ]


def seed_lines(metrics: dict) -> list[str]:
    """What a run's figures say about training noise: with one training seed, that it is not measured; with
    several, whether the primary figure's change stands out of seed and sample noise together."""
    from ftbench.metrics.registry import scorer_for_figure

    seeds, primary = metrics.get("seeds"), metrics.get("primary")
    if not seeds:
        return [
            "One training seed: the intervals cover the held-out samples, not training noise (LoRA initialisation, "
            "data order, dropout), which on small data can be as large as the change; --seeds 3 measures it."
        ]
    entry = (metrics.get("comparison") or {}).get(primary) or {}
    if not entry.get("seeds"):
        return [f"{seeds['n']} training seeds ({', '.join(map(str, seeds['seeds']))})."]
    digits = 2 if scorer_for_figure(primary).percent else 3
    per_seed = ", ".join(f"{d:+.{digits}f}" for d in entry["seeds"]["delta"])
    sd = entry["seeds"]["delta_sd"]
    stands = entry["verdict"]["kind"] in ("better", "worse")
    return [
        f"Training noise: {primary} changed {per_seed} over {seeds['n']} training seeds (seed-to-seed sd "
        f"{sd:.{digits}f}); the 95% CI covers seeds and held-out samples together, so the change "
        + ("stands out of training and sample noise." if stands else "does not stand out of training and sample noise.")
    ]


def data_cautions(trained: dict | None) -> list[str]:
    """Sentences for the headline about what was trained, when it undermines the figures: unfilled template
    placeholders ({{name}}) in the training samples or in the held-out references."""
    if not trained:
        return []
    lines = []
    if trained.get("with_placeholders"):
        lines.append(
            f"Caution: {trained['with_placeholders']} of the {trained['samples']} training samples hold an unfilled "
            "template placeholder such as {{name}}: the model learns the braces literally. Fill them in before "
            "training (LLaMA-Factory's self-cognition tutorial replaces {{name}} and {{author}})."
        )
    if trained.get("held_out_references_with_placeholders"):
        lines.append(
            f"Caution: {trained['held_out_references_with_placeholders']} of the {trained['held_out']} held-out "
            "references hold a placeholder, so answers are scored against the braces."
        )
    return lines


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


STAGE_WORDS = {"validate": "data checks", "evaluate_before": "base model", "train": "training",
               "select_checkpoint": "checkpoint selection", "evaluate_after": "fine-tuned model"}  # fmt: skip


def verdict_cost(metrics: dict) -> list[str]:
    """What this verdict cost, stage by stage: seconds (summed over resumed segments and, with --seeds, over the
    seeds) and the tokens each stage generated, trained on or spent judging. The stages' parts (each eval set)
    are in the report's time-per-stage table."""
    run = metrics.get("run") or {}
    durations, cost = run.get("durations") or {}, run.get("cost") or {}
    if not durations:
        return []
    limits = (metrics.get("at_limit") or {}).values()
    tokens = {
        "evaluate_before": sum((i.get("tokens") or {}).get("before", 0) for i in limits),
        "evaluate_after": sum((i.get("tokens") or {}).get("after", 0) for i in limits),
    }
    epochs = (run.get("config") or {}).get("num_train_epochs")
    if cost.get("train_tokens_per_epoch") and epochs:
        tokens["train"] = round(
            cost["train_tokens_per_epoch"] * float(epochs) * (metrics.get("seeds") or {}).get("n", 1)
        )
    for stage in durations:  # a stage of a scorer that spends tokens of its own (a judge's, in its run detail)
        detail = metrics.get(stage)
        spent = (detail.get("after") or {}).get("tokens") if isinstance(detail, dict) else None
        if isinstance(spent, dict):
            tokens[stage] = sum(v for v in spent.values() if isinstance(v, (int, float)))
    what = {"train": "trained on", "evaluate_before": "generated", "evaluate_after": "generated"}
    parts = []
    for stage, seconds in durations.items():
        if seconds < 0.05:
            continue
        count = tokens.get(stage)
        spent = f" ({count:,} tokens {what.get(stage, 'judged')})" if count else ""
        parts.append(f"{STAGE_WORDS.get(stage, stage)} {duration(seconds)}{spent}")
    return [f"Cost of this verdict: {duration(sum(durations.values()))} in all — " + ", ".join(parts) + "."]


def duration(seconds: float | None) -> str:
    """Seconds in words: "4 min 39 s", "41.3 s", "–" when not known."""
    if seconds is None:
        return "–"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{seconds:.1f} s"


def run_summary(metrics: dict, out: str) -> str:
    """What `train-and-compare` prints at the end: the answer in words, the figures, the chosen checkpoint, the
    diagnosis."""
    lines = (
        [""]
        + did_it_help(metrics["comparison"], metrics.get("primary"), metrics.get("at_limit"))
        + scorer_lines(metrics)
        + seed_lines(metrics)
        + data_cautions((metrics.get("validation") or {}).get("trained"))
        + verdict_cost(metrics)
        + [""]
        + comparison_table({f: e for f, e in metrics["comparison"].items() if e})
    )
    diag = metrics["training"]["diagnosis"]
    lines += [
        "",
        f"checkpoint: {metrics['checkpoint']['name']} ({metrics['checkpoint']['reason']})",
        f"training: {diag['message']}",
        f"report: {os.path.join(out, 'report.html')}",
    ]
    return "\n".join(lines)

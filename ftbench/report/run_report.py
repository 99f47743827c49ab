"""The before/after report: one self-contained HTML page (inline CSS, JS and SVG; no network request; works
from file://), rendered from `templates/run_report.html.j2`. Every piece of dataset or model text is either
autoescaped by the template or inserted in the browser with `textContent` from a JSON blob whose `<`, `>` and
`&` are \\u-escaped, so a `<script>` in the data is shown as text and never runs.
"""

from __future__ import annotations

from ftbench.api.backends import CheckpointInfo
from ftbench.report.charts import loss_chart
from ftbench.report.comparison_text import data_cautions, did_it_help, duration, scorer_lines, seed_lines, verdict_cost
from ftbench.report.html import render
from ftbench.training.checkpoints import checkpoint_name

_WARNINGS_SHOWN = 20
_CARD_CLASS = {"better": "up", "worse": "down"}  # anything the interval cannot call stays grey
_CARD_NOTE = {
    "better": "95% CI excludes 0",
    "worse": "95% CI excludes 0",
    "unchanged": "same on every sample",
    "unclear": "95% CI includes 0: not detectable",
    "unknown": "no interval",
}


def _headline(comparison: dict) -> list[dict]:
    """A card per figure, in the comparison's order (each scorer's figures in its report order)."""
    cards = []
    for fig, e in comparison.items():
        if e is None:
            continue
        verdict = e.get("verdict") or {"kind": "unknown", "words": "", "surer": ""}
        cards.append(
            {
                "figure": fig,
                "before": e["before"],
                "after": e["after"],
                "delta": e["delta"],
                "trend": _CARD_CLASS.get(verdict["kind"], "flat"),
                "note": _CARD_NOTE[verdict["kind"]],
                "verdict": verdict,
                "ci": e.get("delta_ci95"),
                "wins": e.get("wins", "–"),
                "losses": e.get("losses", "–"),
                "ties": e.get("ties", "–"),
                "mcnemar": e.get("mcnemar"),
            }
        )
    return cards


def _gsm8k(metrics: dict) -> dict | None:
    g = metrics.get("gsm8k")
    if not g:
        return None
    comp = metrics["comparison"]
    sides = []
    for side in ("before", "after"):
        d = g.get(side) or {}
        causes = []
        for name, info in (d.get("causes") or {}).items():
            ex = (info.get("examples") or [{}])[0]
            example = (
                (
                    f"strict {ex.get('strict')!r}, flexible {ex.get('flexible')!r}, target {ex.get('target')!r}: "
                    f"{ex.get('excerpt', '')}"
                )
                if ex
                else ""
            )
            causes.append(
                {
                    "name": name,
                    "explanation": info.get("explanation", ""),
                    "count": info.get("count"),
                    "example": example,
                }
            )
        invalid = d.get("invalid") or {}
        sides.append(
            {
                "name": side,
                "strict": comp["strict-match"][side],
                "flexible": comp["flexible-extract"][side],
                "disagreements": d.get("disagreements", 0),
                "invalid_strict": invalid.get("strict-match", 0),
                "invalid_flexible": invalid.get("flexible-extract", 0),
                "causes": causes,
            }
        )
    return {"n": metrics.get("n", {}).get("gsm8k", ""), "sides": sides}


def _seeds(metrics: dict) -> dict | None:
    """The training-seeds table of a --seeds run: each figure's delta per seed, mean, spread and combined CI."""
    seeds = metrics.get("seeds")
    if not seeds:
        return None
    rows = [
        {
            "figure": f,
            "delta": e["seeds"]["delta"],
            "mean": e["delta"],
            "sd": e["seeds"]["delta_sd"],
            "ci": e.get("delta_ci95"),
        }
        for f, e in metrics["comparison"].items()
        if e and e.get("seeds")
    ]
    return {**seeds, "rows": rows}


def _leakage(metrics: dict) -> dict | None:
    """The retention scorer's part: how many general prompts, and the phrases the fine-tune spread (None when
    retention was not run)."""
    from ftbench.metrics.retention import RetentionScorer

    detail = metrics.get(RetentionScorer.name)
    if not detail:
        return None
    return {"n": metrics.get("n", {}).get(RetentionScorer.name, ""), "findings": detail.get("after") or []}


def _validation(validation: dict | None) -> dict | None:
    if validation is None:
        return None
    counts: dict[str, int] = {}
    for f in validation.get("warnings", []):
        counts[f["code"]] = counts.get(f["code"], 0) + 1
    return {
        "records": validation["records"],
        "trained": validation.get("trained"),
        "errors": len(validation.get("errors", [])),
        "warnings": len(validation.get("warnings", [])),
        "counts": ", ".join(f"{k} ×{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])),
        "shown": validation.get("warnings", [])[:_WARNINGS_SHOWN],
    }


def _lines(values: dict | None) -> str:
    """A dict as `key: value` lines (the Run section shows settings, not Python dicts)."""
    return "\n".join(f"{k}: {'–' if v is None else v}" for k, v in (values or {}).items())


def _stage_lines(durations: dict | None, parts: dict | None) -> str:
    """Each stage's time, its parts (the model load, each eval set) indented under it."""
    lines = []
    for stage, seconds in (durations or {}).items():
        lines.append(f"{stage}: {duration(seconds)}")
        lines += [f"  {part}: {duration(s)}" for part, s in ((parts or {}).get(stage) or {}).items()]
    return "\n".join(lines)


def _cost_rows(cost: dict | None) -> dict:
    """What the run cost, in words: total time, peak memory, trainable parameters, training throughput."""
    if not cost:
        return {}
    memory = cost.get("peak_memory_gb") or {}
    share = (
        f" ({cost['trainable_params'] / cost['all_params']:.2%} of {cost['all_params']:,})"
        if cost.get("trainable_params") and cost.get("all_params")
        else ""
    )
    rate = cost.get("train_tokens_per_second")
    return {
        "total time": duration(cost.get("seconds")),
        "peak memory (GB)": _lines({k: v for k, v in memory.items() if v is not None})
        + "\n(the last segment's, when the run was resumed)",
        "trainable parameters": f"{cost['trainable_params']:,}{share}"
        if cost.get("trainable_params")
        else "not reported",
        "training throughput": (
            f"{rate:,.0f} tokens/s, {cost['train_samples_per_second']:.2f} samples/s "
            f"({cost['train_tokens_per_epoch']:,} tokens per epoch)"
            if rate
            else f"{cost['train_samples_per_second']:.2f} samples/s"
            if cost.get("train_samples_per_second")
            else "not reported"
        ),
    }


def render_run_report(
    metrics: dict,
    compared: dict,
    log_rows: list[dict],
    validation: dict | None,
    title: str = "ftbench: did the fine-tune help?",
) -> str:
    """The whole page from metrics.json's content, the per-scorer comparisons (scorer -> `Comparison`) and the
    trainer log rows."""
    run = metrics.get("run", {})
    checkpoint = metrics.get("checkpoint") or {}
    training = metrics.get("training") or {}
    run_tables = (
        {
            "time per stage": _stage_lines(run.get("durations"), run.get("duration_parts")),
            **_cost_rows(run.get("cost")),
            "versions": _lines(run.get("versions")),
            "hardware": _lines(run.get("hardware")),
            "compare settings": _lines(run.get("compare")),
        }
        if run
        else {}
    )
    return render(
        "run_report.html.j2",
        title=title,
        run={
            "model": run.get("model", ""),
            "adapter": run.get("adapter", ""),
            "backend": run.get("backend", ""),
            "demo_about": run.get("demo_about"),
            "eval_loss_note": run.get("eval_loss_note"),
        },
        headline=_headline(metrics["comparison"]),
        answer=did_it_help(metrics["comparison"], metrics.get("primary"), metrics.get("at_limit"))
        + scorer_lines(metrics)
        + seed_lines(metrics)
        + data_cautions((validation or {}).get("trained"))
        + verdict_cost(metrics),
        seeds=_seeds(metrics),
        samples_note=", ".join(f"{k} {v}" for k, v in metrics.get("n", {}).items()),
        signatures=metrics.get("signatures", {}),
        checkpoint=checkpoint,
        chart=loss_chart(log_rows, checkpoint.get("step")),
        diagnosis=training.get("diagnosis"),
        checkpoints=[
            {**c, "label": checkpoint_name(CheckpointInfo(c["path"], c["step"]))}
            for c in training.get("checkpoints") or []
        ],
        gsm8k=_gsm8k(metrics),
        leakage=_leakage(metrics),
        scorers=list(compared),
        samples=[r for t in compared.values() for r in t.rows],
        validation=_validation(validation),
        run_tables=run_tables,
        config=run.get("config") or {},
    )


def render_compare_report(result: dict, compared: dict) -> str:
    """`ftbench compare --html`: A (baseline) against B (candidate), labelled A and B, with the figures, their
    verdicts in words and, for prediction files or run folders, the per-sample table."""
    from ftbench.metrics.registry import SCORERS

    primary = next((SCORERS.create(name).primary for name in compared), None)
    return render(
        "compare_report.html.j2",
        title="ftbench compare: is B better than A?",
        a=result["a"],
        b=result["b"],
        kind=result["kind"],
        warnings=result.get("warnings") or [],
        answer=did_it_help(result["comparison"], primary, question="Is B better than A?"),
        headline=_headline(result["comparison"]),
        samples_note=", ".join(f"{k} {v}" for k, v in result.get("n", {}).items()),
        signatures=result.get("signatures", {}),
        scorers=list(compared),
        samples=[r for t in compared.values() for r in t.rows],
    )

"""The before/after report: one self-contained HTML page (inline CSS, JS and SVG; no network request; works
from file://), rendered from `templates/run_report.html.j2`. Every piece of dataset or model text is either
autoescaped by the template or inserted in the browser with `textContent` from a JSON blob whose `<`, `>` and
`&` are \\u-escaped, so a `<script>` in the data is shown as text and never runs.
"""

from __future__ import annotations

from ftbench.api.backends import CheckpointInfo
from ftbench.report.charts import loss_chart
from ftbench.report.html import render
from ftbench.training.checkpoints import checkpoint_name

_WARNINGS_SHOWN = 20


def _headline(comparison: dict) -> list[dict]:
    """A card per figure, in the comparison's order (each scorer's figures in its report order)."""
    cards = []
    for fig, e in comparison.items():
        if e is None:
            continue
        cards.append(
            {
                "figure": fig,
                "before": e["before"],
                "after": e["after"],
                "delta": e["delta"],
                "trend": "up" if e["delta"] > 0 else "down" if e["delta"] < 0 else "",
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


def _validation(validation: dict | None) -> dict | None:
    if validation is None:
        return None
    counts: dict[str, int] = {}
    for f in validation.get("warnings", []):
        counts[f["code"]] = counts.get(f["code"], 0) + 1
    return {
        "records": validation["records"],
        "errors": len(validation.get("errors", [])),
        "warnings": len(validation.get("warnings", [])),
        "counts": ", ".join(f"{k} ×{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])),
        "shown": validation.get("warnings", [])[:_WARNINGS_SHOWN],
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
            "versions": run.get("versions"),
            "hardware": run.get("hardware"),
            "durations (s)": run.get("durations"),
            "compare settings": run.get("compare"),
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
        scorers=list(compared),
        samples=[r for t in compared.values() for r in t.rows],
        validation=_validation(validation),
        run_tables=run_tables,
        config=run.get("config") or {},
    )

"""The sweep report: one self-contained HTML page (inline CSS and SVG, no script, no network request) rendered from
sweep.json's content with `templates/sweep_report.html.j2`; every piece of data is autoescaped by the template."""

from __future__ import annotations

from ftbench.report.charts import overlaid_loss_chart, points_chart
from ftbench.report.html import render

LEVER_NAMES = {
    "baseline": "baseline (your config)",
    "data": "data size",
    "lr": "learning rate",
    "rank": "LoRA rank",
    "model": "base model",
    "epochs": "epochs",
}


def _setting(run: dict) -> str:
    s, lever = run["settings"], run["lever"]
    if lever == "data":
        return f"{s['data']:.0%} of the data ({run['train_size']} samples)"
    if lever == "lr":
        return f"learning rate {s['lr']:.3g}"
    if lever == "rank":
        return f"LoRA rank {s['rank']}"
    if lever == "model":
        return f"model {s['model']}"
    return f"{run['train_size']} samples, lr {s['lr']:.3g}, rank {s['rank']}, {s['model']}"


def render_sweep_report(sweep: dict) -> str:
    """The whole page from sweep.json's content."""
    runs, analysis, metric = sweep["runs"], sweep["analysis"], sweep["analysis"]["metric"]
    levers = analysis["levers"]
    by_name = {r["name"]: r for r in runs}
    charts: dict = {"data": None, "lr": None, "rank": None}
    curve = levers.get("data")
    if curve:
        charts["data"] = points_chart(
            [{"x": p["size"], "y": p["mean"], "ci95": p["ci95"], "label": f"{p['size']}"} for p in curve["points"]],
            log_x=True,
            x_label="training samples (log scale)",
            y_label=metric,
            fit={"intercept": curve["intercept"], "slope": curve["slope"], "x_to": curve["next_size"]},
        )
    for lever, label in (("lr", "learning rate (log scale)"), ("rank", "LoRA rank (log scale)")):
        if lever in levers:
            charts[lever] = points_chart(
                [
                    {"x": e["value"], "y": e["mean"], "ci95": e["ci95"], "label": f"{e['value']:.3g}"}
                    for e in sorted(levers[lever]["ranking"], key=lambda e: e["value"])
                ],
                log_x=True,
                x_label=label,
                y_label=metric,
            )
    ranked = sorted(runs, key=lambda r: -(r["value"] if r["value"] is not None else float("-inf")))
    table = [{**r, "setting": _setting(r), "lever_name": LEVER_NAMES.get(r["lever"], r["lever"])} for r in ranked]
    epochs_lever = levers.get("epochs") or {}
    losses, scored = epochs_lever.get("eval_loss") or {}, epochs_lever.get("metric") or {}
    epochs = [
        {"run": name, "loss": losses.get(name), "metric": scored.get(name)}
        for name in by_name
        if name in losses or name in scored
    ]
    return render(
        "sweep_report.html.j2",
        title="ftbench sweep: change the data, the parameters or the model?",
        sweep=sweep,
        metric=metric,
        verdicts=analysis["verdicts"],
        charts=charts,
        table=table,
        curve=curve,
        models=levers.get("model"),
        epochs=epochs,
        loss_chart=overlaid_loss_chart({name: r.get("log") or [] for name, r in by_name.items()}),
        settings=sweep.get("settings") or {},
    )

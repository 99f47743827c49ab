"""Chart geometry for the reports' inline SVG: data to pixel coordinates, computed here and drawn by the
templates (`macros.html.j2`), so a page needs no charting library and no network."""

from __future__ import annotations

import math

from ftbench.training.trainer_log import curves


def loss_chart(log_rows: list[dict], chosen_step: int | None, width: int = 760, height: int = 260) -> dict | None:
    """Train and eval loss against steps, with the chosen checkpoint's step marked (None: nothing logged)."""
    train, evals = curves(log_rows)
    points = train + evals
    if not points:
        return None
    x0, x1 = 0, max(s for s, _ in points) or 1
    finite = [v for _, v in points if math.isfinite(v)]
    y0, y1 = (min(finite), max(finite)) if finite else (0.0, 1.0)
    y0, y1 = y0 - 0.05 * (y1 - y0 or 1), y1 + 0.05 * (y1 - y0 or 1)
    left, bottom_pad, top, right_pad = 48, 28, 10, 12

    def sx(step):
        return left + (step - x0) / (x1 - x0) * (width - left - right_pad)

    def sy(value):
        return top + (y1 - value) / (y1 - y0) * (height - top - bottom_pad)

    def path(pts):
        return " ".join(
            f"{'M' if i == 0 else 'L'}{sx(s):.1f},{sy(v):.1f}" for i, (s, v) in enumerate(pts) if math.isfinite(v)
        )

    chart = {
        "width": width,
        "height": height,
        "left": left,
        "right": width - right_pad,
        "top": top,
        "bottom": height - bottom_pad,
        "last_step": x1,
        "train": path(train),
        "eval": path(evals),
        "eval_dots": [(f"{sx(s):.1f}", f"{sy(v):.1f}") for s, v in evals if math.isfinite(v)],
        "ticks": [],
        "chosen": None,
    }
    for k in range(5):
        v = y0 + (y1 - y0) * k / 4
        chart["ticks"].append({"y": f"{sy(v):.1f}", "label_y": f"{sy(v) + 4:.1f}", "label": f"{v:.2f}"})
    if chosen_step is not None:
        x = sx(chosen_step)
        near_right = x > 0.7 * width  # near the right edge the label goes on the line's left
        chart["chosen"] = {
            "step": chosen_step,
            "x": f"{x:.1f}",
            "label_x": f"{x - 4 if near_right else x + 4:.1f}",
            "anchor": "end" if near_right else "start",
        }
    return chart


PALETTE = ("#2f6feb", "#d1242f", "#1a7f37", "#8250df", "#bf8700", "#0a7ea4", "#cf222e", "#57606a")


def _scale(lo: float, hi: float, a: float, b: float):
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def points_chart(
    points: list[dict],
    *,
    log_x: bool,
    x_label: str,
    y_label: str,
    fit: dict | None = None,
    width: int = 560,
    height: int = 260,
) -> dict | None:
    """A metric against a setting: each point (``x``, ``y``, optional ``ci95`` [lo, hi], ``label``) with its
    interval as a whisker, x on a log2 axis when ``log_x``; ``fit``: {"intercept", "slope"} of a line over log2(x),
    drawn dashed and extended to ``fit["x_to"]``."""
    pts = [p for p in points if p.get("y") is not None and math.isfinite(p["y"])]
    if not pts:
        return None
    tx = (lambda v: math.log2(v)) if log_x else (lambda v: v)
    xs = [tx(p["x"]) for p in pts] + ([tx(fit["x_to"])] if fit else [])
    ys = [p["y"] for p in pts] + [v for p in pts for v in (p.get("ci95") or [])]
    if fit:
        ys.append(fit["intercept"] + fit["slope"] * tx(fit["x_to"]))
    left, right, top, bottom = 56, width - 16, 12, height - 40
    x0, x1 = min(xs), max(xs)
    pad = 0.08 * ((x1 - x0) or 1)
    sx = _scale(x0 - pad, x1 + pad, left, right)
    y0, y1 = min(ys), max(ys)
    ypad = 0.08 * ((y1 - y0) or 1)
    sy = _scale(y0 - ypad, y1 + ypad, bottom, top)
    chart = {
        "width": width,
        "height": height,
        "left": left,
        "right": right,
        "top": top,
        "bottom": bottom,
        "x_label": x_label,
        "y_label": y_label,
        "points": [],
        "ticks": [],
        "fit": None,
    }
    for p in pts:
        x, y = sx(tx(p["x"])), sy(p["y"])
        ci = p.get("ci95")
        chart["points"].append(
            {
                "x": f"{x:.1f}",
                "y": f"{y:.1f}",
                "label": p.get("label", ""),
                "lo": f"{sy(ci[0]):.1f}" if ci else None,
                "hi": f"{sy(ci[1]):.1f}" if ci else None,
                "value": f"{p['y']:.2f}",
            }
        )
    for k in range(5):
        v = (y0 - ypad) + (y1 - y0 + 2 * ypad) * k / 4
        chart["ticks"].append({"y": f"{sy(v):.1f}", "label_y": f"{sy(v) + 4:.1f}", "label": f"{v:.2f}"})
    if fit:
        a = min(tx(p["x"]) for p in pts)
        b = tx(fit["x_to"])
        chart["fit"] = {
            "x1": f"{sx(a):.1f}",
            "y1": f"{sy(fit['intercept'] + fit['slope'] * a):.1f}",
            "x2": f"{sx(b):.1f}",
            "y2": f"{sy(fit['intercept'] + fit['slope'] * b):.1f}",
        }
    return chart


def overlaid_loss_chart(series: dict[str, list[dict]], width: int = 760, height: int = 280) -> dict | None:
    """Every run's train loss (solid) and eval loss (dots) against steps on one chart, one colour per run."""
    parsed = {name: curves(rows) for name, rows in series.items()}
    allpts = [pt for train, evals in parsed.values() for pt in train + evals if math.isfinite(pt[1])]
    if not allpts:
        return None
    left, right, top, bottom = 48, width - 170, 10, height - 28
    sx = _scale(0, max(s for s, _ in allpts) or 1, left, right)
    y0, y1 = min(v for _, v in allpts), max(v for _, v in allpts)
    sy = _scale(y0 - 0.05 * ((y1 - y0) or 1), y1 + 0.05 * ((y1 - y0) or 1), bottom, top)
    lines = []
    for i, (name, (train, evals)) in enumerate(parsed.items()):
        color = PALETTE[i % len(PALETTE)]
        path = " ".join(
            f"{'M' if j == 0 else 'L'}{sx(s):.1f},{sy(v):.1f}"
            for j, (s, v) in enumerate([pt for pt in train if math.isfinite(pt[1])])
        )
        lines.append(
            {
                "name": name,
                "color": color,
                "path": path,
                "legend_y": top + 14 + 16 * i,
                "dots": [(f"{sx(s):.1f}", f"{sy(v):.1f}") for s, v in evals if math.isfinite(v)],
            }
        )
    ticks = [
        {"y": f"{sy(v):.1f}", "label_y": f"{sy(v) + 4:.1f}", "label": f"{v:.2f}"}
        for v in (y0 + (y1 - y0) * k / 4 for k in range(5))
    ]
    return {
        "width": width,
        "height": height,
        "left": left,
        "right": right,
        "top": top,
        "bottom": bottom,
        "legend_x": right + 12,
        "lines": lines,
        "ticks": ticks,
        "last_step": max(s for s, _ in allpts),
    }

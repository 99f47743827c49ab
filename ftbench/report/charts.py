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
        return " ".join(f"{'M' if i == 0 else 'L'}{sx(s):.1f},{sy(v):.1f}" for i, (s, v) in enumerate(pts)
                        if math.isfinite(v))

    chart = {"width": width, "height": height, "left": left, "right": width - right_pad, "top": top,
             "bottom": height - bottom_pad, "last_step": x1, "train": path(train), "eval": path(evals),
             "eval_dots": [(f"{sx(s):.1f}", f"{sy(v):.1f}") for s, v in evals if math.isfinite(v)],
             "ticks": [], "chosen": None}
    for k in range(5):
        v = y0 + (y1 - y0) * k / 4
        chart["ticks"].append({"y": f"{sy(v):.1f}", "label_y": f"{sy(v) + 4:.1f}", "label": f"{v:.2f}"})
    if chosen_step is not None:
        x = sx(chosen_step)
        near_right = x > 0.7 * width  # near the right edge the label goes on the line's left
        chart["chosen"] = {"step": chosen_step, "x": f"{x:.1f}", "label_x": f"{x - 4 if near_right else x + 4:.1f}",
                           "anchor": "end" if near_right else "start"}
    return chart

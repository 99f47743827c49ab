"""`plot_loss: true`: the training-loss and eval-loss curves, as LLaMA-Factory draws them (raw and smoothed).

With matplotlib installed the plots are `training_loss.png` / `training_eval_loss.png` like LLaMA-Factory's;
without it, the same curves are written as dependency-free SVG (`training_loss.svg`, ...).
"""

from __future__ import annotations

import math
import os
from html import escape


def smooth(values: list[float]) -> list[float]:
    """LLaMA-Factory's exponential moving average, its weight growing with the number of points."""
    if not values:
        return []
    weight = 1.8 * (1 / (1 + math.exp(-0.05 * len(values))) - 0.5)
    last, out = values[0], []
    for v in values:
        last = last * weight + (1 - weight) * v
        out.append(last)
    return out


def plot_losses(output_dir: str, log_history: list[dict]) -> list[str]:
    """Write one plot per key (`loss`, `eval_loss`) that has points; return the files written."""
    written = []
    for key in ("loss", "eval_loss"):
        points = [(h["step"], h[key]) for h in log_history if key in h and "step" in h]
        if not points:
            continue
        name = "training_" + key
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            path = os.path.join(output_dir, name + ".svg")
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(svg_plot(points, key))
        else:
            path = os.path.join(output_dir, name + ".png")
            steps, values = zip(*points)
            plt.figure()
            plt.plot(steps, values, color="#1f77b4", alpha=0.4, label="original")
            plt.plot(steps, smooth(list(values)), color="#1f77b4", label="smoothed")
            plt.title(f"{key} of {output_dir}")
            plt.xlabel("step")
            plt.ylabel(key)
            plt.legend()
            plt.savefig(path, format="png", dpi=100)
            plt.close()
        written.append(path)
    return written


def svg_plot(points: list[tuple[int, float]], key: str, width: int = 640, height: int = 400) -> str:
    """A line chart of ``points`` (raw, faint) and their smoothed curve, with labelled axes."""
    steps = [p[0] for p in points]
    values = [float(p[1]) for p in points]
    left, right, top, bottom = 60, 20, 30, 40
    x0, x1 = min(steps), max(steps)
    y0, y1 = min(values), max(values)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5

    def xy(step, value):
        x = left + (step - x0) / (x1 - x0) * (width - left - right)
        y = top + (y1 - value) / (y1 - y0) * (height - top - bottom)
        return f"{x:.1f},{y:.1f}"

    raw = " ".join(xy(s, v) for s, v in zip(steps, values))
    smoothed = " ".join(xy(s, v) for s, v in zip(steps, smooth(values)))
    ticks = []
    for i in range(5):
        value = y0 + (y1 - y0) * i / 4
        y = top + (y1 - value) / (y1 - y0) * (height - top - bottom)
        ticks.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value:.3g}</text>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        f'font-size="12">\n<rect width="100%" height="100%" fill="white"/>\n'
        f'<text x="{width / 2}" y="18" text-anchor="middle">{escape(key)}</text>\n'
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="black"/>\n'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="black"/>\n' + "\n".join(ticks) + "\n"
        f'<text x="{left}" y="{height - bottom + 16}" text-anchor="middle">{x0}</text>\n'
        f'<text x="{width - right}" y="{height - bottom + 16}" text-anchor="middle">{x1}</text>\n'
        f'<text x="{width / 2}" y="{height - 6}" text-anchor="middle">step</text>\n'
        f'<polyline points="{raw}" fill="none" stroke="#1f77b4" stroke-opacity="0.4"/>\n'
        f'<polyline points="{smoothed}" fill="none" stroke="#1f77b4" stroke-width="2"/>\n</svg>\n'
    )

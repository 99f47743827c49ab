"""`reports/index.html`: every run and sweep in a reports folder with its model, data, date and headline figures,
linking each one's report. Rewritten (atomically) after every train-and-compare run and every sweep whose folder
sits directly in a folder named `reports` (the default place for both); a self-contained page, offline."""

from __future__ import annotations

import json
import os
import time

from ftbench.io import atomic_write_text
from ftbench.recipes.run_folder import RunFolder, SweepFolder

INDEX = "index.html"
HEADLINE = ("rouge-l", "bleu-4", "strict-match")


def _read(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as fh:
            value = json.load(fh)
    except (OSError, ValueError):
        return None  # a run being written, or not ftbench's: left out
    return value if isinstance(value, dict) else None


def _date(path: str) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(path)))


def _data_name(dataset) -> str:
    items = dataset.split(",") if isinstance(dataset, str) else list(dataset or [])
    return ", ".join(os.path.basename(str(d)) for d in items if d)


def entries(reports_dir: str) -> list[dict]:
    """One entry per run folder (metrics.json) and sweep folder (sweep.json) directly in ``reports_dir``, newest
    first."""
    found = []
    for name in sorted(os.listdir(reports_dir)):
        folder = os.path.join(reports_dir, name)
        sweep_json, metrics_json = SweepFolder(folder).sweep_json, RunFolder(folder).metrics
        if os.path.isfile(sweep_json) and (s := _read(sweep_json)):
            verdicts = (s.get("analysis") or {}).get("verdicts") or []
            found.append(
                {
                    "kind": "sweep",
                    "name": name,
                    "model": s.get("model", ""),
                    "backend": s.get("backend", ""),
                    "data": "embedded demo" if s.get("demo_note") else _data_name(s.get("data")),
                    "date": _date(sweep_json),
                    "link": f"{name}/report.html",
                    "headline": [v.get("text", "") for v in verdicts[:3]] or ["no verdict"],
                    "runs": len(s.get("runs") or []),
                }
            )
        elif os.path.isfile(metrics_json) and (m := _read(metrics_json)):
            run = m.get("run") or {}
            figures = [
                f"{f} {m['before'][f]:.2f} → {m['after'][f]:.2f}"
                for f in HEADLINE
                if isinstance((m.get("before") or {}).get(f), (int, float))
                and isinstance((m.get("after") or {}).get(f), (int, float))
            ]
            found.append(
                {
                    "kind": "run",
                    "name": name,
                    "model": run.get("model", ""),
                    "backend": run.get("backend", ""),
                    "data": "embedded demo"
                    if run.get("demo")
                    else _data_name((run.get("config") or {}).get("dataset")),
                    "date": _date(metrics_json),
                    "link": f"{name}/report.html",
                    "headline": figures,
                    "runs": 1,
                }
            )
    return sorted(found, key=lambda e: e["date"], reverse=True)


def write_index(reports_dir: str) -> str:
    """Render the index of ``reports_dir`` into reports_dir/index.html (atomically); returns its path."""
    from ftbench.report.html import render

    path = os.path.join(reports_dir, INDEX)
    atomic_write_text(
        path,
        render(
            "index.html.j2", title=f"ftbench reports: {os.path.basename(reports_dir)}", entries=entries(reports_dir)
        ),
    )
    return path


def update_index_for(folder: str) -> str | None:
    """Rewrite the index of the reports folder ``folder`` sits in, when its parent is named `reports`."""
    parent = os.path.dirname(os.path.abspath(folder))
    if os.path.basename(parent) != "reports":
        return None
    return write_index(parent)

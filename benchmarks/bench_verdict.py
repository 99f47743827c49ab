"""What a verdict costs: the default `ftbench train-and-compare` (SmolLM2-135M, the identity fine-tune, GSM8K,
the 100 retention prompts) timed stage by stage, against the same run without the retention prompts (the run
before issue 20 added them) as the reference, in one run of the script:

    .venv/bin/python benchmarks/bench_verdict.py                  # both runs, one after the other
    .venv/bin/python benchmarks/bench_verdict.py --threads 1      # on a shared machine

Each run is the real command in its own process (`python -m ftbench train-and-compare --output-dir DIR`),
timed from outside; the stages and their parts (model load, each eval set) come from the run's own
durations.json, the tokens from its metrics.json (generated per side, trained on per epoch × epochs). Prints a
table per run, the retention prompts' share of the full run, and the full run's time as a ratio of the
reference's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(folder: str, extra: list[str], threads: int | None) -> dict:
    """One default train-and-compare in its own process; its wall time, durations and metrics."""
    cmd = [sys.executable, "-m", "ftbench", "train-and-compare", "--output-dir", folder, "--quiet", *extra]
    cmd += ["--threads", str(threads)] if threads else []
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, check=True)
    wall = time.perf_counter() - start
    with open(os.path.join(folder, "metrics.json"), encoding="utf-8") as fh:
        metrics = json.load(fh)
    return {"wall": wall, "metrics": metrics}


def table(name: str, r: dict) -> None:
    """Seconds per stage, its parts indented, each with its share of the run's stages and the tokens generated."""
    run = r["metrics"]["run"]
    stages, parts, limits = run["durations"], run.get("duration_parts") or {}, r["metrics"].get("at_limit") or {}
    total = sum(stages.values())
    print(f"\n{name}: {r['wall']:.1f} s wall (the command, start-up included), stages {total:.1f} s")
    print(f"{'stage':<34}{'seconds':>9}{'share':>8}{'tokens':>10}")
    for stage, seconds in stages.items():
        print(f"{stage:<34}{seconds:>9.1f}{seconds / total:>8.1%}")
        side = {"evaluate_before": "before", "evaluate_after": "after"}.get(stage)
        for part, s in (parts.get(stage) or {}).items():
            tokens = (limits.get(part) or {}).get("tokens", {}).get(side, "")
            print(f"{'  ' + part:<34}{s:>9.1f}{s / total:>8.1%}{tokens:>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, help="torch threads for both runs (default: torch's choice)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        full = run(os.path.join(tmp, "full"), [], args.threads)
        reference = run(os.path.join(tmp, "reference"), ["--retention", "none"], args.threads)
    table("default run (retention: 100 prompts, drift)", full)
    table("reference: the same run, --retention none", reference)
    parts = full["metrics"]["run"].get("duration_parts") or {}
    retention = sum(s for p in parts.values() for name, s in p.items() if name in ("retention", "retention-drift"))
    print(
        f"\nretention prompts and drift: {retention:.1f} s, {retention / full['wall']:.1%} of the full run's wall time"
    )
    print(f"full / reference wall time: {full['wall'] / reference['wall']:.2f}×")
    from ftbench.report.comparison_text import verdict_cost

    print("\n" + "\n".join(verdict_cost(full["metrics"])))


if __name__ == "__main__":
    main()

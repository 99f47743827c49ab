"""What a verdict costs: the default `ftbench train-and-compare` (SmolLM2-135M, the identity fine-tune, GSM8K,
the 100 retention prompts) timed stage by stage, against the same run without the retention prompts (the run
before issue 20 added them) as the reference, in one run of the script:

    .venv/bin/python benchmarks/bench_verdict.py                  # both runs, one after the other
    .venv/bin/python benchmarks/bench_verdict.py --threads 1      # on a shared machine
    .venv/bin/python benchmarks/bench_verdict.py --reference-commit b5beeb2^   # the code before retention

With ``--reference-commit REV`` the reference is the default run of ftbench as it was at REV (a git worktree of
that commit, run with this venv), instead of today's code with ``--retention none``: "no slower than before the
retention prompts were added" measured against the code of that day, in the same run of the script.

Each run is the real command in its own process (`python -m ftbench train-and-compare --output-dir DIR`),
timed from outside; the stages and their parts (model load, the eval sets' generation — one part since they
share one batch, each eval set before that — and the drift) come from the run's own durations.json, the tokens
from its metrics.json (generated per side, trained on per epoch × epochs). Prints a table per run, the drift's
share of the full run, and the full run's time as a ratio of the reference's.
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


def run(folder: str, extra: list[str], threads: int | None, code: str = REPO) -> dict:
    """One default train-and-compare in its own process (ftbench from the ``code`` checkout); its wall time,
    durations and metrics."""
    cmd = [sys.executable, "-m", "ftbench", "train-and-compare", "--output-dir", folder, "--quiet", *extra]
    cmd += ["--threads", str(threads)] if threads else []
    start = time.perf_counter()
    subprocess.run(cmd, cwd=code, check=True, env={**os.environ, "PYTHONPATH": code})
    wall = time.perf_counter() - start
    with open(os.path.join(folder, "metrics.json"), encoding="utf-8") as fh:
        metrics = json.load(fh)
    return {"wall": wall, "metrics": metrics}


def table(name: str, r: dict) -> None:
    """Seconds per stage, its parts indented, each with its share of the run's stages and the tokens generated."""
    run = r["metrics"]["run"]
    stages, parts = run.get("durations") or {"the run": r["wall"]}, run.get("duration_parts") or {}
    limits = r["metrics"].get("at_limit") or {}
    total = sum(stages.values())
    print(f"\n{name}: {r['wall']:.1f} s wall (the command, start-up included), stages {total:.1f} s")
    print(f"{'stage':<34}{'seconds':>9}{'share':>8}{'tokens':>10}")
    for stage, seconds in stages.items():
        print(f"{stage:<34}{seconds:>9.1f}{seconds / total:>8.1%}")
        side = {"evaluate_before": "before", "evaluate_after": "after"}.get(stage)
        for part, s in (parts.get(stage) or {}).items():
            sets = part[len("generation (") : -1].split(", ") if part.startswith("generation (") else [part]
            counts = [(limits.get(name) or {}).get("tokens", {}).get(side) for name in sets]
            tokens = sum(c for c in counts if c) or ""
            print(f"{'  ' + part:<34}{s:>9.1f}{s / total:>8.1%}{tokens:>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, help="torch threads for both runs (default: torch's choice)")
    parser.add_argument("--reference-commit", help="the reference is the default run of ftbench at this commit")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        full = run(os.path.join(tmp, "full"), [], args.threads)
        if args.reference_commit:
            code = os.path.join(tmp, "reference-code")
            subprocess.run(
                ["git", "worktree", "add", "-q", "--detach", code, args.reference_commit], cwd=REPO, check=True
            )
            try:
                reference = run(os.path.join(tmp, "reference"), [], args.threads, code)
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", code], cwd=REPO, check=True)
            label = f"reference: the default run of ftbench at {args.reference_commit}"
        else:
            reference = run(os.path.join(tmp, "reference"), ["--retention", "none"], args.threads)
            label = "reference: the same run, --retention none"
    table("default run (retention: 100 prompts, drift)", full)
    table(label, reference)
    parts = full["metrics"]["run"].get("duration_parts") or {}
    drift = sum(s for p in parts.values() for name, s in p.items() if name == "retention-drift")
    print(f"\nretention drift: {drift:.1f} s, {drift / full['wall']:.1%} of the full run's wall time")
    print(f"full / reference wall time: {full['wall'] / reference['wall']:.2f}×")
    from ftbench.report.comparison_text import verdict_cost

    print("\n" + "\n".join(verdict_cost(full["metrics"])))


if __name__ == "__main__":
    main()

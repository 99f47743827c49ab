"""The `benchmark` scorer: lm-eval tasks (`--benchmark TASK[,TASK]`: its registry's, or task YAMLs) run by lm-eval's
engine on the base model and on the chosen checkpoint (`ftbench.evaluation.benchmark`), compared document by
document. A scorer that runs the model itself (`Scorer.runs_model`): the run calls `run_model` for each side
instead of generating.

Its figures depend on the tasks: ``<task>/<metric>`` for every metric lm-eval logs per document and aggregates by
the mean (``arc_easy/acc``, ``arc_easy/acc_norm``; a filter other than lm-eval's ``none`` is named too:
``gsm8k/exact_match,strict-match``). A figure is the mean of its documents' values added up in lm-eval's order, so a
single task's equals lm-eval's own; a group's (mmlu) is the mean over all its subtasks' documents (lm-eval's
size-weighted group figure, up to rounding). Documents are paired by (task, doc_id): the delta's paired bootstrap
CI, wins/losses/ties, McNemar's test where the values are 0/1 (accuracies), and a signature naming the task, its
version, num_fewshot, the metric, the limit and lm-eval's version.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import msgspec

from ftbench.api.errors import InputError, UsageError
from ftbench.api.metrics import Comparison, Scorer, ScoreResult, format_signature


class BenchmarkRow(msgspec.Struct):
    """A row of a benchmark rows file (`evaluation.benchmark.document_rows`), read as hostile input."""

    benchmark: str
    task: str
    doc_id: int
    prompt: str
    label: str
    predict: str
    values: dict[str, float]
    setting: dict[str, Optional[Union[str, int, float]]]


def figure_name(benchmark: str, key: str) -> str:
    """``arc_easy`` and lm-eval's ``acc,none`` -> ``arc_easy/acc`` (a filter other than none stays named)."""
    metric, _, filt = key.partition(",")
    return f"{benchmark}/{metric}" + (f",{filt}" if filt and filt != "none" else "")


class BenchmarkScorer(Scorer):
    """lm-eval tasks on both models, compared per document (see the module docstring)."""

    name = "benchmark"
    description = "lm-eval tasks (--benchmark) run by lm-eval on both models"
    eval_set = "lm-eval tasks (--benchmark)"
    sample_unit = "benchmark documents"
    figures = ()  # per task, known once run: the comparison names them
    judged = ()  # figures that change with the tasks cannot choose a checkpoint or judge a sweep
    runs_model = True
    run_detail = "tasks"

    def eval_samples(self, held_out, settings):
        """The tasks of ``settings.benchmark`` (checked: a name lm-eval knows, a YAML that reads), or none."""
        from ftbench.evaluation.benchmark import resolve_tasks

        entries = getattr(settings, "benchmark", None)
        return resolve_tasks(entries) if entries else []

    def run_model(self, samples, model, adapter, settings, side, path, quiet, loaded=None):
        from ftbench.evaluation.benchmark import run_side

        run_side(samples, model, adapter, settings, path, quiet)

    def read_rows(self, path: str) -> list[dict]:
        from ftbench.data.reader import read_records
        from ftbench.data.schema import SchemaError, check

        findings: list = []
        rows = []
        for record in read_records(path, findings):
            try:
                rows.append(msgspec.structs.asdict(check(record.value, BenchmarkRow)))
            except SchemaError as e:
                raise InputError(f"{path}:{record.line}: {e}; rerun the same command to make the rows again") from None
        errors = [f for f in findings if f.severity == "error" and f.code != "utf8-bom"]
        if errors:
            raise InputError(errors[0].one_line())
        return rows

    def score(self, rows: list[dict]) -> ScoreResult:
        """One side's figures: each ``<task>/<metric>`` the mean of its documents' values (lm-eval's sum/len in
        lm-eval's order), with lm-eval's standard error and a bootstrap CI over the documents."""
        import numpy as np

        from ftbench.metrics import uncertainty

        values = _values(rows)
        result = ScoreResult(
            self.name,
            len(rows),
            {f: sum(v) / len(v) for f, (_, v) in values.items()},
            {f: uncertainty.mean_stderr(v) for f, (_, v) in values.items()},
            {},
            _signatures(rows, values),
            samples={f: v for f, (_, v) in values.items()},
            details={"tasks": _tasks(rows)},
            uncertainty={"stderr": uncertainty.STDERR_METHOD, "ci95": uncertainty.CI_METHOD},
        )
        for f, (_, v) in values.items():
            result.ci95.update(uncertainty.mean_intervals({f: np.asarray(v, dtype=float)}, len(v)))
        return result

    def compare(self, before, after):
        from ftbench.metrics.uncertainty import mcnemar, paired_difference

        if not all("values" in r for r in before + after):
            raise UsageError("benchmark rows are a run's (its benchmark_predictions_*.jsonl): compare two run folders")
        key = lambda r: (r["benchmark"], r["task"], r["doc_id"])  # noqa: E731
        if sorted(map(key, before)) != sorted(map(key, after)):
            raise InputError("the benchmark rows of the two sides are not over the same documents (task, doc_id)")
        position = {key(r): i for i, r in enumerate(before)}
        after = sorted(after, key=lambda r: position[key(r)])  # paired by (task, doc_id), in the before order
        sb, sa = self.score(before), self.score(after)
        figures = {}
        for fig, xb in sb.samples.items():
            xa = sa.samples.get(fig)
            if xa is None or len(xa) != len(xb):
                raise InputError(f"{fig}: the two sides logged it for different documents")
            entry = {
                "n": len(xb),  # its task's documents (the comparison's n counts every task's)
                "before": sb.metrics[fig],
                "after": sa.metrics[fig],
                "delta": sa.metrics[fig] - sb.metrics[fig],
                "before_ci95": sb.ci95.get(fig),
                "after_ci95": sa.ci95.get(fig),
            }
            paired = paired_difference(xa, xb)
            entry.update(
                delta_ci95=paired["ci95"],
                delta_stderr=paired["stderr"],
                wins=sum(q > p for p, q in zip(xb, xa)),
                losses=sum(q < p for p, q in zip(xb, xa)),
                ties=sum(q == p for p, q in zip(xb, xa)),
            )
            if set(xb) | set(xa) <= {0.0, 1.0}:  # an accuracy: McNemar's test on the documents that changed
                entry["mcnemar"] = mcnemar([bool(v) for v in xb], [bool(v) for v in xa])
            figures[fig] = entry
        return Comparison(
            self.name, len(before), figures, sb.signatures, sb.to_json(), sa.to_json(), _rows(before, after)
        )


def _values(rows: list[dict]) -> dict[str, tuple[list[int], list[float]]]:
    """figure -> (the rows holding it, their values), in row order."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    for i, r in enumerate(rows):
        for key, value in r["values"].items():
            idx, vals = out.setdefault(figure_name(r["benchmark"], key), ([], []))
            idx.append(i)
            vals.append(float(value))
    return out


def _tasks(rows: list[dict]) -> dict[str, dict[str, Any]]:
    """Each requested task: its documents and lm-eval's tasks (a group's subtasks) with their settings."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        t = out.setdefault(r["benchmark"], {"documents": 0, "tasks": {}})
        t["documents"] += 1
        t["tasks"].setdefault(r["task"], r["setting"])
    return out


def _signatures(rows: list[dict], values: dict) -> dict[str, str]:
    signatures = {}
    for fig, (idx, _) in values.items():
        benchmark, metric = fig.split("/", 1)
        settings = {}
        for i in idx:
            settings.setdefault(rows[i]["task"], rows[i]["setting"])
        first = next(iter(settings.values()))
        one = len(settings) == 1
        signatures[fig] = format_signature(
            "lm-eval-benchmark",
            task=benchmark,
            subtasks=None if one and benchmark in settings else len(settings),
            version=first.get("version")
            if one
            else ",".join(sorted({str(s.get("version")) for s in settings.values()})),
            num_fewshot=first.get("num_fewshot"),
            metric=metric,
            limit=first.get("limit") or "all",
            lm_eval=first.get("lm_eval"),
        )
    return signatures


def _rows(before: list[dict], after: list[dict]) -> list[dict]:
    """The report's per-document rows: each scored by its own task's figures, improved/regressed by the first."""
    out = []
    for i, (x, y) in enumerate(zip(before, after)):
        sb = {figure_name(x["benchmark"], k): v for k, v in x["values"].items()}
        sa = {figure_name(y["benchmark"], k): v for k, v in y["values"].items()}
        primary = next(iter(sb), "")
        b, a = sb.get(primary, 0.0), sa.get(primary, 0.0)
        out.append(
            {
                "i": i,
                "scorer": BenchmarkScorer.name,
                "primary": primary,
                "prompt": x["prompt"],
                "reference": x["label"],
                "before": x["predict"],
                "after": y["predict"],
                "scores_before": sb,
                "scores_after": sa,
                "status": "improved" if a > b else "regressed" if a < b else "unchanged",
                "task": x["task"],
                "doc_id": x["doc_id"],
            }
        )
    return out

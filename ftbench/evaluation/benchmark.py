"""`--benchmark TASK[,TASK]`: lm-eval tasks as a train-and-compare evaluation. A task is a name in lm-eval's registry
(mmlu, arc_easy, ceval-valid, cmmlu, ifeval, ...) or a task YAML by path (its folder is lm-eval's include_path, as
for `ftbench eval --harness lm-eval`); lm-eval's engine runs it (`simple_evaluate` with its HF model, through
`ftbench.evaluation.lm_eval_harness`), whatever its output type (multiple_choice, loglikelihood, generate_until),
on the base model and on the chosen checkpoint (``peft=``). Each side's documents are kept as rows, one per
document, in the run folder, with the sidecar ``OUT.meta.json`` saying what made them: a resumed run whose rows
were made by the same model, adapter, tasks and settings does not run lm-eval again.

A row: the requested task (``benchmark``), lm-eval's task (``task``: the same, or a subtask of a group),
``doc_id``, the prompt, the target (``label``), the model's answer (``predict``: its choice of a multiple-choice
task, its response to a generate_until one), every per-document metric value lm-eval logged that a figure can be
the mean of (``values``: ``"acc,none" -> 1.0``), and what its signature names (``setting``).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from dataclasses import dataclass
from typing import Any

from ftbench.api.errors import InputError, UsageError

PROMPT_CHARS = 2000  # a prompt's end kept in a row (few-shot contexts run long; the question is at the end)
META_KIND = "ftbench-benchmark"


@dataclass(frozen=True)
class BenchmarkTask:
    """One entry of --benchmark: the name lm-eval runs it by and, for a task YAML given by path, that file."""

    name: str
    path: str | None = None

    def to_json(self) -> dict:
        """What the task is made of: its name, and each local file (the YAML, the data files it names) by sha256."""
        from ftbench.io import sha256_of_path

        return {
            "name": self.name,
            "files": {f: sha256_of_path(f) for f in local_files([self.path] if self.path else [])},
        }


def local_files(entries: list[str]) -> list[str]:
    """The task YAMLs among --benchmark's entries and the local data files each names (`dataset_kwargs.data_files`,
    relative to the current directory as in lm-eval): edited, they make another run."""
    from pathlib import Path

    from ftbench.evaluation.tasks import read_task_yaml

    files = []
    for entry in entries:
        if not (entry.endswith((".yaml", ".yml")) and os.path.isfile(entry)):
            continue
        files.append(entry)
        data = (read_task_yaml(Path(entry)).get("dataset_kwargs") or {}).get("data_files")
        for names in (data.values() if isinstance(data, dict) else [data]) if data else []:
            files += [os.path.abspath(n) for n in ([names] if isinstance(names, str) else names) if os.path.isfile(n)]
    return files


def split_entries(value) -> list[str] | None:
    """--benchmark's value (``a,b``, a YAML list, or none) as a list of entries; None when there are none."""
    if value is None:
        return None
    parts = value if isinstance(value, (list, tuple)) else str(value).split(",")
    entries = [str(p).strip() for p in parts if str(p).strip()]
    if not entries or [e.lower() for e in entries] in (["none"], ["null"], ["false"]):
        return None
    return [os.path.abspath(e) if e.endswith((".yaml", ".yml")) else e for e in entries]


def resolve_tasks(entries: list[str]) -> list[BenchmarkTask]:
    """The tasks of --benchmark, each checked before any model is loaded: a YAML file must read as a task or group
    (InputError naming the file), a name must be in lm-eval's registry (UsageError with the nearest names)."""
    from ftbench.evaluation.tasks import read_task_yaml

    tasks = []
    for entry in entries:
        if entry.endswith((".yaml", ".yml")):
            from pathlib import Path

            if not os.path.isfile(entry):
                raise UsageError(f"--benchmark {entry}: no such task file")
            cfg = read_task_yaml(Path(entry))  # InputError, one line, for a file that does not parse
            name = cfg.get("task") if isinstance(cfg.get("task"), str) else cfg.get("group")
            if not isinstance(name, str):
                raise InputError(f"{entry}: a task file names its task (task: NAME) or group (group: NAME)")
            tasks.append(BenchmarkTask(name, entry))
        else:
            tasks.append(BenchmarkTask(entry))
    names = [t.name for t in tasks if t.path is None]
    if names:
        known = task_manager(tasks).all_tasks
        for name in names:
            if name not in known:
                import difflib

                from ftbench.metrics.environment import package_version

                near = difflib.get_close_matches(name, known, n=5)
                raise UsageError(
                    f"--benchmark {name}: no such task, group or tag in lm-eval {package_version('lm-eval')}'s registry"
                    + (f" (did you mean: {', '.join(near)}?)" if near else "; give a task name or a task YAML path")
                )
    return tasks


_MANAGERS: dict = {}  # lm-eval's TaskManager per set of task folders: indexing its registry takes seconds


def task_manager(tasks: list[BenchmarkTask]):
    """lm-eval's TaskManager over the YAMLs' folders (as `ftbench eval --harness lm-eval` runs a YAML), plus its
    registry when a task is given by name (only YAML paths: their folders alone, which is fast)."""
    from lm_eval.tasks import TaskManager

    from ftbench.evaluation.lm_eval_harness import quiet_lm_eval

    folders = sorted({os.path.dirname(t.path) for t in tasks if t.path})
    by_name = any(t.path is None for t in tasks)
    key = (tuple(folders), by_name)
    if key not in _MANAGERS:
        with quiet_lm_eval():
            _MANAGERS[key] = TaskManager(include_path=folders or None, include_defaults=by_name)
    return _MANAGERS[key]


def run_meta(tasks: list[BenchmarkTask], model: str, adapter: str | None, limit: int | None, placement) -> dict:
    """What a side's rows are made from (the sidecar): rows made otherwise are made again."""
    from ftbench.data.predictions import adapter_sha256
    from ftbench.metrics.environment import package_version

    return {
        "kind": META_KIND,
        "tasks": [t.to_json() for t in tasks],
        "model": model,
        "adapter": adapter,
        "adapter_sha256": adapter_sha256(adapter),
        "limit": limit,
        "dtype": placement.dtype,
        "lm_eval": package_version("lm-eval"),
    }


def rows_are_current(path: str, meta: dict) -> bool:
    """Whether ``path`` holds rows made from ``meta`` (its sidecar says so)."""
    from ftbench.data.predictions import meta_path
    from ftbench.data.run_files import read_json_file

    if not os.path.isfile(path) or not os.path.isfile(meta_path(path)):
        return False
    try:
        return read_json_file(meta_path(path)) == meta
    except (InputError, UsageError):
        return False  # a damaged sidecar: the rows are made again


def run_side(
    tasks: list[BenchmarkTask], model: str, adapter: str | None, settings: Any, path: str, quiet: bool
) -> None:
    """lm-eval on ``tasks`` with ``model`` (+ ``adapter``), its rows written to ``path`` (unless current)."""
    from ftbench.console import say
    from ftbench.data.predictions import meta_path
    from ftbench.evaluation.lm_eval_harness import hf_model_args, quiet_simple_evaluate
    from ftbench.inference.models import pick_placement
    from ftbench.io import write_json, write_jsonl

    options = getattr(settings, "engine_options", None)
    placement = pick_placement(settings.device or getattr(options, "device", None), getattr(options, "dtype", None))
    limit = getattr(settings, "benchmark_limit", None)
    meta = run_meta(tasks, model, adapter, limit, placement)
    if rows_are_current(path, meta):
        return
    say(
        f"      benchmark {', '.join(t.name for t in tasks)} by lm-eval on {placement.device}"
        + (f" (the first {limit} documents of each task)" if limit else ""),
        quiet,
    )
    try:  # quiet: lm-eval's progress bars held back too
        with contextlib.redirect_stderr(io.StringIO()) if quiet else contextlib.nullcontext():
            res = quiet_simple_evaluate(
                model="hf",
                model_args=hf_model_args(model, adapter, placement),
                tasks=[t.name for t in tasks],
                batch_size=settings.predict_batch_size,
                device=placement.device,
                limit=limit,
                task_manager=task_manager(tasks),
            )
    except (KeyError, ValueError, FileNotFoundError) as e:  # a task lm-eval cannot load (its data, its config)
        names = ", ".join(t.name for t in tasks)
        raise InputError(f"--benchmark: lm-eval could not run {names}: {_first_line(e)}") from None
    rows = document_rows(res, tasks, limit)
    if os.path.exists(path):
        os.remove(path)  # first: old rows beside the new sidecar would pass for current ones
    write_json(meta_path(path), meta)
    write_jsonl(path, rows)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


def document_rows(res: dict, tasks: list[BenchmarkTask], limit: int | None) -> list[dict]:
    """One row per document of every task lm-eval ran (see the module docstring), ordered by requested task, then
    lm-eval's task, then doc_id (lm-eval's own order, so a figure's mean adds up as lm-eval's does)."""
    from ftbench.metrics.environment import package_version

    owner = {}  # lm-eval's task -> the requested task it belongs to (a group's subtasks belong to the group)
    subtasks = res.get("group_subtasks") or {}

    def claim(name: str, requested: str) -> None:
        for child in subtasks.get(name, []):
            claim(child, requested)
        owner.setdefault(name, requested)

    for t in tasks:
        claim(t.name, t.name)
    version = package_version("lm-eval")
    rows = []
    for requested in [t.name for t in tasks] + sorted(set(res["samples"]) - set(owner)):  # a tag: its tasks
        for task in sorted(n for n in res["samples"] if owner.get(n, n) == requested):
            config = (res.get("configs") or {}).get(task) or {}
            setting = {
                "version": (res.get("versions") or {}).get(task),
                "num_fewshot": (res.get("n-shot") or {}).get(task),
                "lm_eval": version,
                "limit": limit,
            }
            means = _mean_metrics(config, (res.get("higher_is_better") or {}).get(task) or {})
            by_doc: dict[int, dict] = {}
            for s in sorted(res["samples"][task], key=lambda s: s["doc_id"]):
                row = by_doc.setdefault(s["doc_id"], _row(requested, task, s, config, setting))
                for metric in s["metrics"]:
                    value = s.get(metric)
                    if metric in means and _is_number(value):
                        row["values"][f"{metric},{s['filter']}"] = float(value)
            rows += [by_doc[k] for k in sorted(by_doc)]
    return rows


def _mean_metrics(config: dict, higher_is_better: dict) -> set[str]:
    """The task's metrics whose figure is the mean of the per-document values, higher being better (a metric its
    metric_list does not name is aggregated by the mean, lm-eval's default)."""
    listed = {m.get("metric"): str(m.get("aggregation", "mean")) for m in config.get("metric_list") or []}
    return {m for m, better in higher_is_better.items() if better is not False and listed.get(m, "mean") == "mean"}


def _is_number(value) -> bool:
    return isinstance(value, (bool, int, float)) and math.isfinite(float(value))


def _row(requested: str, task: str, s: dict, config: dict, setting: dict) -> dict:
    """A document's row from its first logged sample (the prompt, the target, the model's answer)."""
    args = s.get("arguments") or [[""]]
    prompt = str(args[0][0]) if args and args[0] else ""
    if len(prompt) > PROMPT_CHARS:
        prompt = "…" + prompt[-PROMPT_CHARS:]
    target, output_type = s.get("target"), config.get("output_type")
    label, predict = str(target), ""
    filtered = s.get("filtered_resps") or []
    if output_type == "multiple_choice" and filtered:
        choices = [str(a[1]).strip() if len(a) > 1 else "" for a in args]
        lls = [float(r[0]) if isinstance(r, (list, tuple)) else float(r) for r in filtered]
        predict = choices[max(range(len(lls)), key=lls.__getitem__)]
        if isinstance(target, int) and not isinstance(target, bool) and 0 <= target < len(choices):
            label = choices[target]
    elif output_type in ("loglikelihood", "loglikelihood_rolling") and filtered:
        first = filtered[0]
        ll, greedy = (first[0], first[1]) if isinstance(first, (list, tuple)) else (first, None)
        predict = f"loglikelihood {float(ll):.4f}" + (" (greedy)" if greedy is True else "")
    else:
        resps = s.get("resps") or [[""]]
        predict = str(resps[0][0] if resps and resps[0] else "")
    return {
        "benchmark": requested,
        "task": task,
        "doc_id": int(s["doc_id"]),
        "prompt": prompt,
        "label": label,
        "predict": predict,
        "values": {},
        "setting": setting,
    }

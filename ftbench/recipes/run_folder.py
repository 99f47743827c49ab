"""A train-and-compare run folder and the names of the files in it: the one place those names are written down.

    report.html            the before/after report          metrics.json        every figure, for machines
    run_config.json        what the run is (resume check)   validation.json     the training data's checks
    predictions_before.jsonl / predictions_after.jsonl      the held-out split, LLaMA-Factory rows
    gsm8k_predictions_before.jsonl / gsm8k_predictions_after.jsonl
                           (each scorer names its eval set's files: Scorer.predictions_file)
    retention_predictions_{before,after}.jsonl, retention-drift_{before,after}.json, benchmark_predictions_*.jsonl
    judge_judgments.jsonl / retention-judge_judgments.jsonl   a judge's verdicts, append-only (with judge:)
    train_result.json      the backend's TrainResult        trainer_log.jsonl   the training log (a copy)
    durations.json         seconds per stage, summed over the run's segments (resumes)
    checkpoint_predictions/<checkpoint>.jsonl                 each checkpoint's eval predictions (--select-by)
    data/                  files the run built (the demo's)  train/              the backend's output_dir
    merged/                the chosen checkpoint merged into the base model (only for --engine openai)
    sweep_run.log          the console output, when a sweep runs it in a process of its own
    seeds/seed-<S>/        with --seeds N: each training seed's own run folder; the folder itself then holds the
                           base model's predictions (evaluated once) and the seeds' combined metrics and report

A sweep folder (`SweepFolder`):

    report.html  sweep.json (the analysis, for machines)  sweep_config.json (the base config: resume check)
    data/sweep_eval.jsonl, data/sweep_train_<N>pct.jsonl  the held-out split and the nested training subsets
    runs/<name>.yaml, runs/<name>/                        each run's YAML and its run folder
"""

from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass

from ftbench.api.errors import UsageError
from ftbench.io import json_text, write_json

SIDES = ("before", "after")


def slug(text: str) -> str:
    """A folder-name-safe form of a model name or path (`Qwen/Qwen2.5-0.5B` -> `Qwen-Qwen2.5-0.5B`), at most 40
    characters: run ids and sweep run names use it."""
    return "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in text)[:40]


def check_same_settings(path: str, current: dict, *, folder: str, holds: str, then: str, started: bool = True) -> None:
    """A folder is resumed only by the same experiment: the first time, keep ``current`` (what the experiment is)
    in ``path``; later, refuse with a UsageError naming the keys that differ (``holds`` says what the folder
    holds, ``then`` what to do). Values are compared as the JSON file keeps them. Sections (dict values of dicts,
    as run_config.json's train/compare/data) are compared key by key. A folder where nothing was computed yet
    (not ``started``: a run that failed before its first result) takes the new settings."""
    current = json.loads(json_text(current)[0])
    if not os.path.exists(path) or not started:
        write_json(path, current)
        return
    with open(path, encoding="utf-8") as fh:
        previous = json.load(fh)
    if previous == current:
        return
    changed = set()
    for key in set(current) | set(previous):
        now, before = current.get(key), previous.get(key)
        if isinstance(now, dict) and isinstance(before, dict):
            changed |= {k for k in set(now) | set(before) if now.get(k) != before.get(k)}
        elif now != before:
            changed.add(key)
    raise UsageError(f"{folder} holds {holds} ({', '.join(sorted(changed)[:5])} differ): {then}")


PART = "/"  # "evaluate_before/retention": a part of a stage, timed inside it (not added again to totals)


def split_durations(durations: dict) -> tuple[dict, dict]:
    """durations.json as (stage -> seconds, stage -> {part -> seconds}), rounded: the stages add up to the run's
    time, the parts are inside their stage."""
    stages, parts = {}, {}
    for key, seconds in durations.items():
        stage, _, part = key.partition(PART)
        if part:
            parts.setdefault(stage, {})[part] = round(seconds, 2)
        else:
            stages[stage] = round(seconds, 2)
    return stages, parts


@contextmanager
def stage_time(folder: RunFolder, durations: dict, stage: str):
    """Time one stage, added to what earlier segments of the run spent on it (durations.json), so a resumed run
    reports the whole time each stage took, not its last segment's; ``durations`` gets every stage's total. An
    interrupted segment counts too: its time was spent."""
    start = time.perf_counter()
    try:
        yield
    finally:
        try:
            with open(folder.durations, encoding="utf-8") as fh:
                spent = {k: float(v) for k, v in json.load(fh).items() if isinstance(v, (int, float))}
        except (OSError, ValueError, AttributeError):
            spent = {}
        spent[stage] = spent.get(stage, 0.0) + time.perf_counter() - start
        write_json(folder.durations, spent)
        durations.update(spent)


@dataclass(frozen=True)
class RunFolder:
    """Paths of one run's files (nothing is created by asking for a path)."""

    root: str

    def file(self, name: str) -> str:
        return os.path.join(self.root, name)

    @property
    def report(self) -> str:
        return self.file("report.html")

    @property
    def metrics(self) -> str:
        return self.file("metrics.json")

    @property
    def run_config(self) -> str:
        return self.file("run_config.json")

    @property
    def validation(self) -> str:
        return self.file("validation.json")

    @property
    def durations(self) -> str:
        """Seconds spent on each stage, summed over the run's segments (a resumed run counts them all)."""
        return self.file("durations.json")

    @property
    def train_result(self) -> str:
        return self.file("train_result.json")

    @property
    def trainer_log(self) -> str:
        return self.file("trainer_log.jsonl")

    @property
    def data_dir(self) -> str:
        return self.file("data")

    @property
    def train_dir(self) -> str:
        return self.file("train")

    @property
    def merged_dir(self) -> str:
        return self.file("merged")

    @property
    def sweep_log(self) -> str:
        """The run's whole console output when a sweep runs it in a process of its own (--devices, --ray)."""
        return self.file("sweep_run.log")

    def predictions(self, scorer: str, side: str) -> str:
        """The prediction file of one evaluation: the eval set of ``scorer`` (a name in SCORERS, which names the
        file: similarity's held-out split is predictions_{side}.jsonl), ``side`` before (the base model) or after
        (the chosen checkpoint)."""
        from ftbench.metrics.registry import SCORERS

        if side not in SIDES:
            raise ValueError(side)
        return self.file(SCORERS.create(scorer).prediction_file(side))

    def checkpoint_predictions(self, checkpoint: str) -> str:
        """The held-out (or GSM8K) predictions of one checkpoint, made to choose among them (--select-by)."""
        return self.file(os.path.join("checkpoint_predictions", f"{checkpoint}.jsonl"))

    def seed_run(self, seed: int) -> str:
        """The run folder of one training seed of a --seeds run."""
        return self.file(os.path.join("seeds", f"seed-{seed}"))

    def holds_results(self) -> bool:
        """Whether any stage has left a result here (a prediction row, a checkpoint, a training result): a folder
        without one may be started again with another config."""
        if any(os.path.isfile(self.file(n)) for n in ("metrics.json", "train_result.json")):
            return True
        names = os.listdir(self.root) if os.path.isdir(self.root) else []
        if any(n.endswith(".jsonl") and "predictions" in n and os.path.getsize(self.file(n)) > 0 for n in names):
            return True
        if os.path.isdir(self.file("checkpoint_predictions")) and os.listdir(self.file("checkpoint_predictions")):
            return True
        trained = os.listdir(self.train_dir) if os.path.isdir(self.train_dir) else []
        return any(n.startswith("checkpoint-") or n == "adapter_config.json" for n in trained)

    @staticmethod
    def holds_run(path: str) -> bool:
        """Whether ``path`` is a finished run folder (it has metrics.json)."""
        return os.path.isfile(os.path.join(path, "metrics.json"))


def share_base_evaluation(source: RunFolder, target: RunFolder, *, finished_only: bool = True) -> None:
    """Copy the base model's predictions (and their sidecars) from one run of a model into another run of the same
    model on the same eval sets, so the base model is evaluated once (a sweep's runs, a --seeds run's seeds).
    ``finished_only``: only from a finished run (one running in another process may be writing them); a copy of
    an unfinished file resumes where it stops."""
    from ftbench.data.predictions import meta_path
    from ftbench.metrics.registry import SCORERS

    if finished_only and not RunFolder.holds_run(source.root):
        return
    os.makedirs(target.root, exist_ok=True)
    for scorer in SCORERS.targets():
        src, dst = source.predictions(scorer, "before"), target.predictions(scorer, "before")
        for a, b in ((meta_path(src), meta_path(dst)), (src, dst)):  # the sidecar first: a row file implies it
            if os.path.exists(a) and not os.path.exists(b):
                shutil.copyfile(a, b + ".tmp")
                os.replace(b + ".tmp", b)


@dataclass(frozen=True)
class SweepFolder:
    """Paths of one sweep's files (nothing is created by asking for a path)."""

    root: str

    def file(self, name: str) -> str:
        return os.path.join(self.root, name)

    @property
    def report(self) -> str:
        return self.file("report.html")

    @property
    def sweep_json(self) -> str:
        return self.file("sweep.json")

    @property
    def config(self) -> str:
        return self.file("sweep_config.json")

    @property
    def data_dir(self) -> str:
        return self.file("data")

    @property
    def eval_data(self) -> str:
        return os.path.join(self.data_dir, "sweep_eval.jsonl")

    def train_data(self, fraction: float) -> str:
        """The nested training subset holding ``fraction`` of the training samples."""
        return os.path.join(self.data_dir, f"sweep_train_{round(fraction * 100)}pct.jsonl")

    @property
    def runs_dir(self) -> str:
        return self.file("runs")

    def run(self, name: str) -> RunFolder:
        return RunFolder(os.path.join(self.runs_dir, name))

    def holds_results(self) -> bool:
        """Whether any of the sweep's runs has left a result (`RunFolder.holds_results`)."""
        runs = os.listdir(self.runs_dir) if os.path.isdir(self.runs_dir) else []
        return any(self.run(n).holds_results() for n in runs if os.path.isdir(os.path.join(self.runs_dir, n)))

    def run_yaml(self, name: str) -> str:
        return os.path.join(self.runs_dir, f"{name}.yaml")

    @staticmethod
    def run_report_link(name: str) -> str:
        """The run's report, relative to the sweep folder (links in sweep.json and its report)."""
        return os.path.join("runs", name, "report.html")

    @staticmethod
    def holds_sweep(path: str) -> bool:
        """Whether ``path`` is a finished sweep folder (it has sweep.json)."""
        return os.path.isfile(SweepFolder(path).sweep_json)

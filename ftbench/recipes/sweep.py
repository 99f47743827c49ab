"""The sweep recipe: "change the data, the parameters or the model?" answered with controlled experiments, one lever
at a time around the user's config, top to bottom:

  1. resolve the base config as train-and-compare does (`prepare_run`; the embedded demo with no dataset)
  2. fix the data once: the held-out split and the training samples are written to the sweep's data/ folder, the
     training part in nested subsets (25% ⊂ 50% ⊂ 100%, one seeded order), so every run is scored on the same
     held-out samples
  3. plan the runs: the baseline, then each lever's other settings (data size, learning rate, LoRA rank, base
     model); epochs need no run: they are read from every run's evaluated checkpoints
  4. run each as a train-and-compare run in runs/<name>/ (its own report.html), from a YAML written next to it;
     one after another in this process, or one subprocess per GPU (`devices`, CUDA_VISIBLE_DEVICES). The base
     model's evaluation is done by the first run of each model and copied into the others; a finished run
     (metrics.json) is kept, so rerunning the same command resumes
  5. read the runs (`evaluation.sweep.analyse`: learning-curve fit, paired comparisons, verdicts) and write
     sweep.json and report.html
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

from ftbench.api.errors import InputError, UsageError
from ftbench.console import say
from ftbench.io import atomic_write_text, write_json
from ftbench.recipes.reports_index import update_index_for
from ftbench.recipes.run_folder import (
    RunFolder,
    SweepFolder,
    check_same_settings,
    share_base_evaluation,
    slug,
)
from ftbench.recipes.run_settings import COMPARE_KEYS

LEVER_CHOICES = ("data", "lr", "epochs", "rank", "model")
DEFAULT_VARY = ("data", "lr")
DEFAULT_FRACTIONS = (0.25, 0.5, 1.0)
DEFAULT_LR_FACTORS = (1 / 3, 1.0, 3.0)
DEFAULT_RANK_FACTORS = (0.5, 1.0, 2.0)


@dataclass
class SweepSettings:
    """What a sweep varies and how it runs (the command line's options)."""

    output_dir: str
    vary: tuple[str, ...] = DEFAULT_VARY
    fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    lr_factors: tuple[float, ...] = DEFAULT_LR_FACTORS
    ranks: tuple[int, ...] = ()  # empty: the config's rank ×½, ×1, ×2
    models: tuple[str, ...] = ()
    metric: str = "rouge-l"
    devices: tuple[str, ...] = ()  # GPU ids: one subprocess per device; empty: one after another here
    ray: str | None = None  # a Ray cluster's address: each run a Ray task there (recipes/ray_jobs.py)
    note: str | None = None  # said at the top of the report (the embedded default says what it runs)


@dataclass
class PlannedRun:
    """One run of the sweep: its name (its folder under runs/), the lever it moves and the keys it changes."""

    name: str
    lever: str
    settings: dict  # every lever's setting in this run: data fraction, lr, rank, model
    changes: dict = field(default_factory=dict)


# -- 1-3: the data and the plan --------------------------------------------------------------------------
def fix_data(
    train: list, held_out: list, seed: int, folder: SweepFolder, fractions: tuple[float, ...]
) -> tuple[str, dict[float, tuple[str, int]]]:
    """Write the held-out split and nested training subsets once: (eval path, fraction -> (path, samples))."""
    import random

    from ftbench.training.data import write_samples

    os.makedirs(folder.data_dir, exist_ok=True)

    eval_path = folder.eval_data
    write_samples(eval_path, held_out)
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)  # one order: each subset is the start of it, so they nest
    subsets = {}
    for f in sorted(set(fractions) | {1.0}):
        n = len(train) if f >= 1 else max(1, math.ceil(f * len(train)))
        path = folder.train_data(f)
        write_samples(path, [train[i] for i in sorted(order[:n])])  # the file keeps the data's own order
        subsets[f] = (path, n)
    return eval_path, subsets


def _short_number(x: float) -> str:
    return f"{x:.2g}".replace("+", "").replace("e-0", "e-")


def _scaled_lr(cfg, factor: float) -> float:
    return float(f"{cfg.learning_rate * factor:.3g}")


def _ranks(cfg, ss: SweepSettings) -> tuple[int, ...]:
    return ss.ranks or tuple(max(1, int(cfg.lora_rank * x)) for x in DEFAULT_RANK_FACTORS)


def check_settings(cfg, ss: SweepSettings) -> None:
    """Everything a run could refuse, refused before the first (the baseline may train for hours): each learning
    rate and rank against the training schema, each model resolved (a hub id's config fetched), each device a
    GPU of this machine. UsageError naming the option."""
    from ftbench.data.schema import SchemaError
    from ftbench.inference.models import check_model_exists, cuda_device_ids
    from ftbench.training.config import convert

    checks = []
    if "lr" in ss.vary:
        checks += [("--lr-factors", f"{x:g}", "learning_rate", _scaled_lr(cfg, x)) for x in ss.lr_factors]
    if "rank" in ss.vary:
        checks += [("--ranks", str(r), "lora_rank", r) for r in _ranks(cfg, ss)]
    for option, given, key, value in checks:
        try:
            convert(key, value)
        except SchemaError as e:
            raise UsageError(f"{option} {given}: {e}") from None
    if "model" in ss.vary:
        for m in ss.models:
            check_model_exists(m)
    if ss.devices:
        cuda_device_ids(ss.devices)


def plan_runs(cfg, ss: SweepSettings, subsets: dict[float, tuple[str, int]], eval_path: str) -> list[PlannedRun]:
    """The baseline (the user's config on all the data) and one run per other setting of each varied lever."""
    base = {"data": 1.0, "lr": cfg.learning_rate, "rank": cfg.lora_rank, "model": cfg.model_name_or_path}
    common = {"dataset": subsets[1.0][0], "eval_dataset": eval_path, "val_size": 0.0}
    runs = [PlannedRun("baseline", "baseline", dict(base), dict(common))]
    if "data" in ss.vary:
        for f in sorted(set(ss.fractions) - {1.0}):
            runs.append(
                PlannedRun(
                    f"data-{round(f * 100)}pct", "data", {**base, "data": f}, {**common, "dataset": subsets[f][0]}
                )
            )
    if "lr" in ss.vary:
        for x in sorted(set(ss.lr_factors) - {1.0}):
            lr = _scaled_lr(cfg, x)
            runs.append(
                PlannedRun(f"lr-{_short_number(lr)}", "lr", {**base, "lr": lr}, {**common, "learning_rate": lr})
            )
    if "rank" in ss.vary:
        alpha = cfg.lora_alpha or 2 * cfg.lora_rank
        # alpha keeps its ratio to the rank (same LoRA scale)
        for r in sorted(set(_ranks(cfg, ss)) - {cfg.lora_rank}):
            runs.append(
                PlannedRun(
                    f"rank-{r}",
                    "rank",
                    {**base, "rank": r},
                    {**common, "lora_rank": r, "lora_alpha": max(1, round(alpha * r / cfg.lora_rank))},
                )
            )
    if "model" in ss.vary:
        for m in [m for m in ss.models if m != cfg.model_name_or_path]:
            runs.append(
                PlannedRun(f"model-{slug(m)}", "model", {**base, "model": m}, {**common, "model_name_or_path": m})
            )
    return runs


def _run_yaml(cfg, rs, run: PlannedRun) -> dict:
    """The run's whole config as a LLaMA-Factory YAML plus the compare keys: `train-and-compare --config` runs it."""
    # max_samples was applied per dataset (as LLaMA-Factory does) when the subsets were written: applied again to
    # the merged file, it would cut every run to max_samples samples
    values = {k: v for k, v in cfg.to_yaml_dict().items() if v is not None and k not in ("output_dir", "max_samples")}
    values.update({k: getattr(rs, k) for k in COMPARE_KEYS if getattr(rs, k) is not None})
    values["gsm8k"] = rs.gsm8k or "none"
    values["retention"] = "none"  # the sweep compares settings by its metric; retention is train-and-compare's
    values.update(run.changes)
    return values


# -- 4: running ----------------------------------------------------------------------------------------------
def _run_in_process(config_path: str, folder: str, quiet: bool) -> None:
    from ftbench.recipes.run_settings import prepare_run
    from ftbench.recipes.seeds import run_with_seeds

    cfg, rs, _ = prepare_run(config_path, output_dir=folder)
    run_with_seeds(cfg, rs, quiet=quiet)


def _run_on_devices(jobs: list[tuple[str, str, str]], devices: tuple[str, ...], quiet: bool) -> None:
    """Each job (name, config, folder) as `ftbench train-and-compare` in its own process, one per GPU at a time
    (CUDA_VISIBLE_DEVICES), the next job starting on the first device that frees up."""
    from ftbench.processes.group import signals_raised, stop_all, stop_signal

    pending, running, failed = list(jobs), {}, []
    try:
        with signals_raised():
            _schedule(pending, running, failed, devices, quiet)
    except BaseException as e:  # interrupted: stop the runs this process started (each resumes on the next sweep)
        stop_all([proc for _, proc, _ in running.values()], stop_signal(e))
        raise
    finally:
        for _, proc, log in running.values():
            proc.close()
            log.close()
    if failed:
        raise InputError(
            f"{len(failed)} sweep run(s) failed: {'; '.join(failed)}; the finished runs are kept, "
            "rerun the same command to resume"
        )


def _schedule(pending: list, running: dict, failed: list, devices: tuple[str, ...], quiet: bool) -> None:
    from ftbench.processes.group import OwnedProcess

    while pending or running:
        for device in devices:
            if device not in running and pending:
                name, config, folder = pending.pop(0)
                os.makedirs(folder, exist_ok=True)
                log = open(RunFolder(folder).sweep_log, "w", encoding="utf-8")
                cmd = [
                    sys.executable,
                    "-m",
                    "ftbench",
                    "train-and-compare",
                    "--config",
                    config,
                    "--output-dir",
                    folder,
                    "--quiet",
                ]
                env = {**os.environ, "CUDA_VISIBLE_DEVICES": device}
                proc = OwnedProcess(cmd, owner_dir=folder, stdout=log, stderr=subprocess.STDOUT, env=env).start()
                running[device] = (name, proc, log)
                say(f"  {name}: started on GPU {device}", quiet)
        time.sleep(2)
        for device, (name, proc, log) in list(running.items()):
            if proc.poll() is not None:
                proc.close()  # whatever the run left in its group goes with it
                log.close()
                del running[device]
                if proc.poll() != 0:
                    failed.append(f"{name} (exit {proc.poll()}, log {log.name})")
                else:
                    say(f"  {name}: done on GPU {device}", quiet)


def run_all(cfg, rs, ss: SweepSettings, runs: list[PlannedRun], quiet: bool) -> None:
    """Every planned run not finished yet: first one run per model (each evaluates its base model), then the rest
    with the base evaluation copied in."""
    import yaml

    sweep_folder = SweepFolder(ss.output_dir)
    folders = {r.name: sweep_folder.run(r.name) for r in runs}
    jobs = []
    for r in runs:
        path = sweep_folder.run_yaml(r.name)
        os.makedirs(sweep_folder.runs_dir, exist_ok=True)
        atomic_write_text(path, yaml.safe_dump(_run_yaml(cfg, rs, r), sort_keys=False, allow_unicode=True))
        jobs.append((r, path, folders[r.name]))
    first_of_model: dict[str, str] = {}
    for r in runs:
        first_of_model.setdefault(r.settings["model"], r.name)
    phases = [
        [j for j in jobs if first_of_model[j[0].settings["model"]] == j[0].name],
        [j for j in jobs if first_of_model[j[0].settings["model"]] != j[0].name],
    ]
    for phase in phases:
        todo = []
        for r, path, folder in phase:
            if _finished(folder, r.changes.get("seeds", rs.seeds)):
                say(f"run {r.name}: finished earlier, kept ({folder.root})", quiet)
                continue
            share_base_evaluation(folders[first_of_model[r.settings["model"]]], folder)
            todo.append((r.name, path, folder.root))
        if ss.ray:
            from ftbench.recipes.ray_jobs import run_on_ray

            run_on_ray(todo, ss.ray, quiet)
            continue
        if ss.devices:
            _run_on_devices(todo, ss.devices, quiet)
            continue
        for i, (name, path, folder) in enumerate(todo, 1):
            say(f"run {name} ({i}/{len(todo)} in this phase): {folder}", quiet)
            _run_in_process(path, folder, quiet)


def _finished(folder: RunFolder, seeds: int) -> bool:
    """Whether a run folder holds the finished run with at least as many training seeds as asked (a sweep rerun
    with more seeds adds them to each run; one that --seeds auto gave a third keeps it)."""
    if not RunFolder.holds_run(folder.root):
        return False
    with open(folder.metrics, encoding="utf-8") as fh:
        return ((json.load(fh).get("seeds") or {}).get("n") or 1) >= seeds


def _on_the_edge(analysis: dict, runs: list[PlannedRun]) -> set[str]:
    """The runs whose verdict a third seed could change (`metrics.evidence.on_the_edge`): the best and the
    runner-up of a lever whose margin's interval is on the edge of 0; every run of the data curve when its
    slope's interval is."""
    from ftbench.metrics.evidence import on_the_edge

    names: set[str] = set()
    for lever, info in analysis["levers"].items():
        if on_the_edge(info.get("margin_ci95")) and info.get("runner_up"):
            names |= {info["best"], info["runner_up"]}
        if lever == "data" and on_the_edge(info.get("slope_ci95")):
            names |= {r.name for r in runs if r.lever in ("data", "baseline")}
    return names


# -- 5: reading the runs and the report -----------------------------------------------------------------------
def _epoch_of(log: list[dict]) -> dict[int, float]:
    return {int(r["current_steps"]): float(r["epoch"]) for r in log if "current_steps" in r and "epoch" in r}


def _checkpoint_scores(folder: RunFolder, label: str, metric: str) -> list[float]:
    """Per-sample ``metric`` of one checkpoint's predictions made by --select-by (``label``: its
    `checkpoint_label`, as metrics.json's selection scores list it)."""
    from ftbench.data.predictions import read_prediction_rows
    from ftbench.evaluation.comparison import score_figure

    return score_figure(read_prediction_rows(folder.checkpoint_predictions(label)), metric)[1]


def collect(ss: SweepSettings, runs: list[PlannedRun], subsets: dict) -> tuple[list, list[dict]]:
    """(analysis `RunOutcome`s, sweep.json's run rows) from the finished run folders."""
    from ftbench.data.predictions import read_prediction_rows
    from ftbench.evaluation.comparison import score_figure
    from ftbench.evaluation.sweep import RunOutcome
    from ftbench.metrics.registry import scorer_for_figure
    from ftbench.metrics.uncertainty import percentile_interval, seed_and_sample_means, seed_spread
    from ftbench.training.diagnosis import diagnose_training
    from ftbench.training.trainer_log import read_trainer_log

    scorer = scorer_for_figure(ss.metric).name
    outcomes, rows = [], []
    for r in runs:
        folder = SweepFolder(ss.output_dir).run(r.name)
        with open(folder.metrics, encoding="utf-8") as fh:
            metrics = json.load(fh)
        # a run of several training seeds (--seeds): each seed's per-sample scores; its curve is the first seed's
        seed_folders = [
            RunFolder(os.path.join(folder.root, f)) for f in (metrics.get("seeds") or {}).get("folders", [])
        ]
        by_seed = [score_figure(read_prediction_rows(f.predictions(scorer, "after")), ss.metric) for f in seed_folders]
        if by_seed:
            seed_scores = [s for _, s, _ in by_seed]
            samples = [sum(col) / len(col) for col in zip(*seed_scores)]
            value = sum(v for v, _, _ in by_seed) / len(by_seed)
            ci = percentile_interval(seed_and_sample_means([seed_scores])[:, 0])
            folder = seed_folders[0]
        else:
            seed_scores = []
            value, samples, ci = score_figure(read_prediction_rows(folder.predictions(scorer, "after")), ss.metric)
        log = read_trainer_log(folder.trainer_log)
        epochs = _epoch_of(log)
        checkpoints = [{**c, "epoch": epochs.get(c["step"])} for c in metrics["training"]["checkpoints"]]
        selection = metrics["checkpoint"].get("selection") or {}
        if selection.get("by") == ss.metric:  # each checkpoint's generations were scored: the metric by epoch
            by_step = {c["step"]: _checkpoint_scores(folder, c["label"], ss.metric) for c in selection["scores"]}
            checkpoints = [{**c, "scores": by_step.get(c["step"])} for c in checkpoints]
        size = subsets[r.settings["data"]][1]
        # the run's own verdict on its loss curve (the rule its report applies), not a second one
        outcomes.append(
            RunOutcome(
                r.name,
                r.lever,
                r.settings,
                size,
                samples,
                log,
                checkpoints,
                diverged_at=diagnose_training(log).diverged_at,
                seed_scores=seed_scores,
            )
        )
        rows.append(
            {
                "name": r.name,
                "lever": r.lever,
                "settings": r.settings,
                "changes": r.changes,
                "train_size": size,
                "metric": ss.metric,
                "value": value,
                "ci95": ci,
                "seeds": {
                    "seeds": (metrics.get("seeds") or {}).get("seeds"),
                    "values": [v for v, _, _ in by_seed],
                    "sd": seed_spread([v for v, _, _ in by_seed]),
                }
                if by_seed
                else None,
                "before": metrics["before"].get(ss.metric),
                "checkpoint": metrics["checkpoint"],
                "report": SweepFolder.run_report_link(r.name),
                "durations": metrics["run"].get("durations"),
                "log": log,
            }
        )
    return outcomes, rows


def sweep(cfg, rs, ss: SweepSettings, *, quiet: bool = False) -> dict:
    """Run (or resume) the whole sweep and return sweep.json's content; writes sweep.json and report.html."""
    from ftbench.evaluation.sweep import analyse
    from ftbench.metrics.registry import judged_figures, scorer_for_figure
    from ftbench.report.sweep_report import render_sweep_report
    from ftbench.training.data import train_and_eval_samples

    if ss.metric not in judged_figures():
        raise UsageError(f"--metric {ss.metric}: choose one of {', '.join(judged_figures())}")
    check_settings(cfg, ss)
    scorer = scorer_for_figure(ss.metric)
    train, held_out = train_and_eval_samples(cfg)
    if not held_out:
        raise InputError("a sweep needs held-out samples: set val_size (e.g. 0.1) or eval_dataset")
    if not scorer.eval_samples(held_out, rs):
        raise UsageError(f"--metric {ss.metric} needs {scorer.eval_set}, and this sweep has none")
    os.makedirs(ss.output_dir, exist_ok=True)
    _check_same_sweep(cfg, ss)
    t0 = time.perf_counter()
    folder = SweepFolder(ss.output_dir)
    eval_path, subsets = fix_data(train, held_out, cfg.seed, folder, ss.fractions if "data" in ss.vary else (1.0,))
    runs = plan_runs(cfg, ss, subsets, eval_path)
    say(
        f"sweep: {len(runs)} runs ({', '.join(r.name for r in runs)}), {len(subsets)} data sizes, held-out split "
        f"of {sum(1 for _ in open(eval_path, encoding='utf-8'))} samples, metric {ss.metric}",
        quiet,
    )
    run_all(cfg, rs, ss, runs, quiet)
    outcomes, rows = collect(ss, runs, subsets)
    analysis = analyse(outcomes, ss.metric, scale100=scorer.percent, unit=scorer.sample_unit)
    edge = _on_the_edge(analysis, runs) if rs.seeds_auto else set()
    if edge:  # --seeds auto: a third seed where a verdict could go either way
        say(f"seeds auto: a third seed for {', '.join(sorted(edge))} (their verdict is on the edge of 0)", quiet)
        for r in runs:
            if r.name in edge:
                r.changes["seeds"] = 3
        run_all(cfg, rs, ss, [r for r in runs if r.name in edge], quiet)
        outcomes, rows = collect(ss, runs, subsets)
        analysis = analyse(outcomes, ss.metric, scale100=scorer.percent, unit=scorer.sample_unit)
    result = {
        "kind": "ftbench-sweep",
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "model": cfg.model_name_or_path,
        "backend": cfg.backend,
        "demo_note": ss.note,
        "data": cfg.dataset,
        "settings": {k: v for k, v in asdict(ss).items() if k != "output_dir"},
        "seeds": rs.seeds,  # training seeds per setting (each run folder combines its seeds)
        "runs": rows,
        "analysis": analysis,
        "seconds": round(time.perf_counter() - t0, 1),
        "run_seconds": round(sum(sum((r["durations"] or {}).values()) for r in rows), 1),
    }
    write_json(folder.sweep_json, result)
    atomic_write_text(folder.report, render_sweep_report(result))
    update_index_for(ss.output_dir)
    return result


def _check_same_sweep(cfg, ss: SweepSettings) -> None:
    """A sweep folder is resumed or extended only around the same base config."""
    current = {k: v for k, v in cfg.to_yaml_dict().items() if k != "output_dir"}
    check_same_settings(
        SweepFolder(ss.output_dir).config,
        current,
        folder=ss.output_dir,
        holds="a sweep around another config",
        then="give a new --output-dir",
        started=SweepFolder(ss.output_dir).holds_results(),
    )

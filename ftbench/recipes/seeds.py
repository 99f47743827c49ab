"""`train-and-compare --seeds N`: N runs that differ only in the training `seed` (LoRA initialisation, data order,
dropout), read as one answer, top to bottom:

  1. each seed is a whole train-and-compare run in seeds/seed-<S>/ (S = the config's seed, seed+1, ...), resumable
     on its own; a finished seed (its metrics.json) is never trained again, so rerunning with a larger N adds seeds
  2. the base model is evaluated once: the first seed's base predictions are copied up into the run folder and
     from there into every other seed (a sweep may have copied them in already)
  3. the seeds' comparisons are combined (`evaluation.seeds.combine_seeds`: mean over seeds, a 95% CI over seeds
     and held-out samples together, each seed's value, the seed-to-seed spread) into the run folder's
     metrics.json and report.html, beside the seeds' own reports
"""

from __future__ import annotations

import os
from dataclasses import replace

from ftbench.api.backends import TrainConfig
from ftbench.api.errors import UsageError
from ftbench.console import is_main_process, say, world_size
from ftbench.io import atomic_write_text, write_json
from ftbench.metrics.evidence import on_the_edge
from ftbench.recipes.reports_index import update_index_for
from ftbench.recipes.run_folder import RunFolder, share_base_evaluation
from ftbench.recipes.run_settings import RunSettings


def run_with_seeds(cfg: TrainConfig, rs: RunSettings, *, quiet: bool = False) -> dict | None:
    """`train-and-compare`: one run (`recipes.train_and_compare.run`), or with ``rs.seeds`` > 1 its seeds read
    as one answer."""
    from ftbench.recipes.train_and_compare import run

    return run_seeds(cfg, rs, quiet=quiet) if rs.seeds > 1 else run(cfg, rs, quiet=quiet)


def run_seeds(cfg: TrainConfig, rs: RunSettings, *, quiet: bool = False) -> dict | None:
    """Train and evaluate every seed not finished yet, then write the combined metrics.json and report.html;
    returns the combined metrics (None on the processes of a multi-GPU run other than the main one)."""
    if rs.trained_run:
        raise UsageError("--seeds trains several times; --trained-run evaluates one finished run: give one of them")
    folder = RunFolder(rs.output_dir)
    if os.path.exists(folder.train_result) or (
        RunFolder.holds_run(folder.root) and "seeds" not in _read_json(folder.metrics)
    ):
        raise UsageError(
            f"{folder.root} holds a run of one training seed; --seeds {rs.seeds} writes its seeds' combined "
            "figures there: give a new --output-dir"
        )
    if rs.seeds_auto and world_size() > 1:
        raise UsageError("--seeds auto decides on the main process alone: under torchrun give a number (--seeds 3)")
    os.makedirs(folder.root, exist_ok=True)
    seeds = [cfg.seed + k for k in range(rs.seeds)]
    cfg = _fixed_split(cfg, folder)
    _train_seeds(cfg, rs, folder, seeds, quiet)
    if not is_main_process():
        return None
    metrics = combined_metrics(folder, seeds, rs)
    primary = metrics["comparison"].get(metrics.get("primary")) or {}
    if rs.seeds_auto and len(seeds) == 2 and on_the_edge(primary.get("delta_ci95")):
        say(f"seeds auto: {metrics['primary']}'s interval is on the edge of 0, a third seed decides", quiet)
        seeds.append(cfg.seed + 2)
        _train_seeds(cfg, rs, folder, seeds, quiet)
        metrics = combined_metrics(folder, seeds, rs)
    say(f"seeds combined: {folder.report}", quiet)
    return metrics


def _fixed_split(cfg: TrainConfig, folder: RunFolder) -> TrainConfig:
    """The seeds' one split. With val_size the held-out samples are drawn with the training seed (as LLaMA-Factory
    draws them), so each seed would hold out, and train on, other samples: the split of the first seed is written
    once (data/seeds_train.jsonl, data/seeds_eval.jsonl, max_samples applied) and every seed trains and is
    evaluated on those files. A config with eval_dataset is already fixed."""
    from ftbench.training.data import train_and_eval_samples, write_samples

    if cfg.eval_dataset:
        return cfg
    train_path, eval_path = (
        folder.file(os.path.join("data", "seeds_train.jsonl")),
        folder.file(os.path.join("data", "seeds_eval.jsonl")),
    )
    if not (os.path.exists(train_path) and os.path.exists(eval_path)):
        train, held_out = train_and_eval_samples(cfg)
        os.makedirs(os.path.dirname(train_path), exist_ok=True)
        write_samples(train_path, train)
        write_samples(eval_path, held_out)
    return replace(cfg, dataset=[train_path], eval_dataset=[eval_path], val_size=0.0, max_samples=None)


def _train_seeds(cfg: TrainConfig, rs: RunSettings, folder: RunFolder, seeds: list[int], quiet: bool) -> None:
    """Each seed's run that is not finished yet, in its own folder, with the base predictions shared."""
    from ftbench.recipes.train_and_compare import run

    for k, seed in enumerate(seeds, 1):
        target = RunFolder(folder.seed_run(seed))
        if RunFolder.holds_run(target.root):
            say(f"seed {seed} ({k}/{len(seeds)}): finished earlier, kept ({target.root})", quiet)
        else:
            say(f"seed {seed} ({k}/{len(seeds)}): {target.root}", quiet)
            if is_main_process():  # the base model, evaluated once (by the main process, as every evaluation)
                share_base_evaluation(folder, target, finished_only=False)
            run(
                replace(cfg, seed=seed, output_dir=target.train_dir),
                replace(rs, output_dir=target.root, seeds=1, seeds_auto=False, durations={}),
                quiet=quiet,
            )
        if is_main_process():
            share_base_evaluation(target, folder)


def combined_metrics(folder: RunFolder, seeds: list[int], rs: RunSettings) -> dict:
    """metrics.json of the seeds together (the first seed's, with every figure over all seeds and a "seeds"
    part), and report.html; both written into ``folder``."""
    from ftbench.evaluation.comparison import compare_scorer, read_side
    from ftbench.evaluation.seeds import combine_seeds
    from ftbench.metrics.registry import scorers
    from ftbench.metrics.uncertainty import SEED_CI_METHOD
    from ftbench.recipes.run_record import demo_about
    from ftbench.report.run_report import render_run_report
    from ftbench.training.trainer_log import read_trainer_log

    runs = [RunFolder(folder.seed_run(s)) for s in seeds]
    each = [_read_json(r.metrics) for r in runs]
    first = each[0]
    every, per_scorer = scorers(), {}
    for name in first["n"]:  # a judge's verdicts are read back from each seed's judgments, not asked again
        source = every[name].answers_of(rs) or name
        before = read_side(every[source], runs[0].predictions(source, "before"))
        per_scorer[name] = [
            compare_scorer(name, before, read_side(every[source], r.predictions(source, "after")), run=(rs, r))
            for r in runs
        ]
    combined = {}
    for name, comparisons in per_scorer.items():
        combined.update(combine_seeds(name, comparisons, seeds))
    comparison = {f: combined.get(f, e) for f, e in first["comparison"].items()}
    durations: dict[str, float] = {}
    parts: dict[str, dict[str, float]] = {}
    for m in each:  # every seed's time (the base evaluation was the first seed's), and its parts
        for stage, seconds in (m["run"].get("durations") or {}).items():
            durations[stage] = round(durations.get(stage, 0.0) + seconds, 1)
        for stage, part_seconds in (m["run"].get("duration_parts") or {}).items():
            for part, seconds in part_seconds.items():
                parts.setdefault(stage, {})[part] = round(parts.get(stage, {}).get(part, 0.0) + seconds, 2)
    details = {  # each scorer's explanation (the GSM8K diagnosis, the spread phrases): the first seed's, as shown
        name: {side: getattr(per_scorer[name][0], side).get(scorer.run_detail) for side in ("before", "after")}
        for name, scorer in every.items()
        if scorer.run_detail and name in per_scorer
    }
    metrics = {
        **first,
        **details,
        "after": {**first["after"], **{f: e["after"] for f, e in combined.items() if e}},
        "comparison": comparison,
        "signatures": {f: f"{s}|seeds:{len(seeds)}" for f, s in first["signatures"].items()},
        "at_limit": {
            name: {**info, "after": max((m.get("at_limit") or {}).get(name, {}).get("after", 0) for m in each)}
            for name, info in (first.get("at_limit") or {}).items()
        },
        "seeds": {
            "n": len(seeds),
            "seeds": seeds,
            "folders": [os.path.relpath(r.root, folder.root) for r in runs],
            "checkpoints": [m["checkpoint"] for m in each],
            "ci_method": SEED_CI_METHOD,
            "shown": "the per-sample table, the training curve and the checkpoint are the first seed's",
        },
        "run": {
            **first["run"],
            "output_dir": folder.root,
            "adapter": f"{len(seeds)} adapters, one per training seed (seeds/seed-<S>/)",
            "demo": rs.demo,
            "demo_about": demo_about(rs.demo),
            "durations": durations,
            "duration_parts": parts,
            "cost": {**(first["run"].get("cost") or {}), "seconds": round(sum(durations.values()), 1)},
        },
    }
    validation = _read_json(runs[0].validation)
    validation["trained"] = first["validation"].get("trained")
    page = render_run_report(
        metrics, {name: c[0] for name, c in per_scorer.items()}, read_trainer_log(runs[0].trainer_log), validation
    )
    atomic_write_text(folder.report, page)
    write_json(folder.metrics, metrics)  # last: it marks the combined run finished
    update_index_for(folder.root)
    return metrics


def _read_json(path: str) -> dict:
    """A file a seed's run wrote, read as any run file (size and nesting capped, one line when damaged)."""
    from ftbench.data.run_files import read_json_file

    value = read_json_file(path)
    if not isinstance(value, dict):
        raise UsageError(f"{path}: missing or not a JSON object; rerun the same command to redo that seed")
    return value

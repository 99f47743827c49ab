"""The train-and-compare recipe, top to bottom:

  1. validate the training data (stop on errors; warnings go into the report)
  2. the eval sets: the held-out split (eval_dataset, or val_size of the data) and GSM8K problems
  3. evaluate the base model: greedy predictions, LLaMA-Factory BLEU/ROUGE and lm-eval GSM8K strict/flexible
  4. train a LoRA adapter with the chosen backend; its `TrainResult` lists every checkpoint and its eval loss
  5. choose the checkpoint with the lowest eval loss (`ftbench.training.checkpoints`), evaluate it the same way
  6. compare (paired bootstrap, McNemar, wins/losses), diagnose the loss curves, write the report

Every stage leaves its files in the run folder (`RunFolder`); running the same command with the same
`--output-dir` again skips what is done and resumes what was interrupted (predictions row by row, training from
its last checkpoint).
"""

from __future__ import annotations

import json
import os
from contextlib import nullcontext
from dataclasses import asdict

from ftbench.api.backends import TrainConfig, TrainResult
from ftbench.api.errors import InputError, UsageError
from ftbench.api.generation import DEFAULT_ENGINE
from ftbench.console import is_main_process, local_rank, say, world_size
from ftbench.io import atomic_write_text, write_json, write_jsonl
from ftbench.recipes.reports_index import update_index_for
from ftbench.recipes.run_folder import SIDES, RunFolder, check_same_settings, stage_time
from ftbench.recipes.run_predictions import free_accelerator_memory, predict_all
from ftbench.recipes.run_record import run_info
from ftbench.recipes.run_settings import RunSettings
from ftbench.training.checkpoints import CheckpointChoice, recorded_choice, settle_choice


def run(cfg: TrainConfig, rs: RunSettings, *, quiet: bool = False) -> dict | None:
    """Run every stage (skipping those already done in ``rs.output_dir``) and return metrics.json's content.

    Under multi-GPU launchers every process trains (the Trainer's DDP); only rank 0 evaluates and reports, on its
    own GPU, while the others wait for it in the process-group set-up (returns None on the other ranks)."""
    from ftbench.backends import get_backend

    folder = rs.folder
    backend = get_backend(cfg.backend)
    if not is_main_process():
        if not os.path.exists(folder.train_result):
            backend.train(cfg, resume=os.path.isdir(cfg.output_dir), quiet=True)
        return None
    if world_size() > 1:
        rs.device = f"cuda:{local_rank()}"
    os.makedirs(folder.root, exist_ok=True)
    _check_same_run(cfg, rs)
    if rs.threads:
        import torch

        torch.set_num_threads(rs.threads)
    # a finished run to evaluate is read (schemas, adapter base, weights) before any model work
    trained = _read_trained_run(cfg, rs) if rs.trained_run else None
    if not rs.trained_run:
        backend.check_config(cfg)

    # 1. validate the training data
    with stage_time(folder, rs.durations, "validate"):
        validation = _validate(cfg, folder)
    say(
        f"[1/6] data: {validation['records']} records in the dataset files, {len(validation['warnings'])} warnings "
        f"(details in {folder.validation})",
        quiet,
    )

    # 2. the eval sets: each scorer's (the held-out split, GSM8K problems, ...); an empty one is not evaluated
    from ftbench.metrics.registry import scorers
    from ftbench.training.data import template_of, train_and_eval_samples

    train, held_out = train_and_eval_samples(cfg)
    if not held_out:
        raise InputError("train-and-compare needs held-out samples: set val_size (e.g. 0.1) or eval_dataset")
    validation["trained"] = _what_is_trained(train, held_out)
    eval_sets = {name: scorer.eval_samples(held_out, rs) for name, scorer in scorers().items()}
    say(
        f"[2/6] training on {len(train)} samples (max_samples, val_size applied); eval sets (samples): "
        + ", ".join(f"{name} {len(samples) or 'none'}" for name, samples in eval_sets.items()),
        quiet,
    )

    # 3. the base model
    say("[3/6] evaluating the base model", quiet)
    with stage_time(folder, rs.durations, "evaluate_before"):
        predict_all(cfg.model_name_or_path, None, eval_sets, rs, "before", quiet, template_of(cfg))

    # 4. training
    with stage_time(folder, rs.durations, "train"):
        result = _keep_trained_run(trained, rs, quiet) if trained else _train(backend, cfg, folder, quiet)
    free_accelerator_memory()

    # 5. the chosen checkpoint: lowest eval loss (chosen once, when training finished), or (select_by) the best
    # generations on the eval split
    choice = recorded_choice(result)
    selection = None
    if rs.select_by:
        with stage_time(folder, rs.durations, "select_checkpoint"):
            selection = _select_by_metric(cfg, rs, result, eval_sets, choice, quiet)
        choice = selection.pop("choice")
    say(f"[5/6] evaluating {choice.name}: {choice.reason}", quiet)
    with stage_time(folder, rs.durations, "evaluate_after"):
        predict_all(cfg.model_name_or_path, choice.checkpoint.path, eval_sets, rs, "after", quiet, template_of(cfg))

    # 6. compare, diagnose, report
    metrics = _compare_and_report(cfg, rs, validation, result, choice, eval_sets, selection)
    say(f"[6/6] report: {folder.report}", quiet)
    return metrics


# -- stage helpers ---------------------------------------------------------------------------------------
def _check_same_run(cfg: TrainConfig, rs: RunSettings) -> None:
    """A run folder is resumed only by the same run: a different config there would mix two experiments."""
    from ftbench.io import sha256_of_path
    from ftbench.training.data import resolve_datasets

    specs = resolve_datasets(cfg, cfg.dataset) + resolve_datasets(cfg, cfg.eval_dataset or [], "eval_dataset")
    from ftbench.evaluation.benchmark import local_files

    files = [s.path for s in specs if s.load_from == "file"] + local_files(rs.benchmark or [])  # task YAMLs, data
    files += [rs.gsm8k] if rs.gsm8k and os.path.exists(rs.gsm8k) else []
    current = {
        "train": {k: v for k, v in cfg.to_yaml_dict().items() if k != "output_dir"},
        "compare": {k: getattr(rs, k) for k in ("gsm8k", "gsm8k_limit", "max_new_tokens", "gsm8k_max_new_tokens")}
        | ({"select_by": rs.select_by} if rs.select_by else {})
        | ({"benchmark": rs.benchmark, "benchmark_limit": rs.benchmark_limit} if rs.benchmark else {}),
        "data": {os.path.abspath(f): sha256_of_path(f) for f in files},
    }  # edited data = another run
    # predictions of one engine are not continued by another; the default engine is not recorded, so run folders
    # made before engines existed still resume
    if rs.engine != DEFAULT_ENGINE:
        current["compare"]["engine"] = rs.engine
    check_same_settings(
        rs.folder.run_config,
        current,
        folder=rs.output_dir,
        holds="a run with a different config",
        then="give a new --output-dir to start another run",
        started=rs.folder.holds_results(),
    )


def _validate(cfg: TrainConfig, folder: RunFolder) -> dict:
    """Validate the training data exactly as the backend will read it (same specs), checking overlap with the
    eval set; errors stop the run before any model is loaded."""
    from ftbench.quality.checks import QualityOptions
    from ftbench.quality.validate import validate
    from ftbench.training.data import resolve_datasets

    specs = resolve_datasets(cfg, cfg.dataset)
    against = resolve_datasets(cfg, cfg.eval_dataset or [], "eval_dataset")
    report = validate(specs, QualityOptions(cutoff_len=cfg.cutoff_len), against=against)
    summary = report.to_json()
    write_json(folder.validation, summary)
    if not report.ok:
        first = report.errors[0].one_line()
        raise InputError(
            f"the training data has {len(report.errors)} error(s); first: {first} "
            f"(all of them: ftbench validate {' '.join(s.path for s in specs)})"
        )
    return summary


def _what_is_trained(train: list, held_out: list) -> dict:
    """What the run trains and holds out, as opposed to what the dataset files hold (validation counts every
    record): the sample counts after max_samples and the split, and how many of each carry an unfilled template
    placeholder such as {{name}} (the model learns the braces; a reference holding them scores answers against
    the braces)."""
    from ftbench.quality.text import find_placeholders

    def with_placeholders(samples, whole: bool) -> int:
        return sum(bool(find_placeholders(s.turns[-1][1] + ("\n" + s.prompt_text() if whole else ""))) for s in samples)

    return {
        "samples": len(train),
        "held_out": len(held_out),
        "with_placeholders": with_placeholders(train, True),
        "held_out_references_with_placeholders": with_placeholders(held_out, False),
    }


def _select_by_metric(
    cfg: TrainConfig, rs: RunSettings, result: TrainResult, eval_sets: dict, by_loss, quiet: bool
) -> dict:
    """Generate with every distinct checkpoint on the eval split of ``rs.select_by`` and choose the best by it;
    returns the choice and, for metrics.json, every checkpoint's score beside its eval loss."""
    from ftbench.data.predictions import read_prediction_rows
    from ftbench.evaluation.comparison import score_figure
    from ftbench.metrics.registry import scorer_for_figure
    from ftbench.training.checkpoints import checkpoint_label, checkpoint_name, choose_by_metric, distinct_checkpoints
    from ftbench.training.data import template_of

    metric, judge = rs.select_by, scorer_for_figure(rs.select_by)
    scorer = judge.name
    if not eval_sets.get(scorer):
        raise UsageError(f"--select-by {metric} needs the {scorer} eval set, and this run has none")
    candidates = distinct_checkpoints(result.checkpoints)
    scores = []
    for c in candidates:
        path = rs.folder.checkpoint_predictions(checkpoint_label(c.path))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        say(f"[5/6] scoring {checkpoint_name(c)} by {metric} on {len(eval_sets[scorer])} samples", quiet)
        predict_all(
            cfg.model_name_or_path,
            c.path,
            {scorer: eval_sets[scorer]},
            rs,
            "after",
            quiet,
            template_of(cfg),
            paths={scorer: path},
        )
        scores.append(score_figure(read_prediction_rows(path), metric)[0])
    choice = choose_by_metric(candidates, scores, metric, judge.higher_is_better)
    return {
        "choice": choice,
        "by": metric,
        "by_eval_loss": by_loss.to_json(),
        "differ": choice.checkpoint.path != by_loss.checkpoint.path,
        "scores": [
            {
                "name": checkpoint_name(c),
                "label": checkpoint_label(c.path),
                "step": c.step,
                "eval_loss": c.eval_loss,
                metric: v,
            }
            for c, v in zip(candidates, scores)
        ],
    }


def _train(backend, cfg: TrainConfig, folder: RunFolder, quiet: bool) -> TrainResult:
    """Train (or resume an interrupted training) and keep the backend's `TrainResult` in the run folder; a run
    whose training finished reuses it."""
    if os.path.exists(folder.train_result):
        say(f"[4/6] training: already done in {cfg.output_dir}", quiet)
        with open(folder.train_result, encoding="utf-8") as fh:
            return TrainResult.from_json(json.load(fh))
    say(f"[4/6] training with backend {backend.name} into {cfg.output_dir}", quiet)
    result = backend.train(cfg, resume=os.path.isdir(cfg.output_dir), quiet=quiet)
    if not result.checkpoints:
        raise UsageError(f"backend {backend.name} reported no adapter (TrainResult.checkpoints is empty)")
    settle_choice(result)
    write_jsonl(folder.trainer_log, result.log)
    write_json(folder.train_result, result.to_json())
    return result


def _read_trained_run(cfg: TrainConfig, rs: RunSettings) -> TrainResult:
    """A finished run's `TrainResult`, read from its folder (LLaMA-Factory's or ftbench's: trainer_state.json,
    trainer_log.jsonl, checkpoint-N/, all_results.json) as hostile input: every file through its schema, every
    adapter's weights whole and trained on this base model (unless ``rs.allow_other_base``)."""
    from ftbench.inference.models import check_adapter, is_adapter_dir
    from ftbench.training.checkpoints import read_trained_run

    result = read_trained_run(rs.trained_run)
    choice = settle_choice(result, write=False)  # the run folder keeps the choice (train_result.json), not theirs
    for path in {c.path for c in result.checkpoints if is_adapter_dir(c.path)} | {choice.checkpoint.path}:
        check_adapter(path, cfg.model_name_or_path, allow_other_base=rs.allow_other_base)
    return result


def _keep_trained_run(result: TrainResult, rs: RunSettings, quiet: bool) -> TrainResult:
    """The read run kept in the run folder like a trained one."""
    say(
        f"[4/6] training: not run; reading the finished run {rs.trained_run} (eval losses as it logged them: "
        "LLaMA-Factory weighs a short last eval batch like a full one, see docs/train-and-compare.md)",
        quiet,
    )
    write_jsonl(rs.folder.trainer_log, result.log)
    write_json(rs.folder.train_result, result.to_json())
    return result


def _compare_and_report(
    cfg: TrainConfig,
    rs: RunSettings,
    validation: dict,
    result: TrainResult,
    choice: CheckpointChoice,
    eval_sets: dict[str, list],
    selection: dict | None = None,
) -> dict:
    from ftbench.evaluation.comparison import compare_scorer, read_side
    from ftbench.metrics.registry import scorers
    from ftbench.report.run_report import render_run_report
    from ftbench.training.diagnosis import diagnose_training

    folder, every = rs.folder, scorers()
    rows = {  # each scorer's prediction rows, read once: compared, and counted at the generation limit
        name: {side: read_side(every[name], folder.predictions(name, side)) for side in SIDES}
        for name in every
        if eval_sets.get(name)
    }
    compared = {}
    for name, scorer in every.items():  # in the report's order; a judge scores another scorer's answers
        source = scorer.answers_of(rs)
        if (source or name) in rows:
            with stage_time(folder, rs.durations, name) if source else nullcontext():
                compared[name] = compare_scorer(name, *(rows[source or name][side] for side in SIDES), run=(rs, folder))
    diagnosis = diagnose_training(result.log)
    at_limit = _answers_at_limit(cfg, rs, every, rows)
    headline = rs.select_by or next((every[name].primary for name in compared), None)  # "did it help?" asks this
    metrics = {
        "primary": headline,
        "before": {f: e["before"] for t in compared.values() for f, e in t.figures.items()},
        "after": {f: e["after"] for t in compared.values() for f, e in t.figures.items()},
        "checkpoint": {**choice.to_json(), **({"selection": selection} if selection else {})},
        "comparison": {f: e for t in compared.values() for f, e in t.figures.items()},
        "signatures": {f: s for t in compared.values() for f, s in t.signatures.items()},
        "n": {name: t.n for name, t in compared.items()},
        "at_limit": at_limit,
        # a scorer's own explanation of each side (gsm8k: why strict and flexible disagree); null when not run
        **{
            name: {side: getattr(compared[name], side).get(scorer.run_detail) for side in SIDES}
            if name in compared
            else None
            for name, scorer in every.items()
            if scorer.run_detail
        },
        "training": {"diagnosis": diagnosis.to_json(), "checkpoints": [asdict(c) for c in result.checkpoints]},
        "validation": {
            "trained": validation.get("trained"),
            "records": validation["records"],
            "ok": validation["ok"],
            "warnings": len(validation["warnings"]),
            "stats": validation["stats"],
        },
        "run": run_info(cfg, rs, choice, result),
    }
    for name, scorer in every.items():  # a scorer not run (gsm8k: none): its figures stated as not measured
        if name not in compared:
            for side in SIDES:
                metrics[side].update({f: None for f in scorer.judged_figures()})
    # metrics.json last: it marks a finished run (`RunFolder.holds_run`), so a run killed in between is redone
    atomic_write_text(folder.report, render_run_report(metrics, compared, result.log, validation))
    write_json(folder.metrics, metrics)
    update_index_for(folder.root)
    return metrics


def _answers_at_limit(cfg: TrainConfig, rs: RunSettings, every: dict, rows: dict) -> dict:
    """Per scorer, how many answers of each side (``rows``: scorer -> side -> prediction rows) reached its
    generation limit (`answers_at_limit`, with the base model's tokenizer); {} when that tokenizer cannot be
    loaded (a served model known only by name)."""
    from ftbench.api.errors import FtbenchError
    from ftbench.evaluation.comparison import answers_at_limit
    from ftbench.inference.models import load_tokenizer

    try:
        tokenizer = load_tokenizer(cfg.model_name_or_path)
    except FtbenchError:
        return {}
    return {  # a scorer that runs the model itself generates to its own tasks' lengths, not the run's
        name: answers_at_limit(sides, tokenizer, every[name].generation_length(rs))
        for name, sides in rows.items()
        if not every[name].runs_model
    }

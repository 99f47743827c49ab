"""The train-and-compare recipe, top to bottom:

  1. validate the training data (stop on errors; warnings go into the report)
  2. the eval sets: the held-out split (eval_dataset, or val_size of the data) and GSM8K problems
  3. evaluate the base model: greedy predictions, LLaMA-Factory BLEU/ROUGE and lm-eval GSM8K strict/flexible
  4. train a LoRA adapter with the chosen backend, evaluating eval loss at every checkpoint
  5. choose the checkpoint with the lowest eval loss, and evaluate it the same way
  6. compare (paired bootstrap, McNemar, wins/losses), diagnose the loss curves, write the report

Every stage leaves its files in the run folder; running the same command with the same `--output-dir`
again skips what is done and resumes what was interrupted (predictions row by row, training from its last
checkpoint).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field

from ftbench.api.backends import TrainConfig
from ftbench.api.errors import InputError, UsageError
from ftbench.backends.console import say as _say
from ftbench.io import atomic_write_text


@dataclass
class RunSettings:
    """What train-and-compare adds to a training config: where to write, what to evaluate, how to generate."""

    output_dir: str
    gsm8k: str | None = None  # a local JSONL path, "openai/gsm8k" (hub), or None to skip
    gsm8k_limit: int = 100
    max_new_tokens: int = 256
    predict_batch_size: int = 16
    threads: int | None = None
    demo: bool = False
    device: str | None = None  # where evaluation runs (None: the best available)
    durations: dict = field(default_factory=dict)


def _distributed() -> tuple[int, int]:
    """(rank, world size) under `accelerate launch` / `torchrun`; (0, 1) otherwise."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def run(cfg: TrainConfig, rs: RunSettings, *, quiet: bool = False) -> dict | None:
    """Run every stage (skipping those already done in ``rs.output_dir``) and return metrics.json's content.

    Under multi-GPU launchers every process trains (the Trainer's DDP); only rank 0 evaluates and reports, on its
    own GPU, while the others wait for it in the process-group set-up (returns None on the other ranks)."""
    from ftbench.backends import get_backend

    rank, world = _distributed()
    if rank != 0:
        if not os.path.exists(os.path.join(cfg.output_dir, "checkpoints.json")):
            get_backend(cfg.backend).train(cfg, resume=os.path.isdir(cfg.output_dir), quiet=True)
        return None
    if world > 1:
        rs.device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    out = rs.output_dir
    os.makedirs(out, exist_ok=True)
    _check_same_run(cfg, rs)
    if rs.threads:
        import torch

        torch.set_num_threads(rs.threads)
    backend = get_backend(cfg.backend)
    backend.check_config(cfg)

    # 1. validate the training data
    t = time.perf_counter()
    validation = _validate(cfg, out)
    rs.durations["validate"] = time.perf_counter() - t
    _say(f"[1/6] data: {validation['records']} records, {len(validation['warnings'])} warnings "
         f"(details in {out}/validation.json)", quiet)

    # 2. the eval sets
    from ftbench.backends.sft_data import train_and_eval_samples

    _, eval_samples = train_and_eval_samples(cfg)
    if not eval_samples:
        raise InputError("train-and-compare needs held-out samples: set val_size (e.g. 0.1) or eval_dataset")
    gsm8k_samples = _gsm8k_samples(rs)
    _say(f"[2/6] eval sets: {len(eval_samples)} held-out samples, "
         f"{len(gsm8k_samples)} GSM8K problems" + (f" from {rs.gsm8k}" if rs.gsm8k else " (GSM8K skipped)"), quiet)

    # 3. the base model
    t = time.perf_counter()
    _say("[3/6] evaluating the base model", quiet)
    _predict_all(cfg.model_name_or_path, None, eval_samples, gsm8k_samples, rs, "before", quiet)
    rs.durations["evaluate_before"] = time.perf_counter() - t

    # 4. training
    t = time.perf_counter()
    train = _train(backend, cfg, quiet)
    rs.durations["train"] = time.perf_counter() - t
    _free_accelerator_memory()
    shutil.copyfile(train["trainer_log"], os.path.join(out, "trainer_log.jsonl"))

    # 5. the chosen checkpoint
    checkpoint = choose_checkpoint(train["checkpoints"])
    _say(f"[5/6] evaluating {checkpoint['name']}: {checkpoint['reason']}", quiet)
    t = time.perf_counter()
    _predict_all(cfg.model_name_or_path, checkpoint["path"], eval_samples, gsm8k_samples, rs, "after", quiet)
    rs.durations["evaluate_after"] = time.perf_counter() - t

    # 6. compare, diagnose, report
    metrics = _compare_and_report(cfg, rs, validation, train, checkpoint, bool(gsm8k_samples))
    _say(f"[6/6] report: {os.path.join(out, 'report.html')}", quiet)
    return metrics


# -- stage helpers ---------------------------------------------------------------------------------------
def _check_same_run(cfg: TrainConfig, rs: RunSettings) -> None:
    """A run folder is resumed only by the same run: a different config there would mix two experiments."""
    path = os.path.join(rs.output_dir, "run_config.json")
    from ftbench.predictions import sha256_of_path

    files = _dataset_paths(cfg, cfg.dataset) + _dataset_paths(cfg, cfg.eval_dataset or [])
    if rs.gsm8k and os.path.exists(rs.gsm8k):
        files.append(rs.gsm8k)
    current = {"train": {k: v for k, v in cfg.to_yaml_dict().items() if k != "output_dir"},
               "compare": {k: getattr(rs, k) for k in ("gsm8k", "gsm8k_limit", "max_new_tokens")},
               "data": {os.path.abspath(f): sha256_of_path(f) for f in files}}  # edited data = another run
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            previous = json.load(fh)
        if previous != json.loads(json.dumps(current)):
            changed = sorted(k for side in ("train", "compare", "data") for k in set(current[side]) |
                             set(previous.get(side, {})) if current[side].get(k) != previous.get(side, {}).get(k))
            raise UsageError(f"{rs.output_dir} holds a run with a different config ({', '.join(changed[:5])} "
                             "differ): give a new --output-dir to start another run")
    else:
        atomic_write_text(path, json.dumps(current, ensure_ascii=False, indent=2, default=str) + "\n")


def _validate(cfg: TrainConfig, out: str) -> dict:
    from ftbench.data.loader import DatasetSpec
    from ftbench.quality.checks import QualityOptions
    from ftbench.validate import validate

    specs = [DatasetSpec(p) for p in _dataset_paths(cfg, cfg.dataset)]
    against = [DatasetSpec(p) for p in _dataset_paths(cfg, cfg.eval_dataset or [])]
    report = validate(specs, QualityOptions(cutoff_len=cfg.cutoff_len), against=against)
    summary = report.to_json()
    atomic_write_text(os.path.join(out, "validation.json"), json.dumps(summary, ensure_ascii=False, indent=1) + "\n")
    if not report.ok:
        first = report.errors[0].one_line()
        raise InputError(f"the training data has {len(report.errors)} error(s); first: {first} "
                         f"(all of them: ftbench validate {' '.join(s.path for s in specs)})")
    return summary


def _dataset_paths(cfg: TrainConfig, names: list[str]) -> list[str]:
    """Data file paths of dataset entries (names in dataset_info.json resolve to their files)."""
    from ftbench.api.findings import Finding
    from ftbench.config import resolve_path
    from ftbench.data.loader import parse_dataset_info

    paths = []
    info = os.path.join(resolve_path(cfg, cfg.dataset_dir), "dataset_info.json")
    for name in names:
        path = resolve_path(cfg, name)
        if os.path.exists(path):
            paths.append(path)
        elif os.path.isfile(info):
            findings: list[Finding] = []
            paths += [s.path for s in parse_dataset_info(info, [name], findings)]
    return paths


def _gsm8k_samples(rs: RunSettings) -> list:
    from ftbench.data.loader import load_samples

    if not rs.gsm8k:
        return []
    if os.path.exists(rs.gsm8k):
        return load_samples(rs.gsm8k)[: rs.gsm8k_limit]
    if rs.gsm8k != "openai/gsm8k":
        raise UsageError(f"gsm8k: {rs.gsm8k}: no such file (give a GSM8K JSONL path, openai/gsm8k, or none)")
    try:  # users have the hub; this machine may not
        from datasets import load_dataset

        rows = load_dataset("openai/gsm8k", "main", split="test")
    except Exception as e:
        raise UsageError(f"cannot load openai/gsm8k from the hub ({str(e).splitlines()[0][:120]}); pass --gsm8k "
                         "PATH to a local GSM8K test.jsonl, or --gsm8k none") from None
    from ftbench.data.formats import ASSISTANT, USER, Sample

    return [Sample([(USER, r["question"]), (ASSISTANT, r["answer"])], "", "", "openai/gsm8k", i, None)
            for i, r in enumerate(rows.select(range(min(rs.gsm8k_limit, len(rows)))))]


def _predict_all(model: str, adapter: str | None, eval_samples: list, gsm8k_samples: list, rs: RunSettings,
                 side: str, quiet: bool) -> None:
    """Greedy predictions for the held-out split and the GSM8K problems, resumable row by row."""
    from ftbench.generate import GenerationParams
    from ftbench.models import load_model_for_generation, load_tokenizer
    from ftbench.predictions import generate_rows, read_existing

    jobs = [(eval_samples, os.path.join(rs.output_dir, f"predictions_{side}.jsonl"))]
    if gsm8k_samples:
        jobs.append((gsm8k_samples, os.path.join(rs.output_dir, f"gsm8k_predictions_{side}.jsonl")))
    todo = [(samples, path, read_existing(path).count if os.path.exists(path) else 0) for samples, path in jobs]
    todo = [job for job in todo if job[2] < len(job[0])]
    if not todo:
        return
    loaded = (load_model_for_generation(model, adapter=adapter, device=rs.device), load_tokenizer(model))
    params = GenerationParams(max_new_tokens=rs.max_new_tokens)
    for samples, path, done in todo:
        generate_rows(samples, path, done, model=model, adapter=adapter, params=params,
                      batch_size=rs.predict_batch_size, quiet=quiet, loaded=loaded)


def _train(backend, cfg: TrainConfig, quiet: bool) -> dict:
    """Train (or resume, or reuse a finished training) and return checkpoints.json's content."""
    done = os.path.join(cfg.output_dir, "checkpoints.json")
    if os.path.exists(done):
        _say(f"[4/6] training: already done in {cfg.output_dir}", quiet)
    else:
        _say(f"[4/6] training with backend {backend.name} into {cfg.output_dir}", quiet)
        backend.train(cfg, resume=os.path.isdir(cfg.output_dir), quiet=quiet)
    with open(done, encoding="utf-8") as fh:
        table = json.load(fh)
    table["trainer_log"] = os.path.join(cfg.output_dir, "trainer_log.jsonl")
    return table


def _free_accelerator_memory() -> None:
    """Give the training's GPU memory back before the fine-tuned model is loaded for evaluation."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def choose_checkpoint(checkpoints: list[dict]) -> dict:
    """The checkpoint with the lowest eval loss (ties: the earliest), and why it was chosen."""
    evaluated = [c for c in checkpoints if c.get("eval_loss") is not None]
    if not evaluated:
        last = checkpoints[-1]
        return {**last, "name": _name(last), "reason": "no eval loss was recorded: the final adapter is used"}
    best = min(evaluated, key=lambda c: (c["eval_loss"], c["step"]))
    final = checkpoints[-1]
    reason = f"lowest eval loss {best['eval_loss']:.4f} of {len(evaluated)} evaluations"
    if final["step"] != best["step"] and final.get("eval_loss") is not None:
        reason += f" (the final adapter at step {final['step']} had {final['eval_loss']:.4f})"
    return {**best, "name": _name(best), "reason": reason}


def _name(checkpoint: dict) -> str:
    base = os.path.basename(checkpoint["path"].rstrip("/"))
    return base if base.startswith("checkpoint-") else f"final adapter (step {checkpoint['step']})"


def _compare_and_report(cfg: TrainConfig, rs: RunSettings, validation: dict, train: dict, checkpoint: dict,
                        with_gsm8k: bool) -> dict:
    from ftbench.compare import compare_task, read_prediction_rows as _read_rows
    from ftbench.data.reader import read_records
    from ftbench.report.run_report import render_run_report
    from ftbench.report.training import diagnose

    out = rs.output_dir
    tasks = {"similarity": compare_task("similarity", _read_rows(os.path.join(out, "predictions_before.jsonl")),
                                        _read_rows(os.path.join(out, "predictions_after.jsonl")))}
    if with_gsm8k:
        tasks["gsm8k"] = compare_task("gsm8k", _read_rows(os.path.join(out, "gsm8k_predictions_before.jsonl")),
                                      _read_rows(os.path.join(out, "gsm8k_predictions_after.jsonl")))
    log_rows = [r.value for r in read_records(os.path.join(out, "trainer_log.jsonl"), [])]
    diagnosis = diagnose(log_rows)
    metrics = {
        "before": {f: e["before"] for t in tasks.values() for f, e in t.figures.items()},
        "after": {f: e["after"] for t in tasks.values() for f, e in t.figures.items()},
        "checkpoint": {k: checkpoint[k] for k in ("name", "path", "step", "eval_loss", "reason")},
        "comparison": {f: e for t in tasks.values() for f, e in t.figures.items()},
        "signatures": {f: s for t in tasks.values() for f, s in t.signatures.items()},
        "n": {name: t.n for name, t in tasks.items()},
        "gsm8k": {side: tasks["gsm8k"].to_json()[side].get("disagreement") for side in ("before", "after")}
        if with_gsm8k else None,
        "training": {"diagnosis": diagnosis.to_json(), "checkpoints": train["checkpoints"]},
        "validation": {"records": validation["records"], "ok": validation["ok"],
                       "warnings": len(validation["warnings"]), "stats": validation["stats"]},
        "run": run_info(cfg, rs, checkpoint),
    }
    if not with_gsm8k:
        for side in ("before", "after"):
            metrics[side].update({"strict-match": None, "flexible-extract": None})
    atomic_write_text(os.path.join(out, "metrics.json"), json.dumps(metrics, ensure_ascii=False, indent=1,
                                                                    default=str) + "\n")
    page = render_run_report(metrics, tasks, log_rows, validation)
    atomic_write_text(os.path.join(out, "report.html"), page)
    return metrics


def run_info(cfg: TrainConfig, rs: RunSettings, checkpoint: dict) -> dict:
    """What ran, where, with which versions: so a report can be trusted and reproduced."""
    from ftbench import __version__
    from ftbench.metrics.environment import package_version

    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"model": cfg.model_name_or_path, "adapter": checkpoint["path"], "backend": cfg.backend,
            "demo": rs.demo, "output_dir": rs.output_dir, "config": cfg.to_yaml_dict(),
            "compare": {k: v for k, v in asdict(rs).items() if k not in ("durations", "output_dir", "device")},
            "versions": {"ftbench": __version__, "python": platform.python_version(),
                         **{p: package_version(p) for p in ("torch", "transformers", "peft", "lm-eval", "jieba",
                                                            "nltk")}},
            "hardware": {"platform": platform.platform(), "cpus": os.cpu_count(), "gpu": gpu,
                         "threads": torch.get_num_threads()},
            "durations": {k: round(v, 1) for k, v in rs.durations.items()}}

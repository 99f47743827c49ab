"""`ftbench train-and-compare`: the main command. With no arguments it runs the embedded offline demo."""

from __future__ import annotations

import os
import time

import click

from ftbench.cli import common_options, settings

# keys train-and-compare reads on top of LLaMA-Factory's training keys (in the YAML or as key=value)
COMPARE_KEYS = {"gsm8k": str, "gsm8k_limit": int, "max_new_tokens": int, "predict_batch_size": int, "threads": int}
# what a user's training config gets unless it says otherwise: an eval split and checkpoints evaluated on it
TRAINING_DEFAULTS = {"val_size": 0.1, "eval_strategy": "steps", "eval_steps": 100, "save_steps": 100,
                     "logging_steps": 10}


def _run_id(model: str) -> str:
    short = "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in os.path.basename(model.rstrip("/")))[:40]
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{short or 'model'}"


def prepare(config, overrides, output_dir, model, backend, gsm8k, gsm8k_limit, max_new_tokens, threads):
    """Resolve the training config and the compare settings; build the demo data if this is the demo run."""
    from ftbench.api.errors import UsageError
    from ftbench.config import ConfigSource, apply_overrides, read_yaml, resolve
    from ftbench.recipes.train_and_compare import RunSettings

    src = read_yaml(config) if config else ConfigSource(None)
    apply_overrides(src, list(overrides) + ([f"model_name_or_path={model}"] if model else [])
                    + ([f"backend={backend}"] if backend else []))
    compare = {}
    for key, kind in COMPARE_KEYS.items():
        if key in src.values:
            src.lines.pop(key, None)
            value = src.values.pop(key)
            try:
                compare[key] = None if value is None else kind(value)
            except (TypeError, ValueError):
                raise UsageError(f"{key}: expected {kind.__name__}, got {value!r}") from None
    for key, value in (("gsm8k", gsm8k), ("gsm8k_limit", gsm8k_limit), ("max_new_tokens", max_new_tokens),
                       ("threads", threads)):
        if value is not None:
            compare[key] = value
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not output_dir:
        raise UsageError("under accelerate launch / torchrun give --output-dir: every process must use the same "
                         "run folder (the default name has a timestamp)")
    demo = "dataset" not in src.values
    model_name = str(src.values.get("model_name_or_path") or "tiny")
    out = os.path.abspath(output_dir or os.path.join("reports", _run_id("demo" if demo else model_name)))
    if demo:
        from ftbench.demo import DEMO_COMPARE, DEMO_TRAINING, build_demo_data

        paths = build_demo_data(os.path.join(out, "data"))
        defaults = {**DEMO_TRAINING, "dataset": [paths["train"]], "eval_dataset": [paths["eval"]]}
        compare = {**DEMO_COMPARE, "gsm8k": paths["gsm8k"], "threads": 1, **compare}
    else:
        defaults = dict(TRAINING_DEFAULTS)
        if "eval_dataset" in src.values:
            defaults.pop("val_size")
        compare.setdefault("gsm8k", "openai/gsm8k")
    for key, value in defaults.items():
        src.values.setdefault(key, value)
    src.values["output_dir"] = os.path.join(out, "train")
    if "eval_steps" not in src.lines and "save_steps" in src.lines:
        src.values["eval_steps"] = src.values["save_steps"]  # evaluate every checkpoint, to choose among them
    cfg = resolve(src)
    if str(compare.get("gsm8k", "")).lower() in ("none", "null", "", "false"):
        compare["gsm8k"] = None
    rs = RunSettings(output_dir=out, demo=demo, **compare)
    return cfg, rs, src.warnings


@click.command(short_help="Validate, evaluate the base model, train LoRA, evaluate again, write the report.")
@click.option("--config", type=click.Path(dir_okay=False), help="A LLaMA-Factory-style training YAML (plus the "
              "compare keys gsm8k, gsm8k_limit, max_new_tokens, predict_batch_size, threads).")
@click.argument("overrides", nargs=-1)
@click.option("--output-dir", type=click.Path(file_okay=False), help="The run folder (default reports/<run-id>). "
              "Rerun with the same folder to resume an interrupted run.")
@click.option("--model", help="Shortcut for model_name_or_path (e.g. Qwen/Qwen2.5-0.5B-Instruct).")
@click.option("--backend", help="Training backend (see `ftbench backends`; default peft).")
@click.option("--gsm8k", help="GSM8K test set: a local JSONL (question/answer), openai/gsm8k (hub), or none.")
@click.option("--gsm8k-limit", type=click.IntRange(1), help="GSM8K problems to evaluate (default 100).")
@click.option("--max-new-tokens", type=click.IntRange(1), help="Generation length for every evaluation.")
@click.option("--threads", type=click.IntRange(1), help="CPU threads for torch.")
@common_options
@click.pass_context
def train_and_compare(ctx, config, overrides, output_dir, model, backend, gsm8k, gsm8k_limit, max_new_tokens,
                      threads):
    """Answer "did the fine-tune help?" in one command: validate the data, evaluate the base model on a held-out
    split (LLaMA-Factory BLEU/ROUGE) and on GSM8K (lm-eval strict/flexible), train a LoRA adapter, pick the
    checkpoint with the lowest eval loss, evaluate it the same way, and write report.html and metrics.json.

    OVERRIDES are key=value pairs over the config (LLaMA-Factory keys, e.g. num_train_epochs=3).
    With no arguments: the offline demo (tiny model, bundled identity + arithmetic data), a few minutes on a CPU.
    """
    from ftbench.recipes.train_and_compare import run

    opts = settings(ctx)
    cfg, rs, warnings = prepare(config, overrides, output_dir, model, backend, gsm8k, gsm8k_limit, max_new_tokens,
                                threads)
    if not opts.quiet:
        for w in warnings:
            click.echo(f"warning: {w}", err=True)
        click.echo(f"run folder: {rs.output_dir} (an interrupted run resumes with --output-dir {rs.output_dir})",
                   err=True)
    metrics = run(cfg, rs, quiet=opts.quiet or opts.json)
    if metrics is None:  # a non-zero rank of a multi-GPU launch: rank 0 reports
        return 0
    if opts.json:
        import json

        click.echo(json.dumps({k: metrics[k] for k in ("before", "after", "checkpoint")} |
                              {"report": os.path.join(rs.output_dir, "report.html")}, ensure_ascii=False))
    elif not opts.quiet:
        click.echo(summary_text(metrics, rs.output_dir))
    return 0


def summary_text(metrics: dict, out: str) -> str:
    lines = ["", f"{'metric':<18}{'before':>10}{'after':>10}{'delta':>10}   95% CI of delta"]
    for fig, e in metrics["comparison"].items():
        ci = e.get("delta_ci95")
        lines.append(f"{fig:<18}{e['before']:>10.4f}{e['after']:>10.4f}{e['delta']:>+10.4f}   "
                     + (f"[{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "–"))
    diag = metrics["training"]["diagnosis"]
    lines += ["", f"checkpoint: {metrics['checkpoint']['name']} ({metrics['checkpoint']['reason']})",
              f"training: {diag['message']}", f"report: {os.path.join(out, 'report.html')}"]
    return "\n".join(lines)

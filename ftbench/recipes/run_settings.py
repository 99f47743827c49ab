"""What a train-and-compare run is, resolved before any work starts: the LLaMA-Factory training config (the user's
YAML, key=value overrides and command-line options) and the settings train-and-compare adds on top of it (which
evaluations, how to generate, where the run folder is). With no dataset anywhere, the embedded demo's data and
settings are used.
"""

from __future__ import annotations

import os
import time
import typing
from dataclasses import dataclass, field
from typing import Annotated, Literal, Optional, Union

import msgspec

from ftbench.api.backends import TrainConfig
from ftbench.api.errors import InputError, UsageError
from ftbench.api.generation import DEFAULT_ENGINE, EngineOptions
from ftbench.console import world_size
from ftbench.data.schema import PositiveInt, SchemaError, Seeds, Threads, Tokens, check
from ftbench.evaluation.judge import JudgeSettings
from ftbench.recipes.run_folder import RunFolder, slug


class JudgeKeys(msgspec.Struct, forbid_unknown_fields=True):
    """`judge:` in a run's YAML: the judge model of the `judge` and `retention-judge` scorers, and how to ask it
    (the fields of `evaluation.judge.JudgeSettings`; the API key itself only ever from ``api_key_env``)."""

    model: Optional[str] = None  # required, from here or --judge-model
    url: Optional[str] = None  # an OpenAI-compatible server; none: the model runs here
    api_key_env: str = JudgeSettings.api_key_env  # the defaults are JudgeSettings' (`ftbench judge`'s)
    concurrency: Annotated[int, msgspec.Meta(gt=0, le=256)] = JudgeSettings.concurrency
    request_timeout: Annotated[float, msgspec.Meta(ge=1.0, le=86_400.0)] = JudgeSettings.request_timeout
    max_new_tokens: Tokens = JudgeSettings.max_new_tokens
    retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = JudgeSettings.retries
    templates: Optional[str] = None  # a folder of judge prompts replacing the shipped ones


class CompareKeys(msgspec.Struct, forbid_unknown_fields=True):
    """The keys train-and-compare reads on top of LLaMA-Factory's training keys (in the YAML, as key=value, or
    as options): one schema, so `threads: -2` in a YAML is refused as `--threads -2` is."""

    gsm8k: Optional[str] = None
    gsm8k_limit: Optional[PositiveInt] = None  # no upper bound: past the test set's size, the whole set
    max_new_tokens: Optional[Tokens] = None
    gsm8k_max_new_tokens: Optional[Tokens] = None
    predict_batch_size: Optional[PositiveInt] = None  # no upper bound: past the prompts' count, one batch
    threads: Optional[Threads] = None
    select_by: Optional[str] = None  # eval_loss or a judged figure of a scorer (checked in `prepare_run`)
    # trainings that differ only in `seed` (recipes/seeds.py); auto: 2, and a third where the verdict is on the edge
    seeds: Optional[Union[Seeds, Literal["auto"]]] = None
    retention: Optional[str] = None  # general prompts for the retention scorer: a dataset file, or none
    retention_max_new_tokens: Optional[Tokens] = None
    benchmark: Optional[Union[str, list[str]]] = None  # lm-eval tasks or task YAMLs: "a,b", a list, or none
    benchmark_limit: Optional[PositiveInt] = None  # documents per task (lm-eval's limit)
    judge: Optional[JudgeKeys] = None


COMPARE_KEYS = tuple(CompareKeys.__struct_fields__)
_TEXT_KEYS = tuple(k for k, t in typing.get_type_hints(CompareKeys).items() if t == Optional[str])
AUTO_SEEDS = "auto"  # --seeds auto
EVAL_LOSS = "eval_loss"  # select_by's default rule: the checkpoint with the lowest eval loss


def select_by_choices() -> list[str]:
    """What select_by accepts: eval_loss, then every figure a scorer can judge a run by."""
    from ftbench.metrics.registry import judged_figures

    return [EVAL_LOSS, *judged_figures()]


# what a user's training config gets unless it says otherwise: an eval split and checkpoints evaluated on it
TRAINING_DEFAULTS = {
    "val_size": 0.1,
    "eval_strategy": "steps",
    "eval_steps": 100,
    "save_steps": 100,
    "logging_steps": 10,
}


@dataclass
class RunSettings:
    """What train-and-compare adds to a training config: where to write, what to evaluate, how to generate."""

    output_dir: str
    gsm8k: str | None = None  # a local JSONL path, "openai/gsm8k" (hub), or None to skip
    gsm8k_limit: int = 100
    max_new_tokens: int = 256  # every evaluation's generation length ...
    gsm8k_max_new_tokens: int | None = None  # ... but GSM8K's, when set (worked solutions run longer)
    predict_batch_size: int = 16
    threads: int | None = None
    demo: str | None = None  # the embedded run's name ("real", "tiny"), None for the user's own data
    device: str | None = None  # where evaluation runs (None: the best available)
    trained_run: str | None = None  # a finished output_dir to evaluate instead of training
    allow_other_base: bool = False  # evaluate a trained_run whose adapter names another base model
    engine: str = DEFAULT_ENGINE  # where evaluation generates: a generation engine's name (local, openai, vllm)
    engine_options: EngineOptions | None = None  # that engine's options (None: its defaults)
    select_by: str | None = None  # a figure: checkpoints chosen by their generations' score (None: eval loss)
    seeds: int = 1  # trainings that differ only in `seed`, from the config's seed up (recipes/seeds.py)
    retention: str | None = None  # general prompts (metrics/retention.py): a dataset file, None for none
    retention_max_new_tokens: int | None = None  # ... answered up to this many tokens (default max_new_tokens)
    benchmark: list[str] | None = None  # lm-eval task names or task YAML paths (metrics/benchmark.py), None: none
    benchmark_limit: int | None = None  # ... the first N documents of each task (None: all)
    judge: dict | None = None  # the judge (`JudgeKeys` fields) of the judge scorers; None: no judge
    seeds_auto: bool = False  # --seeds auto: a third seed where the verdict is on the edge (`metrics.evidence`)
    durations: dict = field(default_factory=dict)

    @property
    def folder(self) -> RunFolder:
        return RunFolder(self.output_dir)


def default_gsm8k() -> str:
    """GSM8K's test split as bundled with a source checkout (the same 1,319 problems as the hub's, read offline),
    else `openai/gsm8k` from the hub."""
    from ftbench.data.bundled import SOURCE_ROOT

    bundled = SOURCE_ROOT / "datasets" / "gsm8k" / "test.jsonl"
    return str(bundled) if bundled.is_file() else "openai/gsm8k"


def default_retention() -> str | None:
    """The bundled general prompts (datasets/retention/general_prompts.json, with a source checkout), else none."""
    from ftbench.data.bundled import SOURCE_ROOT

    bundled = SOURCE_ROOT / "datasets" / "retention" / "general_prompts.json"
    return str(bundled) if bundled.is_file() else None


def _judge(keys: JudgeKeys | None, model: str | None, url: str | None) -> dict | None:
    """The judge from the YAML's `judge:` with --judge-model / --judge-url over it; --judge-url needs a model."""
    if keys is None and model is None:
        if url:
            raise UsageError("--judge-url needs --judge-model: the judge's name at that server")
        return None
    judge = msgspec.structs.asdict(keys) if keys else {"model": model}
    judge.update({k: v for k, v in (("model", model), ("url", url)) if v})
    if not judge["model"]:
        raise UsageError("judge: names no model: give judge: model: NAME in the YAML, or --judge-model")
    return judge


def trained_run_config(trained_run: str) -> str:
    """The YAML a finished run was trained with, as the backend that made it saved it in the output folder (each
    backend declares that file: `TrainerBackend.config_file`); UsageError asking for --config otherwise."""
    from ftbench.backends import run_config_file

    path = run_config_file(trained_run)
    if path:
        return path
    raise UsageError(
        f"--trained-run {trained_run}: give --config, the YAML the run was trained with (its model and "
        "data); LLaMA-Factory does not save it in the output folder"
    )


def run_id(model: str) -> str:
    """`20261129-201500-Qwen2.5-0.5B-Instruct`: a default run folder name, sortable by time."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{slug(os.path.basename(model.rstrip('/'))) or 'model'}"


def prepare_run(
    config: str | None, overrides=(), *, output_dir: str | None = None, **options
) -> tuple[TrainConfig, RunSettings, list[str]]:
    """The training config, the compare settings and the config's warnings. ``options`` are the command line's
    (model, backend, gsm8k, gsm8k_limit, max_new_tokens, gsm8k_max_new_tokens, threads; None = not given); they
    win over the YAML.
    Builds the demo data into the run folder when no dataset is given."""
    from ftbench.training.config import ConfigSource, apply_overrides, read_config_yaml, resolve

    src = read_config_yaml(config) if config else ConfigSource(None)
    model, backend = options.pop("model", None), options.pop("backend", None)
    apply_overrides(
        src,
        list(overrides)
        + ([f"model_name_or_path={model}"] if model else [])
        + ([f"backend={backend}"] if backend else []),
    )
    compare, lines = {}, {}
    for key in COMPARE_KEYS:
        if key in src.values:
            lines[key] = src.where(key)
            src.lines.pop(key, None)
            value = src.values.pop(key)
            text = key in _TEXT_KEYS and isinstance(value, (int, float)) and not isinstance(value, bool)
            compare[key] = str(value) if text else value  # a YAML number where text is meant
    try:
        checked = check(compare, CompareKeys)
    except SchemaError as e:
        raise InputError(f"{lines.get(e.path, src.path or 'command line')}: {e}") from None
    compare = {k: getattr(checked, k) for k in compare}
    compare["judge"] = _judge(compare.get("judge"), options.pop("judge_model", None), options.pop("judge_url", None))
    select_by = compare.get("select_by")
    if select_by is not None and select_by not in select_by_choices():
        raise InputError(
            f"{lines.get('select_by', src.path or 'command line')}: select_by: {select_by!r} is not "
            f"one of {', '.join(select_by_choices())}"
        )
    if select_by == EVAL_LOSS:
        compare["select_by"] = None
    compare.update({k: v for k, v in options.items() if v is not None})
    if compare.get("seeds") == AUTO_SEEDS:
        compare.update(seeds=2, seeds_auto=True)
    if world_size() > 1 and not output_dir:
        raise UsageError(
            "under accelerate launch / torchrun give --output-dir: every process must use the same "
            "run folder (the default name has a timestamp)"
        )
    demo = None
    if "dataset" not in src.values:
        from ftbench.recipes.demo import demo_for

        demo = demo_for(src.values.get("model_name_or_path"))
    model_name = str(src.values.get("model_name_or_path") or (demo.training["model_name_or_path"] if demo else ""))
    folder = RunFolder(
        os.path.abspath(output_dir or os.path.join("reports", run_id(f"demo-{model_name}" if demo else model_name)))
    )
    if demo:
        paths = demo.build(folder.data_dir, 0)
        defaults = {**demo.training, "dataset": [paths["train"]], "eval_dataset": [paths["eval"]]}
        compare = {**demo.compare, "gsm8k": paths["gsm8k"], **compare}
    else:
        defaults = dict(TRAINING_DEFAULTS)
        if "eval_dataset" in src.values:
            defaults.pop("val_size")
        compare.setdefault("gsm8k", default_gsm8k())
    for key, value in defaults.items():
        src.values.setdefault(key, value)
    src.values["output_dir"] = folder.train_dir
    if "eval_steps" not in src.lines and "save_steps" in src.lines:
        src.values["eval_steps"] = src.values["save_steps"]  # evaluate every checkpoint, to choose among them
    cfg = resolve(src)
    # eval at steps that are not saved (LF's examples: eval_steps 500 with save_steps 500 is fine, 5 with 500 not);
    # steps below 1 are ratios of the whole run, not compared
    steps = (cfg.eval_steps or 0, cfg.save_steps or 0)
    if cfg.eval_strategy == cfg.save_strategy == "steps" and min(steps) >= 1 and steps[1] > steps[0]:
        src.warnings.append(
            f"eval_steps {cfg.eval_steps:g} evaluates steps that save_steps {cfg.save_steps:g} does not save: the "
            f"checkpoint is chosen among the saved ones only (save_steps: {cfg.eval_steps:g} keeps every evaluated one)"
        )
    compare.setdefault("retention", default_retention())
    from ftbench.evaluation.benchmark import split_entries

    compare["benchmark"] = split_entries(compare.get("benchmark"))  # YAML paths made absolute (a sweep's runs)
    for key in ("gsm8k", "retention"):  # none: not evaluated
        if str(compare.get(key, "")).lower() in ("none", "null", "", "false"):
            compare[key] = None
    return cfg, RunSettings(output_dir=folder.root, demo=demo.name if demo else None, **compare), src.warnings

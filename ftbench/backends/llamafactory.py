"""`--backend llamafactory`: train with the user's own LLaMA-Factory, as a subprocess in its own environment.

LLaMA-Factory pins its own transformers/torch/peft, so it is never imported here: ftbench writes the user's YAML
back out with only what the run needs changed (`output_dir`; evaluation at every checkpoint; paths made
absolute; ftbench-only keys dropped), says which keys it set, runs `llamafactory-cli train` on it, streams its
progress, keeps its whole output in `llamafactory.log`, and reads the run back from the files LLaMA-Factory
writes (`trainer_log.jsonl`, `checkpoint-N/`, `trainer_state.json`, `all_results.json`) into a `TrainResult`.

An interrupted run resumes because LLaMA-Factory itself resumes from the last `checkpoint-N` in an output_dir it
is not told to overwrite. Multi-GPU is LLaMA-Factory's own launcher: set `FORCE_TORCHRUN=1` (and `NNODES`,
`NPROC_PER_NODE`, `MASTER_ADDR`, ...) in the environment; they reach `llamafactory-cli` unchanged.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from ftbench.api.backends import TrainConfig, TrainerBackend, TrainResult
from ftbench.api.errors import InputError, UsageError
from ftbench.console import say
from ftbench.net.text import strip_escapes

CLI_ENV = "FTBENCH_LLAMAFACTORY_CLI"
RUN_YAML = "ftbench_llamafactory.yaml"
RUN_LOG = "llamafactory.log"
FTBENCH_ONLY_KEYS = ("backend", "padding_free")  # ftbench's own keys: LLaMA-Factory refuses keys it does not know
# LLaMA-Factory's console lines worth showing while it trains (everything is in the log)
_PROGRESS = re.compile(r"^\{'(loss|eval_loss|train_runtime)'|^\s+(train|eval)_\w+\s+=|Resuming training from")
_ERROR_LINE = re.compile(r"^([A-Za-z_.]*(Error|Exception|Interrupt)): (.+)$")
_PARAMS = re.compile(r"trainable params: (?P<trainable>[\d,]+) \|\| all params: (?P<all>[\d,]+)")


def find_cli() -> str:
    """The `llamafactory-cli` to run: ``$FTBENCH_LLAMAFACTORY_CLI``, else the one on PATH."""
    named = os.environ.get(CLI_ENV)
    if named:
        if not (os.path.isfile(named) and os.access(named, os.X_OK)):
            raise UsageError(
                f"{CLI_ENV}={named}: not an executable file; point it at the llamafactory-cli of "
                "the environment LLaMA-Factory is installed in"
            )
        return named
    found = shutil.which("llamafactory-cli")
    if not found:
        raise UsageError(
            "--backend llamafactory: llamafactory-cli is not on PATH; install LLaMA-Factory in its own "
            "environment (python -m venv lf && lf/bin/pip install llamafactory) and set "
            f"{CLI_ENV}=lf/bin/llamafactory-cli"
        )
    return found


class LlamaFactoryBackend(TrainerBackend):
    """Runs your own `llamafactory-cli train` (its own environment) and reads its output folder."""

    name = "llamafactory"
    description = "your own LLaMA-Factory (llamafactory-cli train in its environment), its output read back"
    config_file = RUN_YAML
    writes = {
        RUN_YAML: "the YAML llamafactory-cli ran",
        RUN_LOG: "LLaMA-Factory's whole output",
        "ftbench_datasets/": "data files given by path, as datasets LLaMA-Factory can name",
    }
    eval_loss_note = (
        "Eval losses are LLaMA-Factory's, as it logged them: its evaluation weighs a short last eval "
        "batch as much as a full one (ftbench's own backend reports the mean over samples); the two "
        "agree when the eval set divides into full batches."
    )
    reads_unmarked_runs = True  # a Trainer output folder with no ftbench record: LLaMA-Factory's, the usual maker

    def check_config(self, config: TrainConfig) -> None:
        find_cli()
        if config.stage != "sft":
            raise config.error("stage", f"{config.stage}: ftbench evaluates SFT runs; use stage: sft")
        if config.finetuning_type != "lora":
            raise config.error(
                "finetuning_type",
                f"{config.finetuning_type}: ftbench evaluates LoRA adapters; use finetuning_type: lora",
            )

    def train(self, config: TrainConfig, *, resume: bool = False, quiet: bool = False) -> TrainResult:
        from ftbench.processes.group import refuse_if_running
        from ftbench.training.checkpoints import read_trained_run

        cli = find_cli()
        refuse_if_running(config.output_dir)  # before anything in it changes
        os.makedirs(config.output_dir, exist_ok=True)
        yaml_path, changed = write_run_yaml(config)
        say(f"llamafactory: {cli} train {yaml_path}", quiet)
        say("llamafactory: keys set by ftbench: " + ", ".join(f"{k}={v}" for k, v in changed.items()), quiet)
        log_path = os.path.join(config.output_dir, RUN_LOG)
        reported = run_llamafactory(cli, yaml_path, log_path, cwd=config.config_dir or os.getcwd(), quiet=quiet)
        result = read_trained_run(config.output_dir, config_path=yaml_path)
        for key, value in reported.items():
            setattr(result, key, value)
        return result


def _has_checkpoints(output_dir: str) -> bool:
    from ftbench.training.checkpoints import complete_checkpoints

    return bool(complete_checkpoints(output_dir))


def run_yaml(config: TrainConfig) -> tuple[dict, dict]:
    """The YAML LLaMA-Factory runs: the user's own keys as written (command-line overrides applied), plus the
    keys this run needs: where to write, evaluation at every checkpoint, absolute paths, and the settings
    ftbench's run chose that the YAML does not hold (train-and-compare's defaults, the embedded demo's).
    Returns (yaml dict, the keys ftbench set or overrode with their values)."""
    from ftbench.inference.models import resolve_model
    from ftbench.training.config import read_config_yaml, resolve_path
    from ftbench.training.config_keys import ALIASES

    raw = read_config_yaml(config.source).values if config.source else {}
    resolved, untouched = config.to_yaml_dict(), TrainConfig().to_yaml_dict()
    # the user's keys as written (not the compare keys train-and-compare takes out of the same file)
    data = {k: v for k, v in raw.items() if config.lines.get(ALIASES.get(k, k)) is not None}
    overrides = {}  # key=value overrides: the command line's, train-and-compare's defaults
    for key, line in config.lines.items():
        if line is None and key in resolved:
            data[key] = resolved[key]
            if raw.get(key) != resolved[key] and key not in FTBENCH_ONLY_KEYS:
                overrides[key] = resolved[key]
    changed = {
        k: v
        for k, v in resolved.items()  # what this run set that the YAML does not hold
        if k not in config.lines and v is not None and v != untouched.get(k)
    }
    for key in FTBENCH_ONLY_KEYS:
        data.pop(key, None)
        changed.pop(key, None)
    changed["output_dir"] = os.path.abspath(config.output_dir)
    model = resolve_model(resolve_path(config, config.model_name_or_path))
    if os.path.isdir(model):
        changed["model_name_or_path"] = os.path.abspath(model)
    dataset_dir = resolve_path(config, config.dataset_dir)
    if os.path.isdir(dataset_dir):
        changed["dataset_dir"] = os.path.abspath(dataset_dir)
    if any(os.path.exists(resolve_path(config, n)) for n in config.dataset + (config.eval_dataset or [])):
        changed.update(_files_as_datasets(config))
    if config.val_size or config.eval_dataset:  # every checkpoint evaluated, so the best one can be chosen
        if config.eval_strategy != "steps" or config.eval_steps != config.save_steps:
            changed.update(eval_strategy="steps", eval_steps=config.save_steps)
        if config.save_strategy != "steps":
            changed["save_strategy"] = "steps"
    if (resolved.get("bf16") or resolved.get("fp16")) and not _has_cuda():
        # LF's example YAMLs set bf16: true; without a CUDA GPU transformers refuses it ("Your setup doesn't
        # support bf16/gpu"), where ftbench's own backend trains in float32 with a warning: the same here
        changed.update(bf16=False, fp16=False)
    if resolved.get("overwrite_output_dir") and _has_checkpoints(config.output_dir):
        # kept from LF's example YAMLs, it would wipe the interrupted run that a rerun is meant to resume
        changed["overwrite_output_dir"] = False
    changed = {k: v for k, v in changed.items() if data.get(k) != v}
    data.update(changed)
    return data, {**overrides, **changed}


def _has_cuda() -> bool:
    """Whether LLaMA-Factory will find a CUDA GPU here (the same machine: this process's torch says)."""
    import torch

    return torch.cuda.is_available()


_SHAREGPT_ROLE = {"user": "human", "assistant": "gpt", "observation": "observation", "function_call": "function_call"}


def _files_as_datasets(config: TrainConfig) -> dict:
    """LLaMA-Factory reads datasets only by their dataset_info.json name, while ftbench also takes file paths:
    write the samples of every named file (as ftbench read them) as sharegpt files with a dataset_info.json of
    their own, next to the output folder, and name them. Names declared in the config's dataset_dir are copied."""
    import json

    from ftbench.data.dataset_info import DATASET_INFO
    from ftbench.data.loader import load_samples
    from ftbench.io import write_json
    from ftbench.training.config import resolve_path

    folder = os.path.join(config.output_dir, "ftbench_datasets")
    os.makedirs(folder, exist_ok=True)
    info_path = os.path.join(resolve_path(config, config.dataset_dir), DATASET_INFO)
    info = {}
    if os.path.isfile(info_path):
        with open(info_path, encoding="utf-8") as fh:
            info = {
                name: dict(
                    entry, file_name=os.path.join(os.path.dirname(os.path.abspath(info_path)), entry["file_name"])
                )
                if isinstance(entry, dict) and "file_name" in entry
                else entry
                for name, entry in json.load(fh).items()
            }
    names = {}
    for key in ("dataset", "eval_dataset"):
        listed = []
        for name in getattr(config, key) or []:
            path = resolve_path(config, name)
            if name in info or not os.path.exists(path):
                listed.append(name)
                continue
            stem = f"ftbench_{key}_{len(listed)}_{os.path.splitext(os.path.basename(path))[0]}"
            rows = [
                {
                    "conversations": [{"from": _SHAREGPT_ROLE[role], "value": text} for role, text in s.turns],
                    "system": s.system,
                    "tools": s.tools,
                }
                for s in load_samples(path)
            ]
            write_json(os.path.join(folder, stem + ".json"), rows)
            info[stem] = {
                "file_name": stem + ".json",
                "formatting": "sharegpt",
                "columns": {"messages": "conversations", "system": "system", "tools": "tools"},
            }
            listed.append(stem)
        if listed:
            names[key] = ",".join(listed)
    write_json(os.path.join(folder, DATASET_INFO), info)
    return {"dataset_dir": os.path.abspath(folder), **names}


def write_run_yaml(config: TrainConfig) -> tuple[str, dict]:
    """`ftbench_llamafactory.yaml` in the output folder (values that YAML 1.1 would misread, like "no", are
    quoted by the dumper); returns its path and the keys ftbench set."""
    import yaml

    from ftbench.io import atomic_write_text

    data, changed = run_yaml(config)
    path = os.path.join(config.output_dir, RUN_YAML)
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path, changed


def run_llamafactory(cli: str, yaml_path: str, log_path: str, *, cwd: str, quiet: bool) -> dict:
    """Run `llamafactory-cli train YAML`, appending its whole output to ``log_path`` and echoing progress lines;
    returns what it reported of the run: train_samples, eval_samples, trainable_params, all_params (None where
    it printed nothing). A failure is an InputError quoting LLaMA-Factory's own
    error line and naming the log; an interrupt stops it (its checkpoints stay, so the run resumes)."""
    from ftbench.processes.group import OwnedProcess, signals_raised

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    counts: list[int] = []
    params: dict = {}
    last_error = None
    # its own process group (torchrun's workers included), signals forwarded, stopped when this block is left;
    # the owner file in output_dir makes a rerun refuse while an orphaned trainer still runs there
    with (
        open(log_path, "a", encoding="utf-8") as log,
        signals_raised(),
        OwnedProcess(
            [cli, "train", yaml_path],
            owner_dir=os.path.dirname(log_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            text=True,
            errors="replace",
            bufsize=1,
        ) as owned,
    ):
        process = owned.process
        for raw in process.stdout:
            log.write(raw)
            for line in raw.rstrip("\n").split("\r"):
                found = re.search(r"Num examples = ([\d,]+)", line)
                if found:
                    counts.append(int(found.group(1).replace(",", "")))
                found = _PARAMS.search(line)  # peft's print_trainable_parameters, as LF logs it
                if found:
                    params = {k: int(v.replace(",", "")) for k, v in found.groupdict().items()}
                error = _ERROR_LINE.match(line.strip())
                if error:
                    last_error = line.strip()
                line = strip_escapes(line)  # LF prefixes its eval lines with a cursor-up (ESC[A)
                if not quiet and _PROGRESS.search(line):
                    say(f"llamafactory: {line.strip()}")
        code = process.wait()
    if code != 0:
        what = last_error or f"llamafactory-cli exited with code {code}"
        raise InputError(f"LLaMA-Factory failed: {what} (full log: {log_path})")
    return {
        "train_samples": counts[0] if counts else 0,
        "eval_samples": counts[1] if len(counts) > 1 else 0,
        "trainable_params": params.get("trainable"),
        "all_params": params.get("all"),
    }

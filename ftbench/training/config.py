"""Training configs in LLaMA-Factory's YAML key names: load, override with key=value, check, type.

Every key a LLaMA-Factory YAML may hold falls in one of five groups:

- typed: a field of `TrainConfig` (model_name_or_path, lora_rank, cutoff_len, ...), declared with its type, range
  and choices in `config_keys.TrainKeys` and checked against that schema here;
- passed through: a transformers ``TrainingArguments`` key handed over unchanged (adam_beta2, ddp_timeout, ...);
- accepted: known, but without effect here (overwrite_cache, preprocessing_num_workers, generation keys, ...);
- unsupported: known, and an error when set to anything but its "off" value (quantization_bit, packing, ...);
- unknown: a warning, with the closest known key ("did you mean lora_rank?").

Errors name the file and the key's line (`train.yaml:7: lora_rank: expected an integer, got 'eight'`,
`train.yaml:7: lora_dropout: must be in [0, 1), got 1.5`); a YAML
syntax error names file:line:column. Which settings a backend cannot honour is the backend's call
(`TrainerBackend.check_config`); `check_unsupported` is the shared part of that check.
"""

from __future__ import annotations

import difflib
import math
import os
import typing
from typing import Any

from ftbench.api.backends import TrainConfig
from ftbench.api.errors import InputError, UsageError
from ftbench.data.schema import SchemaError, check, unwrap
from ftbench.data.yamlfile import compose_yaml, yaml_error
from ftbench.training.config_keys import ACCEPTED, ALIASES, KNOWN, PASSTHROUGH, STEPS, TYPED, UNSUPPORTED


class ConfigSource:
    """The raw key/value pairs of a YAML config and the line of each key (None: from the command line)."""

    def __init__(self, path: str | None):
        self.path = path
        self.values: dict[str, Any] = {}
        self.lines: dict[str, int | None] = {}
        self.warnings: list[str] = []

    def where(self, key: str) -> str:
        if key in self.lines and self.lines[key] is None:
            return "command line"
        line = self.lines.get(key)
        return f"{self.path or '<config>'}{':' + str(line) if line else ''}"


def read_config_yaml(path: str) -> ConfigSource:
    """The top-level mapping of a YAML file with each key's line; syntax errors as file:line:column."""
    import yaml

    src = ConfigSource(path)
    node = compose_yaml(path, what="training config (YAML)")
    if node is None:
        raise InputError(f"{path}: the config is empty")
    if not isinstance(node, yaml.MappingNode):
        raise InputError(
            f"{path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}: the config must be a "
            "mapping of `key: value` lines"
        )
    loader = yaml.SafeLoader("")
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        try:
            key = loader.construct_object(key_node, deep=True)
            value = loader.construct_object(value_node, deep=True)
        except yaml.YAMLError as e:
            raise InputError(yaml_error(path, e)) from None
        if not isinstance(key, str):
            raise InputError(f"{path}:{line}: keys must be names, got {key!r}")
        if key in src.values:
            src.warnings.append(
                f"{path}:{line}: {key}: given twice; the later value ({value!r}) wins "
                f"(the first is on line {src.lines[key]})"
            )
        src.values[key] = value
        src.lines[key] = line
    return src


def apply_overrides(src: ConfigSource, overrides: list[str] | tuple[str, ...]) -> None:
    """Apply `key=value` pairs (values read as YAML: `lora_rank=16` is an int, `max_samples=null` is None)."""
    import yaml

    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"override {item!r}: expected key=value")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        src.values[key] = value
        src.lines[key] = None


def load_train_config(path: str | None, overrides=(), *, base: dict | None = None) -> tuple[TrainConfig, list[str]]:
    """Read, override, check and type a training config. Returns the config and the warnings (each one line,
    located); raises InputError (exit 1) at the first wrong value, with file:line and key."""
    src = read_config_yaml(path) if path else ConfigSource(None)
    if base:
        for k, v in base.items():
            src.values.setdefault(k, v)
    apply_overrides(src, list(overrides))
    return resolve(src), src.warnings


def resolve(src: ConfigSource) -> TrainConfig:
    """Sort the keys into the five groups and build a TrainConfig; every problem is located."""
    cfg = TrainConfig(source=src.path, config_dir=os.path.dirname(os.path.abspath(src.path)) if src.path else None)
    errors: list[str] = []
    for raw_key, value in src.values.items():
        key = ALIASES.get(raw_key, raw_key)
        if key != raw_key:
            src.warnings.append(f"{src.where(raw_key)}: {raw_key}: the old name of {key}; read as {key}")
            if key in src.values:
                continue
        cfg.lines[key] = src.lines.get(raw_key)
        if key in TYPED:
            try:
                setattr(cfg, key, convert(key, value, name=raw_key))
            except SchemaError as e:
                errors.append(f"{src.where(raw_key)}: {e}")
        elif key in PASSTHROUGH:
            if isinstance(value, float) and not math.isfinite(value):  # refused now, not after a base evaluation
                errors.append(f"{src.where(raw_key)}: {raw_key}: expected a finite number, got {value!r}")
            cfg.training_args[key] = value
        elif key in ACCEPTED or key in UNSUPPORTED:
            cfg.extra[key] = value
        else:
            close = difflib.get_close_matches(key, sorted(KNOWN), n=1, cutoff=0.75)
            hint = f"; did you mean {close[0]}?" if close else " (not a LLaMA-Factory training key)"
            src.warnings.append(f"{src.where(key)}: {key}: unknown key, ignored{hint}")
    gc_off = cfg.extra.pop("disable_gradient_checkpointing", None)
    if gc_off is not None and "gradient_checkpointing" not in src.values:
        # LLaMA-Factory's key (its default, false, means checkpointing ON); ftbench's default is off, which is
        # faster while memory allows, so only an explicit value changes it
        cfg.gradient_checkpointing = not bool(gc_off)
        cfg.lines["gradient_checkpointing"] = cfg.lines.get("disable_gradient_checkpointing")
    errors += [f"{src.where(k)}: {k}: {msg}" for k, msg in _check_values(cfg, src)]
    if errors:
        more = (
            f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''} in the config)"
            if len(errors) > 1
            else ""
        )
        raise InputError(errors[0] + more)
    return cfg


def convert(key: str, value: Any, *, name: str | None = None) -> Any:
    """One typed key's value from YAML (or a key=value override), checked against its declared type in
    `TrainKeys`; SchemaError names the key (``name``, when the YAML spelt it differently) and what is allowed.
    First the YAML habits LLaMA-Factory users rely on: "a,b" for a list, `no` (false in YAML 1.1) for the
    strategy "no", `null` written as text, numbers as text ("5e-5", which PyYAML does not read as a number)."""
    name = name or key
    declared, optional, choices = unwrap(TYPED[key])
    if value is None or (optional and isinstance(value, str) and value.strip().lower() in ("null", "none", "")):
        if optional:
            return None
        if typing.get_origin(declared) is list:
            return []
        raise SchemaError(name, value, "needs a value")
    if typing.get_origin(declared) is list:
        items = value if isinstance(value, list) else str(value).split(",")
        value = [i if isinstance(i, (dict, list)) else str(i).strip() for i in items if str(i).strip()]
    elif declared is str or choices:
        if value is False and "no" in choices:
            value = "no"
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
    elif declared is bool and isinstance(value, str):
        value = value.strip().lower()
    value = check(value, TYPED[key], coerce=True, name=name)
    if key in STEPS and value is not None and value >= 1:
        if not float(value).is_integer():
            raise SchemaError(
                name, value, f"expected a whole number of steps, or a fraction of the run below 1, got {value!r}"
            )
        return int(value)
    return value


def _check_values(cfg: TrainConfig, src: ConfigSource) -> list[tuple[str, str]]:
    bad = []
    if not cfg.model_name_or_path:
        bad.append(("model_name_or_path", "required: a hub id, a local model folder, or `tiny`"))
    if not cfg.output_dir:
        bad.append(("output_dir", "required: where the adapter and checkpoints go"))
    if not cfg.dataset:
        bad.append(("dataset", "required: a data file, or dataset names in dataset_dir/dataset_info.json"))
    # types and ranges are TrainKeys'; what is left are rules across keys, or within one beyond a range
    if cfg.val_size >= 1 and not float(cfg.val_size).is_integer():
        bad.append(("val_size", f"a fraction in [0, 1) or a whole number of samples, got {cfg.val_size}"))
    if cfg.num_train_epochs <= 0 and cfg.max_steps <= 0:
        bad.append(("num_train_epochs", "must be > 0 (or set max_steps)"))
    if cfg.bf16 and cfg.fp16:
        bad.append(("fp16", "bf16 and fp16 are both true: choose one"))
    if cfg.eval_strategy != "no" and cfg.val_size == 0 and not cfg.eval_dataset:
        bad.append(("eval_strategy", f"{cfg.eval_strategy} needs an eval set: set val_size (e.g. 0.1) or eval_dataset"))
    if "none" in cfg.report_to and len(cfg.report_to) > 1:
        bad.append(("report_to", f"'none' together with {', '.join(r for r in cfg.report_to if r != 'none')}"))
    if cfg.do_train is False:
        bad.append(("do_train", "false: `ftbench train` only trains (evaluate with `ftbench eval`)"))
    return bad


def check_unsupported(cfg: TrainConfig, backend: str, *, allow: frozenset[str] = frozenset()) -> None:
    """Raise InputError for known LLaMA-Factory settings the backend cannot honour (the first one found)."""
    if cfg.stage != "sft":
        raise cfg.error("stage", f"{cfg.stage} is not supported by the {backend} backend (supported: sft)")
    if cfg.finetuning_type != "lora":
        raise cfg.error(
            "finetuning_type", f"{cfg.finetuning_type} is not supported by the {backend} backend (supported: lora)"
        )
    for key, value in cfg.extra.items():
        if key in UNSUPPORTED and key not in allow:
            off, instead = UNSUPPORTED[key]
            if value not in off:
                raise cfg.error(key, f"{value!r} is not supported by the {backend} backend: {instead}")


def resolve_path(cfg: TrainConfig, path: str) -> str:
    """A relative path as LLaMA-Factory reads it (from the current directory); if nothing is there but the
    path exists next to the YAML file, that one (so examples run from any folder)."""
    path = os.path.expanduser(path)
    if os.path.isabs(path) or os.path.exists(path) or not cfg.config_dir:
        return path
    beside = os.path.join(cfg.config_dir, path)
    return beside if os.path.exists(beside) else path


def dump_yaml(data: dict) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)

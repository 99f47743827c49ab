"""Training configs in LLaMA-Factory's YAML key names: load, override with key=value, check, type.

Every key a LLaMA-Factory YAML may hold falls in one of five groups:

- typed: a field of `TrainConfig` (model_name_or_path, lora_rank, cutoff_len, ...), checked and converted here;
- passed through: a transformers ``TrainingArguments`` key handed over unchanged (adam_beta2, ddp_timeout, ...);
- accepted: known, but without effect here (overwrite_cache, preprocessing_num_workers, generation keys, ...);
- unsupported: known, and an error when set to anything but its "off" value (quantization_bit, packing, ...);
- unknown: a warning, with the closest known key ("did you mean lora_rank?").

Errors name the file and the key's line (`train.yaml:7: lora_rank: expected an integer, got 'eight'`); a YAML
syntax error names file:line:column. Which settings a backend cannot honour is the backend's call
(`TrainerBackend.check_config`); `check_unsupported` is the shared part of that check.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import fields
from typing import Any

from ftbench.api.backends import TrainConfig
from ftbench.api.errors import InputError, UsageError

# typed keys: name -> kind. Kinds: str, str?, int, int?, float, steps (int, or a float ratio < 1), steps?,
# bool, list (a YAML list or LLaMA-Factory's "a,b" string), list?
TYPED: dict[str, str] = {
    "model_name_or_path": "str", "output_dir": "str", "backend": "str", "stage": "str", "do_train": "bool",
    "finetuning_type": "str", "adapter_name_or_path": "str?", "lora_rank": "int", "lora_alpha": "int?",
    "lora_dropout": "float", "lora_target": "list", "additional_target": "list?", "use_rslora": "bool",
    "use_dora": "bool", "dataset": "list", "dataset_dir": "str", "template": "str?", "default_system": "str?",
    "cutoff_len": "int", "max_samples": "int?", "val_size": "float", "eval_dataset": "list?", "per_device_train_batch_size": "int",
    "per_device_eval_batch_size": "int", "gradient_accumulation_steps": "int", "learning_rate": "float",
    "num_train_epochs": "float", "max_steps": "int", "lr_scheduler_type": "str", "warmup_ratio": "float",
    "warmup_steps": "int", "weight_decay": "float", "max_grad_norm": "float", "optim": "str", "seed": "int",
    "gradient_checkpointing": "bool", "group_by_length": "bool", "bf16": "bool", "fp16": "bool", "flash_attn": "str",
    "trust_remote_code": "bool", "eval_strategy": "str", "eval_steps": "steps?", "save_strategy": "str",
    "save_steps": "steps", "save_total_limit": "int?", "logging_steps": "steps", "logging_dir": "str?",
    "report_to": "list", "plot_loss": "bool", "overwrite_output_dir": "bool", "resume_from_checkpoint": "str?",
}
assert set(TYPED) <= {f.name for f in fields(TrainConfig)}

CHOICES: dict[str, tuple[str, ...]] = {
    "eval_strategy": ("no", "steps", "epoch"),
    "save_strategy": ("no", "steps", "epoch", "best"),
    "flash_attn": ("auto", "disabled", "sdpa", "fa2"),
}

ALIASES = {"evaluation_strategy": "eval_strategy"}  # the old transformers name, still in many tutorials

# transformers TrainingArguments keys handed over unchanged (the backend checks its transformers has them)
PASSTHROUGH = frozenset({
    "adam_beta1", "adam_beta2", "adam_epsilon", "ddp_timeout", "ddp_find_unused_parameters", "ddp_backend",
    "ddp_bucket_cap_mb", "dataloader_num_workers", "dataloader_pin_memory", "dataloader_persistent_workers",
    "dataloader_drop_last", "logging_first_step", "logging_strategy", "data_seed", "save_only_model",
    "label_smoothing_factor", "neftune_noise_alpha", "tf32", "run_name", "lr_scheduler_kwargs", "eval_delay",
    "eval_on_start", "gradient_checkpointing_kwargs", "load_best_model_at_end", "metric_for_best_model",
    "greater_is_better", "torch_empty_cache_steps", "include_num_input_tokens_seen", "eval_accumulation_steps",
    "full_determinism", "ignore_data_skip", "optim_args", "use_cpu",
})

# known keys without effect in ftbench training, and why
ACCEPTED: dict[str, str] = {
    **dict.fromkeys(("overwrite_cache", "preprocessing_num_workers", "preprocessing_batch_size"),
                    "ftbench tokenizes in memory, with no cache"),
    **dict.fromkeys(("do_eval",), "evaluation follows val_size and eval_strategy"),
    **dict.fromkeys(("save_safetensors",), "adapters are always saved as safetensors"),
    **dict.fromkeys(("disable_tqdm", "log_level", "log_level_replica", "log_on_each_node", "print_param_status",
                     "include_effective_tokens_per_second"), "ftbench prints its own progress"),
    **dict.fromkeys(("ignore_pad_token_for_loss",), "padding is always masked out of the loss"),
    **dict.fromkeys(("use_fast_tokenizer", "low_cpu_mem_usage", "use_cache", "upcast_layernorm",
                     "upcast_lmhead_output", "disable_gradient_checkpointing", "use_reentrant_gc", "cache_dir",
                     "model_revision", "hf_hub_token", "ms_hub_token", "om_hub_token", "split_special_tokens",
                     "save_on_each_node", "mix_strategy", "buffer_size", "media_dir", "image_max_pixels",
                     "image_min_pixels", "video_max_pixels", "video_min_pixels", "video_fps", "video_maxlen",
                     "moe_aux_loss_coef", "block_diag_attn", "enable_thinking", "compute_accuracy",
                     "ddp_broadcast_buffers", "eval_num_beams", "tool_format", "model_max_length"),
                    "no effect on LoRA SFT here"),
    **dict.fromkeys(("quantization_method", "quantization_type", "double_quantization", "quantization_device_map"),
                    "read with quantization_bit (QLoRA; the peft backend, backends/scaling.py)"),
    **dict.fromkeys(("do_sample", "temperature", "top_p", "top_k", "num_beams", "max_length", "max_new_tokens",
                     "repetition_penalty", "length_penalty", "skip_special_tokens", "infer_backend", "infer_dtype"),
                    "a generation setting (used by predict, not by training)"),
    **dict.fromkeys(("pref_beta", "pref_ftx", "pref_loss", "dpo_label_smoothing", "simpo_gamma", "ppo_buffer_size",
                     "ppo_epochs", "ppo_score_norm", "ppo_target", "ppo_whiten_rewards", "ld_alpha",
                     "freeze_trainable_layers", "freeze_trainable_modules", "freeze_extra_modules",
                     "freeze_vision_tower", "freeze_multi_modal_projector", "freeze_language_model",
                     "lora_parameters"), "only used by a stage or finetuning_type ftbench does not train"),
}

_OFF = (None, False, "", 0, "none", "None", "no")
# known keys that only the "off" values may take: key -> (off values, what to do instead)
UNSUPPORTED: dict[str, tuple[tuple, str]] = {
    # the peft backend runs these two (backends/scaling.py: QLoRA with bitsandbytes, DeepSpeed ZeRO); other
    # backends refuse them unless they allow them
    "quantization_bit": (_OFF, "QLoRA is not supported; remove it to train a LoRA on the full-precision model"),
    "packing": (_OFF, "sequence packing is not supported; dynamic padding is used instead"),
    "neat_packing": (_OFF, "sequence packing is not supported; dynamic padding is used instead"),
    "train_on_prompt": (_OFF, "the prompt is always masked out of the loss"),
    "mask_history": (_OFF, "every assistant turn is trained on"),
    "streaming": (_OFF, "the data is read into memory; use max_samples for a subset"),
    "interleave_probs": (_OFF, "datasets are concatenated"),
    "eval_on_each_dataset": (_OFF, "one eval set is held out from all datasets"),
    "tokenized_path": (_OFF, "ftbench tokenizes in memory"),
    "deepspeed": (_OFF, "DeepSpeed is not supported; the peft backend runs it (docs/scaling.md)"),
    "fsdp": (_OFF, "multi-GPU is the Trainer's DDP: `accelerate launch -m ftbench train ...` (docs/training.md)"),
    "fsdp_config": (_OFF, "multi-GPU is the Trainer's DDP (docs/training.md)"),
    "torch_compile": (_OFF, "not supported"),
    "pure_bf16": (_OFF, "use bf16: true (mixed precision)"),
    "use_unsloth": (_OFF, "not supported"), "use_unsloth_gc": (_OFF, "not supported"),
    "enable_liger_kernel": (_OFF, "not supported"), "shift_attn": (_OFF, "not supported"),
    "mixture_of_depths": (_OFF, "not supported"), "rope_scaling": (_OFF, "not supported"),
    "use_llama_pro": (_OFF, "not supported"), "use_galore": (_OFF, "not supported"),
    "use_apollo": (_OFF, "not supported"), "use_badam": (_OFF, "not supported"),
    "use_adam_mini": (_OFF, "not supported"), "use_muon": (_OFF, "not supported"),
    "pissa_init": (_OFF, "not supported"), "pissa_convert": (_OFF, "not supported"),
    "loraplus_lr_ratio": (_OFF, "not supported"), "loraplus_lr_embedding": (_OFF, "not supported"),
    "create_new_adapter": (_OFF, "not supported"), "resize_vocab": (_OFF, "not supported"),
    "add_tokens": (_OFF, "not supported"), "add_special_tokens": (_OFF, "not supported"),
    "train_from_scratch": (_OFF, "LoRA needs pretrained weights"),
    "do_predict": (_OFF, "use `ftbench predict` after training"),
    "predict_with_generate": (_OFF, "use `ftbench predict` after training"),
    "push_to_hub": (_OFF, "push the output_dir yourself"), "hub_model_id": (_OFF, "push the output_dir yourself"),
    "use_swanlab": (_OFF, "use report_to: tensorboard"),
    "ref_model": (_OFF, "only DPO-style stages use it; ftbench trains sft"),
    "reward_model": (_OFF, "only PPO uses it; ftbench trains sft"),
    "export_dir": (_OFF, "use `ftbench export --model M --adapter A --output DIR`"),
    "export_size": (_OFF, "use `ftbench export`"), "export_quantization_bit": (_OFF, "not supported"),
    "auto_find_batch_size": (_OFF, "set per_device_train_batch_size"),
}

SCALE_KEYS = frozenset({"deepspeed", "quantization_bit"})  # UNSUPPORTED keys the peft backend runs

KNOWN = frozenset(TYPED) | frozenset(ALIASES) | PASSTHROUGH | frozenset(ACCEPTED) | frozenset(UNSUPPORTED)


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
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.start})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        raise InputError(_yaml_error(path, e)) from None
    if node is None:
        raise InputError(f"{path}: the config is empty")
    if not isinstance(node, yaml.MappingNode):
        raise InputError(f"{path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}: the config must be a "
                         "mapping of `key: value` lines")
    loader = yaml.SafeLoader("")
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        try:
            key = loader.construct_object(key_node, deep=True)
            value = loader.construct_object(value_node, deep=True)
        except yaml.YAMLError as e:
            raise InputError(_yaml_error(path, e)) from None
        if not isinstance(key, str):
            raise InputError(f"{path}:{line}: keys must be names, got {key!r}")
        if key in src.values:
            src.warnings.append(f"{path}:{line}: {key}: given twice; the later value ({value!r}) wins "
                                f"(the first is on line {src.lines[key]})")
        src.values[key] = value
        src.lines[key] = line
    return src


def _yaml_error(path: str, e) -> str:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    context = getattr(e, "context", None)
    return f"{where}: YAML syntax error: {problem}" + (f" ({context})" if context else "")


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
                setattr(cfg, key, convert(key, TYPED[key], value))
            except ValueError as e:
                errors.append(f"{src.where(raw_key)}: {raw_key}: {e}")
        elif key in PASSTHROUGH:
            cfg.training_args[key] = value
        elif key in ACCEPTED or key in UNSUPPORTED:
            cfg.extra[key] = value
        else:
            close = difflib.get_close_matches(key, sorted(KNOWN), n=1, cutoff=0.75)
            hint = f"; did you mean {close[0]}?" if close else " (not a LLaMA-Factory training key)"
            src.warnings.append(f"{src.where(key)}: {key}: unknown key, ignored{hint}")
    errors += [f"{src.where(k)}: {k}: {msg}" for k, msg in _check_values(cfg, src)]
    if errors:
        more = f" (and {len(errors) - 1} more problems in the config)" if len(errors) > 1 else ""
        raise InputError(errors[0] + more)
    return cfg


def convert(key: str, kind: str, value: Any) -> Any:
    """One typed value from YAML (or a key=value override); ValueError says what was expected."""
    optional = kind.endswith("?")
    kind = kind.rstrip("?")
    if value is None or (optional and isinstance(value, str) and value.strip().lower() in ("null", "none", "")):
        if optional:
            return None
        if kind == "list":
            return []
        raise ValueError("needs a value")
    if kind == "str":
        if value is False and "no" in CHOICES.get(key, ()):
            return "no"  # YAML 1.1 reads `eval_strategy: no` as false
        if isinstance(value, bool) or isinstance(value, (dict, list)):
            raise ValueError(f"expected text, got {value!r}")
        value = str(value)
        if key in CHOICES and value not in CHOICES[key]:
            raise ValueError(f"{value!r} is not one of {', '.join(CHOICES[key])}")
        return value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError(f"expected true or false, got {value!r}")
    if kind == "int":
        if isinstance(value, bool):
            raise ValueError(f"expected an integer, got {value!r}")
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise ValueError(f"expected an integer, got {value!r}") from None
    if kind in ("float", "steps"):
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            number = float(value)  # also YAML 1.1's string "5e-5"
        except (TypeError, ValueError):
            raise ValueError(f"expected a number, got {value!r}") from None
        if kind == "steps" and number >= 1:
            if not number.is_integer():
                raise ValueError(f"expected a whole number of steps, or a fraction of the run below 1, got {value!r}")
            return int(number)
        return number
    if kind == "list":
        items = value if isinstance(value, list) else str(value).split(",")
        return [str(i).strip() for i in items if str(i).strip()]
    raise AssertionError(kind)


def _check_values(cfg: TrainConfig, src: ConfigSource) -> list[tuple[str, str]]:
    bad = []
    if not cfg.model_name_or_path:
        bad.append(("model_name_or_path", "required: a hub id, a local model folder, or `tiny`"))
    if not cfg.output_dir:
        bad.append(("output_dir", "required: where the adapter and checkpoints go"))
    if not cfg.dataset:
        bad.append(("dataset", "required: a data file, or dataset names in dataset_dir/dataset_info.json"))
    for key in ("lora_rank", "cutoff_len", "per_device_train_batch_size", "per_device_eval_batch_size",
                "gradient_accumulation_steps"):
        if getattr(cfg, key) <= 0:
            bad.append((key, f"must be > 0, got {getattr(cfg, key)}"))
    for key in ("lora_alpha", "max_samples", "save_total_limit"):
        if getattr(cfg, key) is not None and getattr(cfg, key) <= 0:
            bad.append((key, f"must be > 0 (or null), got {getattr(cfg, key)}"))
    if not 0 <= cfg.lora_dropout < 1:
        bad.append(("lora_dropout", f"must be in [0, 1), got {cfg.lora_dropout}"))
    if cfg.learning_rate <= 0:
        bad.append(("learning_rate", f"must be > 0, got {cfg.learning_rate}"))
    if cfg.val_size < 0 or (cfg.val_size >= 1 and not float(cfg.val_size).is_integer()):
        bad.append(("val_size", f"a fraction in [0, 1) or a whole number of samples, got {cfg.val_size}"))
    if not 0 <= cfg.warmup_ratio < 1:
        bad.append(("warmup_ratio", f"must be in [0, 1), got {cfg.warmup_ratio}"))
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
        raise cfg.error("finetuning_type", f"{cfg.finetuning_type} is not supported by the {backend} backend "
                        "(supported: lora)")
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

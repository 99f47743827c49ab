"""The keys a LLaMA-Factory training YAML may hold, in five groups (see `ftbench.training.config`):

- typed: `TrainKeys`, the declared schema of every key ftbench reads into a `TrainConfig`: its type, its range
  and its choices, checked by msgspec (`ftbench.data.schema`) key by key;
- passed through, accepted, unsupported: the tables below; anything else is an unknown key.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Annotated, Literal, Optional

import msgspec

from ftbench.api.backends import TrainConfig
from ftbench.data.schema import PositiveInt, Tokens, number

Steps = number(gt=0)  # a whole number of steps, or a fraction of the run below 1 (`config.convert` checks which)
Names = list[str]  # a YAML list, or LLaMA-Factory's "a,b" string (`config.convert` splits it)
# Upper bounds only where a huge value fails or hangs instead of doing the (large) work asked for: numpy seeds
# stop at 2**32 - 1, transformers turns epochs into a step count that overflows past about 1e300, a LoRA rank
# past 65,536 is larger than any layer it adapts (cutoff_len: see schema.MAX_TOKENS). Batch sizes, accumulation
# steps and max_samples need none: a value past the data's size takes all of it, once.
MAX_STEPS = 1_000_000_000
MAX_LORA_RANK = 65_536
# A learning rate past 10 only diverges, and past float32's 3.4e38 it overflows inside the optimizer (exit 3).
MAX_LEARNING_RATE = 10.0


class TrainKeys(msgspec.Struct, forbid_unknown_fields=True):
    """The typed keys of a training YAML: what each may hold. Never built whole: `config.convert` checks each
    given key against its field, and the key's default stays `TrainConfig`'s."""

    model_name_or_path: str
    output_dir: str
    backend: str
    stage: str
    do_train: bool
    finetuning_type: str
    adapter_name_or_path: Optional[str]
    lora_rank: Annotated[int, msgspec.Meta(gt=0, le=MAX_LORA_RANK)]
    lora_alpha: Optional[PositiveInt]
    lora_dropout: number(ge=0, lt=1)
    lora_target: Names
    additional_target: Optional[Names]
    use_rslora: bool
    use_dora: bool
    dataset: Names
    dataset_dir: str
    template: Optional[str]
    default_system: Optional[str]
    enable_thinking: bool
    cutoff_len: Tokens
    max_samples: Optional[PositiveInt]
    val_size: number(ge=0)  # a fraction below 1, or a whole number of samples (`config` checks which)
    eval_dataset: Optional[Names]
    per_device_train_batch_size: PositiveInt
    per_device_eval_batch_size: PositiveInt
    gradient_accumulation_steps: PositiveInt
    learning_rate: number(gt=0, le=MAX_LEARNING_RATE)
    num_train_epochs: number(ge=0, le=1_000_000)  # 0 only with max_steps (`config` checks)
    max_steps: Annotated[int, msgspec.Meta(ge=-1, le=MAX_STEPS)]  # -1: num_train_epochs decides
    lr_scheduler_type: str
    warmup_ratio: number(ge=0, lt=1)
    warmup_steps: Annotated[int, msgspec.Meta(ge=0, le=MAX_STEPS)]
    weight_decay: number(ge=0)
    max_grad_norm: number(ge=0)
    optim: str
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
    gradient_checkpointing: bool
    group_by_length: bool
    padding_free: bool
    bf16: bool
    fp16: bool
    flash_attn: Literal["auto", "disabled", "sdpa", "fa2"]
    trust_remote_code: bool
    eval_strategy: Literal["no", "steps", "epoch"]
    eval_steps: Optional[Steps]
    save_strategy: Literal["no", "steps", "epoch", "best"]
    save_steps: Steps
    save_total_limit: Optional[PositiveInt]
    logging_steps: Steps
    logging_dir: Optional[str]
    report_to: Names
    plot_loss: bool
    overwrite_output_dir: bool
    resume_from_checkpoint: Optional[str]


TYPED = {f.name: f.type for f in msgspec.structs.fields(TrainKeys)}  # key -> declared type
STEPS = frozenset(k for k, t in TYPED.items() if t in (Steps, Optional[Steps]))
assert set(TYPED) <= {f.name for f in fields(TrainConfig)}

ALIASES = {"evaluation_strategy": "eval_strategy"}  # the old transformers name, still in many tutorials

# transformers TrainingArguments keys handed over unchanged (the backend checks its transformers has them)
PASSTHROUGH = frozenset(
    {
        "adam_beta1",
        "adam_beta2",
        "adam_epsilon",
        "ddp_timeout",
        "ddp_find_unused_parameters",
        "ddp_backend",
        "ddp_bucket_cap_mb",
        "dataloader_num_workers",
        "dataloader_pin_memory",
        "dataloader_persistent_workers",
        "dataloader_drop_last",
        "logging_first_step",
        "logging_strategy",
        "data_seed",
        "save_only_model",
        "label_smoothing_factor",
        "neftune_noise_alpha",
        "tf32",
        "run_name",
        "lr_scheduler_kwargs",
        "eval_delay",
        "eval_on_start",
        "gradient_checkpointing_kwargs",
        "load_best_model_at_end",
        "metric_for_best_model",
        "greater_is_better",
        "torch_empty_cache_steps",
        "include_num_input_tokens_seen",
        "eval_accumulation_steps",
        "full_determinism",
        "ignore_data_skip",
        "optim_args",
        "use_cpu",
    }
)

# known keys without effect in ftbench training, and why
ACCEPTED: dict[str, str] = {
    "disable_gradient_checkpointing": "LLaMA-Factory's switch: sets gradient_checkpointing to its opposite",
    **dict.fromkeys(
        ("overwrite_cache", "preprocessing_num_workers", "preprocessing_batch_size"),
        "ftbench tokenizes in memory, with no cache",
    ),
    **dict.fromkeys(("do_eval",), "evaluation follows val_size and eval_strategy"),
    **dict.fromkeys(("save_safetensors",), "adapters are always saved as safetensors"),
    **dict.fromkeys(
        (
            "disable_tqdm",
            "log_level",
            "log_level_replica",
            "log_on_each_node",
            "print_param_status",
            "include_effective_tokens_per_second",
        ),
        "ftbench prints its own progress",
    ),
    **dict.fromkeys(("ignore_pad_token_for_loss",), "padding is always masked out of the loss"),
    **dict.fromkeys(
        (
            "use_fast_tokenizer",
            "low_cpu_mem_usage",
            "use_cache",
            "upcast_layernorm",
            "upcast_lmhead_output",
            "use_reentrant_gc",
            "cache_dir",
            "model_revision",
            "hf_hub_token",
            "ms_hub_token",
            "om_hub_token",
            "split_special_tokens",
            "save_on_each_node",
            "mix_strategy",
            "buffer_size",
            "media_dir",
            "image_max_pixels",
            "image_min_pixels",
            "video_max_pixels",
            "video_min_pixels",
            "video_fps",
            "video_maxlen",
            "moe_aux_loss_coef",
            "block_diag_attn",
            "compute_accuracy",
            "ddp_broadcast_buffers",
            "eval_num_beams",
            "tool_format",
            "model_max_length",
        ),
        "no effect on LoRA SFT here",
    ),
    **dict.fromkeys(
        ("quantization_method", "quantization_type", "double_quantization", "quantization_device_map"),
        "read with quantization_bit (QLoRA; the peft backend, backends/scaling.py)",
    ),
    **dict.fromkeys(
        (
            "do_sample",
            "temperature",
            "top_p",
            "top_k",
            "num_beams",
            "max_length",
            "max_new_tokens",
            "repetition_penalty",
            "length_penalty",
            "skip_special_tokens",
            "infer_backend",
            "infer_dtype",
        ),
        "a generation setting (used by predict, not by training)",
    ),
    **dict.fromkeys(
        (
            "pref_beta",
            "pref_ftx",
            "pref_loss",
            "dpo_label_smoothing",
            "simpo_gamma",
            "ppo_buffer_size",
            "ppo_epochs",
            "ppo_score_norm",
            "ppo_target",
            "ppo_whiten_rewards",
            "ld_alpha",
            "freeze_trainable_layers",
            "freeze_trainable_modules",
            "freeze_extra_modules",
            "freeze_vision_tower",
            "freeze_multi_modal_projector",
            "freeze_language_model",
            "lora_parameters",
        ),
        "only used by a stage or finetuning_type ftbench does not train",
    ),
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
    "use_unsloth": (_OFF, "not supported"),
    "use_unsloth_gc": (_OFF, "not supported"),
    "enable_liger_kernel": (_OFF, "not supported"),
    "shift_attn": (_OFF, "not supported"),
    "mixture_of_depths": (_OFF, "not supported"),
    "rope_scaling": (_OFF, "not supported"),
    "use_llama_pro": (_OFF, "not supported"),
    "use_galore": (_OFF, "not supported"),
    "use_apollo": (_OFF, "not supported"),
    "use_badam": (_OFF, "not supported"),
    "use_adam_mini": (_OFF, "not supported"),
    "use_muon": (_OFF, "not supported"),
    "pissa_init": (_OFF, "not supported"),
    "pissa_convert": (_OFF, "not supported"),
    "loraplus_lr_ratio": (_OFF, "not supported"),
    "loraplus_lr_embedding": (_OFF, "not supported"),
    "create_new_adapter": (_OFF, "not supported"),
    "resize_vocab": (_OFF, "not supported"),
    "add_tokens": (_OFF, "not supported"),
    "add_special_tokens": (_OFF, "not supported"),
    "train_from_scratch": (_OFF, "LoRA needs pretrained weights"),
    "do_predict": (_OFF, "use `ftbench predict` after training"),
    "predict_with_generate": (_OFF, "use `ftbench predict` after training"),
    "push_to_hub": (_OFF, "push the output_dir yourself"),
    "hub_model_id": (_OFF, "push the output_dir yourself"),
    "use_swanlab": (_OFF, "use report_to: tensorboard"),
    "ref_model": (_OFF, "only DPO-style stages use it; ftbench trains sft"),
    "reward_model": (_OFF, "only PPO uses it; ftbench trains sft"),
    "export_dir": (_OFF, "use `ftbench export --model M --adapter A --output DIR`"),
    "export_size": (_OFF, "use `ftbench export`"),
    "export_quantization_bit": (_OFF, "not supported"),
    "auto_find_batch_size": (_OFF, "set per_device_train_batch_size"),
}

SCALE_KEYS = frozenset({"deepspeed", "quantization_bit"})  # UNSUPPORTED keys the peft backend runs

KNOWN = frozenset(TYPED) | frozenset(ALIASES) | PASSTHROUGH | frozenset(ACCEPTED) | frozenset(UNSUPPORTED)

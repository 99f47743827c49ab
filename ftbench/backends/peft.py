"""The `peft` backend: LoRA supervised fine-tuning with the transformers Trainer, as one readable recipe.

`train` below reads top to bottom: output folder and resume point, tokenizer and data (LLaMA-Factory's
dataset/dataset_dir/max_samples/val_size semantics), tokenization with the prompt masked out of the labels,
the base model in the right precision, LoRA adapters, TrainingArguments mapped key by key from the
LLaMA-Factory config, the Trainer with a dynamic-padding collator, then the run records: adapter + tokenizer,
`ftbench_config.yaml`, `trainer_log.jsonl` and, with plot_loss, the loss plots (`checkpoints.json`, the choice among
the checkpoints, is written by whoever runs the backend: `training.checkpoints.settle_choice`).

Multi-GPU is the Trainer's own DDP: `torchrun --nproc_per_node N -m ftbench train cfg.yaml` or
`accelerate launch -m ftbench train cfg.yaml`; only rank 0 prints and writes the run records.
"""

from __future__ import annotations

import inspect
import os
import shutil
import time
import warnings
from dataclasses import dataclass

from ftbench.api.backends import TrainConfig, TrainerBackend, TrainResult
from ftbench.console import is_main_process, local_rank, say, warn, world_size
from ftbench.inference.models import is_adapter_dir
from ftbench.io import atomic_write_text
from ftbench.training.checkpoints import CHECKPOINTS_JSON, all_checkpoint_dirs, checkpoint_table, complete_checkpoints
from ftbench.training.config import check_unsupported, dump_yaml, resolve_path
from ftbench.training.config_keys import SCALE_KEYS
from ftbench.training.data import DynamicPaddingCollator, encode, template_of, train_and_eval_samples
from ftbench.training.trainer_log import TRAINER_LOG, read_trainer_log

CONFIG_FILE = "ftbench_config.yaml"


class PeftBackend(TrainerBackend):
    """LoRA SFT with transformers Trainer + peft, on CPU, one GPU, or several through DDP (built in)."""

    name = "peft"
    description = "LoRA SFT with transformers Trainer + peft (CPU, GPU, multi-GPU DDP)"
    config_file = CONFIG_FILE
    writes = {
        CONFIG_FILE: "the resolved training config",
        TRAINER_LOG: "the training log, LLaMA-Factory's rows",
        "checkpoint-N/": "peft adapter checkpoints with trainer_state.json",
        "all_results.json": "the Trainer's train and eval figures",
        "adapter_model.safetensors": "the adapter",
    }

    def check_config(self, config: TrainConfig) -> None:
        from ftbench.backends.scaling import check_hardware, scale_plan

        check_unsupported(config, self.name, allow=SCALE_KEYS)
        check_hardware(scale_plan(config))  # deepspeed/QLoRA: one line if this machine lacks what they need
        template_of(config)  # an unknown template name fails before any model loads

    def train(self, config: TrainConfig, *, resume: bool = False, quiet: bool = False) -> TrainResult:
        return train(config, resume=resume, quiet=quiet)


def train(cfg: TrainConfig, *, resume: bool = False, quiet: bool = False) -> TrainResult:
    import torch
    from transformers import (
        AutoModelForCausalLM,
        PrinterCallback,
        ProgressCallback,
        Trainer,
        TrainingArguments,
        set_seed,
    )
    from transformers.utils import logging as hf_logging

    from ftbench.backends import scaling
    from ftbench.backends import trainer_callbacks as cb
    from ftbench.inference.models import load_tokenizer, resolve_model

    hf_logging.disable_progress_bar()  # "Loading weights" bars; ConsoleCallback reports training progress
    # peft asks transformers 5 for a renamed attribute; the user can do nothing about that warning
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

    # 1. Output folder and where to resume from
    out = cfg.output_dir
    resume_from = find_resume_point(cfg, resume)
    say(f"resuming from {resume_from}" if resume_from else f"training into {out}", quiet)

    # 2. Tokenizer and data: samples -> (input_ids, labels) with the prompt masked and cutoff_len applied
    model_path = resolve_model(resolve_path(cfg, cfg.model_name_or_path))
    tokenizer = load_tokenizer(model_path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    train_samples, eval_samples = train_and_eval_samples(cfg)
    train_set = encode(tokenizer, train_samples, cfg, "train")
    eval_set = encode(tokenizer, eval_samples, cfg, "eval") if eval_samples else None
    say(
        f"data: {len(train_set)} training samples, {len(eval_set or [])} eval samples (cutoff_len {cfg.cutoff_len})",
        quiet,
    )

    # 3. The base model, in the precision the hardware supports (4/8-bit with quantization_bit); seeded first, so
    #    the LoRA init is reproducible
    precision = choose_precision(cfg)
    plan = scaling.scale_plan(cfg)
    scaling.check_hardware(plan)
    set_seed(cfg.seed)
    model = AutoModelForCausalLM.from_pretrained(
        model_path,
        dtype=getattr(torch, precision.dtype),
        attn_implementation=attention_implementation(cfg),
        trust_remote_code=cfg.trust_remote_code,
        **scaling.model_load_kwargs(plan, precision.dtype, local_rank()),
    )
    model.config.use_cache = False  # the KV cache is useless in training and breaks gradient checkpointing
    collator = choose_collator(model, cfg, tokenizer.pad_token_id, quiet)
    model = scaling.prepare_quantized(model, plan, cfg.gradient_checkpointing)
    if cfg.gradient_checkpointing:
        model.enable_input_require_grads()  # checkpointed LoRA layers need grads flowing from the embeddings

    # 4. LoRA adapters on the chosen linear layers (or continue training a given adapter)
    model = add_lora(model, cfg)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    say(
        f"model: {cfg.model_name_or_path} on {precision.device} in {precision.dtype}; LoRA r={cfg.lora_rank} on "
        f"{', '.join(sorted(model.peft_config['default'].target_modules))}: {trainable:,} of {total:,} "
        f"parameters trainable ({trainable / total:.2%})",
        quiet,
    )

    # 5. TrainingArguments, key by key from the LLaMA-Factory config
    args = TrainingArguments(
        **training_arguments(cfg, precision, has_eval=eval_set is not None), **scaling.training_arguments_kwargs(plan)
    )

    # 6. The Trainer: dynamic padding to a multiple of 8 (LLaMA-Factory's SFT collator when training: the same
    #    tensor shapes, so the same kernels and losses), LLaMA-Factory's trainer_log.jsonl, one console line per log
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[cb.TrainerLogCallback(out, resume_step=step_of(resume_from)), cb.ConsoleCallback(quiet)],
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    add_tensorboard(trainer, cfg)

    started = time.time()
    train_output = trainer.train(resume_from_checkpoint=resume_from)
    runtime = time.time() - started
    final_eval, eval_metrics = None, {}
    if eval_set is not None:  # LLaMA-Factory's eval_results.json: the final weights' evaluation
        evaluated = [h for h in trainer.state.log_history if "eval_loss" in h]
        if evaluated and evaluated[-1]["step"] == trainer.state.global_step:
            eval_metrics = {k: v for k, v in evaluated[-1].items() if k != "step"}
        else:
            eval_metrics = trainer.evaluate()
        final_eval = eval_metrics["eval_loss"]

    # 7. Run records (rank 0): adapter + tokenizer, resolved config, metrics, checkpoints.json, plots
    trainer.save_model(out)
    trainer.save_state()
    metrics = dict(train_output.metrics)
    trainer.save_metrics("train", metrics)
    if final_eval is not None:
        trainer.save_metrics("eval", eval_metrics)  # also merged into all_results.json, as LLaMA-Factory does
    history = trainer.state.log_history
    table = checkpoint_table(out, history, trainer.state.global_step, final_eval)
    if trainer.is_world_process_zero():
        atomic_write_text(os.path.join(out, CONFIG_FILE), dump_yaml(resolved_config(cfg)))
        if cfg.plot_loss:
            from ftbench.training.plots import plot_losses

            for path in plot_losses(out, history):
                say(f"plot: {path}", quiet)
    losses = [h["loss"] for h in history if "loss" in h]
    return TrainResult(
        output_dir=out,
        adapter_dir=out,
        trainer_log=os.path.join(out, TRAINER_LOG),
        config_path=os.path.join(out, CONFIG_FILE),
        checkpoints=table,
        global_step=trainer.state.global_step,
        train_samples=len(train_set),
        eval_samples=len(eval_set or []),
        train_runtime=round(runtime, 3),
        train_samples_per_second=metrics.get("train_samples_per_second", 0.0),
        final_loss=losses[-1] if losses else None,
        final_eval_loss=final_eval,
        resumed_from=resume_from,
        trainable_params=trainable,
        all_params=total,
        train_tokens=sum(len(x["input_ids"]) for x in train_set),
        device=precision.device,
        dtype=precision.dtype,
        log=read_trainer_log(os.path.join(out, TRAINER_LOG)),
    )


def find_resume_point(cfg: TrainConfig, resume: bool) -> str | None:
    """The checkpoint to continue from: resume_from_checkpoint if it names one, the last *complete* checkpoint
    with --resume; refuse to train over an earlier run unless overwrite_output_dir."""
    out = cfg.output_dir
    explicit = cfg.resume_from_checkpoint
    if explicit and explicit.lower() not in ("true", "last"):
        if not os.path.isfile(os.path.join(explicit, "trainer_state.json")):
            raise cfg.error(
                "resume_from_checkpoint", f"{explicit} is not a complete checkpoint (no trainer_state.json)"
            )
        return explicit
    if resume or explicit:
        complete = complete_checkpoints(out)
        if complete:
            return complete[-1][1]
        warn(f"--resume: no complete checkpoint in {out}; training from the start")
    elif all_checkpoint_dirs(out) or is_adapter_dir(out):
        if not cfg.overwrite_output_dir:
            raise cfg.error(
                "output_dir",
                f"{out} already holds a training run: pass --resume to continue it, "
                "or overwrite_output_dir=true to start over",
            )
    if cfg.overwrite_output_dir and not (resume or explicit) and is_main_process():
        for path in all_checkpoint_dirs(out):
            shutil.rmtree(path)
        for name in (TRAINER_LOG, CHECKPOINTS_JSON):
            if os.path.exists(os.path.join(out, name)):
                os.remove(os.path.join(out, name))
    return None


def step_of(checkpoint: str | None) -> int | None:
    return int(checkpoint.rstrip("/").rsplit("-", 1)[1]) if checkpoint else None


@dataclass
class Precision:
    """Where the model trains and in which dtype; bf16/fp16 are the Trainer's mixed-precision flags."""

    device: str
    dtype: str
    bf16: bool
    fp16: bool


def choose_precision(cfg: TrainConfig) -> Precision:
    """CUDA: bf16 where the GPU supports it, else fp16 (an explicit fp16/bf16 key wins; bf16 on a GPU without it
    is an error). CPU: fp32 (a bf16/fp16 key is ignored with a warning: CPU half precision is slow or missing)."""
    import torch

    if torch.cuda.is_available():
        bf16_ok = torch.cuda.is_bf16_supported()
        if cfg.bf16 and not bf16_ok:
            raise cfg.error(
                "bf16",
                f"true, but this GPU ({torch.cuda.get_device_name()}) does not support bf16: set fp16: true instead",
            )
        use_bf16 = cfg.bf16 or (bf16_ok and not cfg.fp16)
        return Precision("cuda", "bfloat16" if use_bf16 else "float16", use_bf16, not use_bf16)
    if cfg.bf16 or cfg.fp16:
        key = "bf16" if cfg.bf16 else "fp16"
        warn(f"{cfg.where(key)}: {key}: ignored without a CUDA GPU; training runs in float32")
    return Precision("cpu", "float32", False, False)


def attention_implementation(cfg: TrainConfig) -> str | None:
    """LLaMA-Factory's flash_attn key: auto (transformers' default), disabled (eager), sdpa, fa2 (FlashAttention-2
    where flash-attn is installed and a GPU is present; otherwise a warning and sdpa)."""
    if cfg.flash_attn == "disabled":
        return "eager"
    if cfg.flash_attn == "sdpa":
        return "sdpa"
    if cfg.flash_attn == "fa2":
        import importlib.util

        import torch

        if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
            return "flash_attention_2"
        why = "no CUDA GPU" if not torch.cuda.is_available() else "flash-attn is not installed"
        warn(f"{cfg.where('flash_attn')}: flash_attn: fa2 unavailable ({why}); using sdpa attention")
        return "sdpa"
    return None


def choose_collator(model, cfg: TrainConfig, pad_id: int, quiet: bool):
    """Padding-free packed rows (`training.packing`) where the model allows them, else LLaMA-Factory's padded
    batches (to a multiple of 8, the same tensor shapes as its SFT collator)."""
    from ftbench.training import packing

    blocker = packing.packing_blocker(model, model.config._attn_implementation, cfg.cutoff_len)
    if not cfg.padding_free:
        blocker = "padding_free: false"
    if blocker is not None:
        say(f"batches: padded (no packing: {blocker})", quiet)
        return DynamicPaddingCollator(pad_id, 8)
    if model.config._attn_implementation != "flash_attention_2":  # FA2 takes the sequence bounds itself
        model.set_attn_implementation(packing.register_attention())
    say("batches: padding-free (each batch's samples packed in one row)", quiet)
    return packing.PackedCollator()


def linear_layer_names(model) -> list[str]:
    """The names (last component, e.g. q_proj) of every linear layer except the output head."""
    import torch

    head = model.get_output_embeddings()
    names = {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module is not head and "lm_head" not in name
    }
    return sorted(names)


def add_lora(model, cfg: TrainConfig):
    """Wrap the model with LoRA adapters (lora_target `all` = every linear layer but lm_head), or load
    adapter_name_or_path to continue training it."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if cfg.adapter_name_or_path:
        return PeftModel.from_pretrained(model, resolve_path(cfg, cfg.adapter_name_or_path), is_trainable=True)
    linear = linear_layer_names(model)
    if cfg.lora_target == ["all"]:
        targets = linear
    else:
        missing = [t for t in cfg.lora_target if t not in linear]
        if missing:
            raise cfg.error(
                "lora_target",
                f"{', '.join(missing)}: no such linear layer in this model; it has: {', '.join(linear)} (or use all)",
            )
        targets = cfg.lora_target
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=cfg.lora_rank,
        lora_alpha=cfg.lora_alpha or 2 * cfg.lora_rank,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        modules_to_save=cfg.additional_target,
        use_rslora=cfg.use_rslora,
        use_dora=cfg.use_dora,
    )
    return get_peft_model(model, lora)


def training_arguments(cfg: TrainConfig, precision: Precision, *, has_eval: bool) -> dict:
    """TrainingArguments keywords from the config (checked against this transformers' TrainingArguments)."""
    from transformers import TrainingArguments

    accepted = set(inspect.signature(TrainingArguments.__init__).parameters)
    kwargs = dict(
        output_dir=cfg.output_dir,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps,
        lr_scheduler_type=cfg.lr_scheduler_type,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        optim=cfg.optim,
        seed=cfg.seed,
        bf16=precision.bf16,
        fp16=precision.fp16,
        dataloader_pin_memory=precision.device == "cuda",
        eval_strategy=cfg.eval_strategy if has_eval else "no",
        save_strategy=cfg.save_strategy,
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        logging_steps=cfg.logging_steps,
        report_to=[r for r in cfg.report_to if r != "tensorboard"] or ["none"],
        disable_tqdm=True,  # ConsoleCallback prints progress on stderr
        remove_unused_columns=False,
        label_names=["labels"],
        ddp_find_unused_parameters=False,
    )
    if cfg.eval_steps is not None:
        kwargs["eval_steps"] = cfg.eval_steps
    if precision.device == "cpu" and world_size() > 1:
        kwargs["use_cpu"] = True  # torchrun on CPUs: DDP over gloo (accelerate only goes distributed with this)
    # transformers 5 renamed gradient_checkpointing to activation_checkpointing
    checkpointing = "activation_checkpointing" if "activation_checkpointing" in accepted else "gradient_checkpointing"
    kwargs[checkpointing] = cfg.gradient_checkpointing
    if cfg.gradient_checkpointing:
        kwargs[checkpointing + "_kwargs"] = {"use_reentrant": False}
    if cfg.group_by_length:  # transformers 5 made the flag a sampling strategy
        kwargs.update(
            {"train_sampling_strategy": "group_by_length"}
            if "train_sampling_strategy" in accepted
            else {"group_by_length": True}
        )
    if "warmup_ratio" in accepted:  # transformers 4.x
        kwargs.update(warmup_ratio=cfg.warmup_ratio, warmup_steps=cfg.warmup_steps)
    else:  # transformers 5: warmup_steps below 1 is a ratio of the run
        kwargs["warmup_steps"] = cfg.warmup_steps or cfg.warmup_ratio
    if "logging_dir" in accepted and cfg.logging_dir:
        kwargs["logging_dir"] = cfg.logging_dir
    for key, value in cfg.training_args.items():
        if key not in accepted:
            raise cfg.error(key, "not a TrainingArguments setting in this transformers version")
        kwargs[key] = value
    return kwargs


def add_tensorboard(trainer, cfg: TrainConfig) -> None:
    """report_to: tensorboard, logging into logging_dir (default output_dir/runs)."""
    if "tensorboard" not in cfg.report_to:
        return
    from transformers.integrations import TensorBoardCallback

    callback = TensorBoardCallback()
    callback.logging_dir = (
        resolve_path(cfg, cfg.logging_dir) if cfg.logging_dir else os.path.join(cfg.output_dir, "runs")
    )
    trainer.add_callback(callback)


def resolved_config(cfg: TrainConfig) -> dict:
    """The config as trained, with the data paths made absolute so it reruns from any folder."""
    data = cfg.to_yaml_dict()
    data["dataset_dir"] = os.path.abspath(resolve_path(cfg, cfg.dataset_dir))
    data["dataset"] = ",".join(
        d if not os.path.exists(resolve_path(cfg, d)) else os.path.abspath(resolve_path(cfg, d)) for d in cfg.dataset
    )
    data.pop("resume_from_checkpoint", None)
    return data

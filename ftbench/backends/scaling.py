"""Training past one GPU with the keys LLaMA-Factory users already have:

* ``deepspeed: path.json``: the DeepSpeed config goes to `TrainingArguments(deepspeed=...)` (ZeRO-2 and ZeRO-3
  examples like LLaMA-Factory's are in examples/deepspeed/); run under `deepspeed`, `accelerate launch` or
  `torchrun` (docs/scaling.md).
* ``quantization_bit: 4|8`` with ``quantization_method: bnb`` (or ``bitsandbytes``): QLoRA as LLaMA-Factory's
  `model_utils/quantization.py` configures it: `BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=nf4,
  bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=bnb_4bit_quant_storage=<training dtype>)` or
  `load_in_8bit=True`, the model placed on this process's GPU unless ZeRO-3 places it, then peft's
  `prepare_model_for_kbit_training` before the LoRA layers are added.

`scale_plan` checks the values (a bad value is located at its YAML line, exit 1) and `check_hardware` what they
need (a CUDA GPU, bitsandbytes, deepspeed: one line saying what is missing, exit 2). The mapping is unit-tested;
running it needs GPUs, which this project's CI does not have.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass

from ftbench.api.backends import TrainConfig
from ftbench.api.errors import UsageError

BNB_NAMES = ("bnb", "bitsandbytes")  # LLaMA-Factory's QuantizationMethod.BNB is "bnb"


@dataclass(frozen=True)
class ScalePlan:
    """What the scale keys of a config ask for (None: not used)."""

    deepspeed: str | None = None  # absolute path of the DeepSpeed JSON
    zero_stage: int | None = None
    quantization_bit: int | None = None  # 4 or 8
    quantization_type: str = "nf4"
    double_quantization: bool = True

    @property
    def active(self) -> bool:
        return bool(self.deepspeed or self.quantization_bit)


def scale_plan(cfg: TrainConfig) -> ScalePlan:
    """The deepspeed/quantization keys of ``cfg`` checked and resolved (InputError at the key's line if bad)."""
    from ftbench.training.config import UNSUPPORTED, resolve_path

    extra = cfg.extra
    off = UNSUPPORTED["deepspeed"][0]  # the values that mean "not used"
    deepspeed = stage = bits = None
    if extra.get("deepspeed") not in off:
        path = resolve_path(cfg, str(extra["deepspeed"]))
        if not os.path.isfile(path):
            raise cfg.error(
                "deepspeed",
                f"{extra['deepspeed']}: no such file (ZeRO-2/ZeRO-3 examples: "
                "examples/deepspeed/ds_z2_config.json, ds_z3_config.json)",
            )
        try:
            with open(path, encoding="utf-8") as fh:
                ds = json.load(fh)
        except (OSError, ValueError) as e:
            raise cfg.error("deepspeed", f"{extra['deepspeed']}: not a JSON DeepSpeed config ({e})") from None
        if not isinstance(ds, dict):
            raise cfg.error("deepspeed", f"{extra['deepspeed']}: expected a JSON object")
        deepspeed = os.path.abspath(path)
        stage = (ds.get("zero_optimization") or {}).get("stage")
    if extra.get("quantization_bit") not in off:
        bits = extra["quantization_bit"]
        if bits not in (4, 8):
            raise cfg.error("quantization_bit", f"{bits!r}: bitsandbytes quantizes to 4 or 8 bits")
        method = str(extra.get("quantization_method") or "bnb").lower()
        if method not in BNB_NAMES:
            raise cfg.error("quantization_method", f"{method}: only bitsandbytes (bnb) is supported")
        if bits == 8 and stage == 3:
            raise cfg.error("quantization_bit", "8 with ZeRO-3: only 4-bit models can be sharded (use 4)")
    qtype = str(extra.get("quantization_type") or "nf4")
    if qtype not in ("nf4", "fp4"):
        raise cfg.error("quantization_type", f"{qtype}: expected nf4 or fp4")
    double = extra.get("double_quantization", True)
    if not isinstance(double, bool):
        raise cfg.error("double_quantization", f"{double!r}: expected true or false")
    return ScalePlan(deepspeed, stage, bits, qtype, double)


def check_hardware(plan: ScalePlan) -> None:
    """One line (UsageError, exit 2) naming what this machine lacks for the plan."""
    import torch

    if plan.quantization_bit:
        if not torch.cuda.is_available():
            raise UsageError(
                f"quantization_bit: {plan.quantization_bit} (QLoRA with bitsandbytes) needs a CUDA GPU; "
                "this machine has none (remove the key to train a LoRA on the full-precision model)"
            )
        if importlib.util.find_spec("bitsandbytes") is None:
            raise UsageError(
                f"quantization_bit: {plan.quantization_bit} needs the bitsandbytes package: pip install bitsandbytes"
            )
    if plan.deepspeed:
        if importlib.util.find_spec("deepspeed") is None:
            raise UsageError(
                "deepspeed: needs the deepspeed package (pip install deepspeed) and a launcher "
                "(deepspeed, accelerate launch or torchrun; docs/scaling.md)"
            )
        if not torch.cuda.is_available():
            raise UsageError("deepspeed: ZeRO training needs CUDA GPUs; this machine has none")


def quantization_config_kwargs(plan: ScalePlan, compute_dtype: str) -> dict | None:
    """`BitsAndBytesConfig(**kwargs)` for the plan (None without quantization), as LLaMA-Factory builds it."""
    if plan.quantization_bit == 8:
        return {"load_in_8bit": True}
    if plan.quantization_bit == 4:
        return {
            "load_in_4bit": True,
            "bnb_4bit_compute_dtype": compute_dtype,
            "bnb_4bit_use_double_quant": plan.double_quantization,
            "bnb_4bit_quant_type": plan.quantization_type,
            "bnb_4bit_quant_storage": compute_dtype,
        }  # the storage dtype lets ZeRO-3/FSDP shard 4-bit weights
    return None


def model_load_kwargs(plan: ScalePlan, compute_dtype: str, local_rank: int) -> dict:
    """Extra `from_pretrained` keywords: the quantization config (as a BitsAndBytesConfig) and, unless ZeRO-3
    places the weights itself, the whole model on this process's GPU."""
    kwargs = quantization_config_kwargs(plan, compute_dtype)
    if kwargs is None:
        return {}
    import torch
    from transformers import BitsAndBytesConfig

    for key in ("bnb_4bit_compute_dtype", "bnb_4bit_quant_storage"):
        if key in kwargs:
            kwargs[key] = getattr(torch, kwargs[key])
    out = {"quantization_config": BitsAndBytesConfig(**kwargs)}
    if plan.zero_stage != 3:
        out["device_map"] = {"": local_rank}
    return out


def prepare_quantized(model, plan: ScalePlan, gradient_checkpointing: bool):
    """peft's `prepare_model_for_kbit_training` for a quantized model (norms in fp32, input grads for
    checkpointing); the model unchanged otherwise."""
    if not plan.quantization_bit:
        return model
    from peft import prepare_model_for_kbit_training

    return prepare_model_for_kbit_training(
        model, use_gradient_checkpointing=gradient_checkpointing, gradient_checkpointing_kwargs={"use_reentrant": False}
    )


def training_arguments_kwargs(plan: ScalePlan) -> dict:
    """Extra `TrainingArguments` keywords: the DeepSpeed config file."""
    return {"deepspeed": plan.deepspeed} if plan.deepspeed else {}

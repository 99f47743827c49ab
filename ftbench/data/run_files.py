"""The JSON files of a Trainer output folder (trainer_state.json, trainer_log.jsonl, all_results.json,
adapter_config.json), read as hostile input: a size cap, a nesting cap, and a schema for every field ftbench
uses, so a folder that lies is one located line (`path: log_history[3].eval_loss: ...`) and exit 2, never a
traceback. Non-finite losses (NaN, Infinity: Python's json reads them) are kept as floats: the checkpoint
rule (`training.checkpoints.choose_checkpoint`) never picks them and names them. Nothing here imports torch.
"""

from __future__ import annotations

import json
import math
import os
import struct
from typing import Any

from ftbench.api.errors import UsageError
from ftbench.data.jsonlimits import MAX_NESTING, too_deep

MAX_JSON_BYTES = 256 * 1024 * 1024  # a trainer_state.json of a very long run is tens of MB
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024  # safetensors' own limit
NUMBER_KEYS = ("loss", "eval_loss", "learning_rate", "lr", "epoch")  # a number or null where present
STEP_KEYS = ("step", "current_steps", "total_steps", "global_step", "max_steps")  # a whole number >= 0


def read_json_file(path: str, *, missing: Any = None) -> Any:
    """The JSON value in ``path`` (``missing`` when there is no such file); UsageError naming the file and
    where it is wrong when it is too large, too deep or not JSON."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return missing
    if size > MAX_JSON_BYTES:
        raise UsageError(f"{path}: {size:,} bytes, more than the {MAX_JSON_BYTES:,} a run file may hold")
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: not UTF-8 text (byte {e.start}): not a Trainer's file") from None
    except OSError as e:
        raise UsageError(f"{path}: cannot read: {e.strerror}") from None
    return parse_json_text(text, path)


def parse_json_text(text: str, where: str) -> Any:
    """``text`` parsed, or UsageError `where:line:column: ...` (nesting past MAX_NESTING is refused first)."""
    deep = too_deep(text)
    if deep:
        line, column = _line_column(text, deep.pos)
        raise UsageError(f"{where}:{line}:{column}: nested more than {MAX_NESTING} levels: not a Trainer's file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{where}:{e.lineno}:{e.colno}: not JSON ({e.msg}); the run folder is damaged") from None
    except (ValueError, RecursionError) as e:  # a number too long to convert
        raise UsageError(f"{where}: not readable JSON ({str(e)[:120]}); the run folder is damaged") from None


def check_trainer_state(state: Any, where: str) -> dict:
    """A trainer_state.json value checked: an object whose log_history is a list of entries (each checked by
    `check_entry`) and whose step counts are whole numbers."""
    if not isinstance(state, dict):
        raise UsageError(f"{where}: expected a JSON object (a Trainer's state), got {_kind(state)}")
    _check_fields(state, where + ": ")
    history = state.get("log_history")
    if history is None:
        return state
    if not isinstance(history, list):
        raise UsageError(f"{where}: log_history: expected a list of log entries, got {_kind(history)}")
    for i, entry in enumerate(history):
        check_entry(entry, f"{where}: log_history[{i}]")
    return state


def check_entry(entry: Any, where: str, sep: str = ".") -> dict:
    """One log entry (a trainer_state log_history item or a trainer_log.jsonl row): an object whose step counts
    are whole numbers >= 0 and whose losses, learning rate and epoch are numbers or null."""
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: expected a JSON object (a log entry), got {_kind(entry)}")
    _check_fields(entry, where + sep)
    return entry


def check_results(results: Any, where: str) -> dict:
    """all_results.json: an object whose eval_loss, train_runtime and train_samples_per_second are numbers."""
    if results is None:
        return {}
    if not isinstance(results, dict):
        raise UsageError(f"{where}: expected a JSON object (the Trainer's results), got {_kind(results)}")
    for key in ("eval_loss", "train_runtime", "train_samples_per_second"):
        if key in results and not _is_number_or_null(results[key]):
            raise UsageError(f"{where}: {key}: expected a number, got {_kind(results[key])}")
    return results


def adapter_base(adapter_dir: str) -> str | None:
    """The base model an adapter folder says it was trained on (adapter_config.json's
    base_model_name_or_path), None when it names none."""
    path = os.path.join(adapter_dir, "adapter_config.json")
    config = read_json_file(path, missing={})
    if not isinstance(config, dict):
        raise UsageError(f"{path}: expected a JSON object (a peft adapter config), got {_kind(config)}")
    base = config.get("base_model_name_or_path")
    if base is not None and not isinstance(base, str):
        raise UsageError(f"{path}: base_model_name_or_path: expected a string, got {_kind(base)}")
    return base or None


def check_safetensors(path: str) -> int:
    """The number of parameters in ``path``; UsageError naming it unless its header parses and every tensor's
    bytes lie inside the file (a truncated or forged file: the loader would fail deep inside, or read past the
    end)."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise UsageError(f"{path}: {size} bytes: truncated (no safetensors header); train or copy it again")
        (length,) = struct.unpack("<Q", head)
        if length > min(MAX_SAFETENSORS_HEADER, size - 8):
            raise UsageError(f"{path}: its header claims {length:,} bytes of {size:,}: truncated or damaged")
        raw = fh.read(length)
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError):
        raise UsageError(f"{path}: the safetensors header is not JSON: damaged; train or copy it again") from None
    if not isinstance(header, dict):
        raise UsageError(f"{path}: the safetensors header is not an object: damaged")
    ends = [
        t["data_offsets"][1]
        for name, t in header.items()
        if name != "__metadata__" and isinstance(t, dict) and _offsets(t.get("data_offsets"))
    ]
    if len(ends) != len(header) - ("__metadata__" in header):
        raise UsageError(f"{path}: a tensor entry without valid data_offsets: damaged; train or copy it again")
    need = 8 + length + max(ends, default=0)
    if need > size:
        raise UsageError(f"{path}: {size:,} bytes where its tensors need {need:,}: truncated; train or copy it again")
    return sum(
        math.prod(t["shape"])
        for name, t in header.items()
        if name != "__metadata__" and isinstance(t.get("shape"), list) and all(isinstance(d, int) for d in t["shape"])
    )


def _offsets(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
        and value[0] <= value[1]
    )


def _check_fields(obj: dict, prefix: str) -> None:
    for key in STEP_KEYS:
        value = obj.get(key)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            raise UsageError(f"{prefix}{key}: expected a whole number >= 0, got {_kind(value)}")
    for key in NUMBER_KEYS:
        if key in obj and not _is_number_or_null(obj[key]):
            raise UsageError(f"{prefix}{key}: expected a number or null, got {_kind(obj[key])}")


def _is_number_or_null(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _kind(value: Any) -> str:
    """A value described for a message, cut short (it came from a file that may be hostile)."""
    text = json.dumps(value, ensure_ascii=True, default=str)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


def _line_column(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1

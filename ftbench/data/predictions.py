"""Prediction files: LLaMA-Factory's `generated_predictions.jsonl` rows, read and written in one place.

Reading (what `ftbench score` and `compare` accept), one JSON object per line (or a JSON array):

* LLaMA-Factory's ``generated_predictions.jsonl`` and ftbench's own prediction files: ``predict`` (the
  model output) and ``label`` (the reference); ``prompt`` and any other field are kept out of scoring;
* lm-eval's ``--log_samples`` files (``samples_<task>_*.jsonl``): ``resps[0][0]`` and ``target``.

Each row is checked against one declared schema (`PredictionRow`: ``predict`` and ``label`` strings, ``prompt`` a
string if present; numbers as labels for GSM8K); a missing or mistyped field is an input error located as
file:line [record].field (`p.jsonl:3 [2].label: error [bad-prediction-record] expected a string, got null`).

Writing (what `ftbench predict` and train-and-compare produce): rows (`prompt`, `predict`, `label`, plus `index`)
appended in input order, so a killed run resumes where it stopped, with a small `OUT.meta.json` sidecar saying
what the rows were made from. A row is on disk (flushed and fsynced) once its batch and every earlier row are
done; a restart reads the rows back, cuts off a half-written last line, and continues with the next index, so
every index appears exactly once, in order. A file made from other data, another model/adapter or other
generation settings is never extended.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Iterable, Optional, Union

import msgspec
import orjson

from ftbench.api.errors import InputError, UsageError
from ftbench.api.findings import Finding
from ftbench.data.schema import Finite, SchemaError, check
from ftbench.io import sha256_of_path, write_json

_LLAMAFACTORY_HINT = 'LLaMA-Factory\'s generated_predictions.jsonl has one {"prompt", "predict", "label"} per line'


class PredictionRow(msgspec.Struct):
    """A prediction row as `score` and `compare` read it; other fields are kept, unread."""

    predict: str
    label: str
    prompt: Optional[str] = None


class NumericLabelRow(PredictionRow):
    """GSM8K's rows: a label may be a number (read with str(), as lm-eval does)."""

    label: Union[str, int, Finite]


@dataclass
class PredictionFile:
    """The (predict, label) pairs of a file, with each record's index and line, in file order."""

    path: str
    predictions: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    lines: list[int | None] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    format: str = "llamafactory"

    def __len__(self) -> int:
        return len(self.predictions)


def _field_problem(path: str, line: int | None, index: int, name: str, message: str, hint: str) -> Finding:
    return Finding(
        "bad-prediction-record", message, hint=hint, file=path, line=line, record=index, path=f"[{index}].{name}"
    )


def _lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _row_of(
    value, path: str, line: int | None, index: int, numeric_labels: bool, problems: list[Finding]
) -> PredictionRow | None:
    """The row a record holds, checked against its schema (lm-eval's rows read as predict/label), or None after
    adding its problem."""
    if not isinstance(value, dict):
        problems.append(
            Finding(
                "bad-prediction-record",
                f"expected a JSON object, got {type(value).__name__}",
                hint=_LLAMAFACTORY_HINT,
                file=path,
                line=line,
                record=index,
                path=f"[{index}]",
            )
        )
        return None
    row, names = value, {}
    if "predict" not in value and "resps" in value and "target" in value:  # lm-eval --log_samples
        resps = value["resps"]
        while isinstance(resps, list) and resps:
            resps = resps[0]
        row, names = {"predict": resps, "label": value["target"]}, {"predict": "resps[0][0]", "label": "target"}
    try:
        checked = check(row, NumericLabelRow if numeric_labels else PredictionRow)
    except SchemaError as e:
        key = e.path.split(".")[0].split("[")[0]
        if e.reason == "required":
            fields = ", ".join(sorted(value)) or "none"
            problems.append(
                _field_problem(path, line, index, key, f"no '{key}' field (fields: {fields})", _LLAMAFACTORY_HINT)
            )
        else:
            problems.append(
                _field_problem(path, line, index, names.get(key, key), e.reason, "predictions and labels are text")
            )
        return None
    for key in ("predict", "label"):
        text = getattr(checked, key)
        if isinstance(text, str) and not text.isascii() and _lone_surrogate(text):
            problems.append(
                _field_problem(
                    path,
                    line,
                    index,
                    names.get(key, key),
                    "a lone surrogate (half of a \\ud83d-style escape pair) is not text any scorer can read",
                    "write the character itself, or both halves of its escape pair",
                )
            )
            return None
    return checked


def read_predictions(path: str, *, numeric_labels: bool = False) -> PredictionFile:
    """Read a prediction file; raise InputError (one line, with location) if any record is unusable.

    ``numeric_labels``: accept numbers as labels (GSM8K answers), converted with str() as lm-eval does.
    """
    from ftbench.data.reader import read_records

    findings: list[Finding] = []
    problems: list[Finding] = []
    out = PredictionFile(path)
    for record in read_records(path, findings):
        row = _row_of(record.value, path, record.line, record.index, numeric_labels, problems)
        if row is None:
            continue
        if out.indices == [] and "resps" in record.value and "predict" not in record.value:
            out.format = "lm-eval-samples"
        out.predictions.append(row.predict)
        out.references.append(str(row.label))
        out.prompts.append(row.prompt or "")
        out.lines.append(record.line)
        out.indices.append(record.index)
    # a BOM is harmless here (the reader strips it); any other syntax finding means a record was lost or
    # guessed at, and a score over a guessed file is not a score to trust
    errors = [f for f in findings if f.severity == "error" and f.code != "utf8-bom"] + problems
    errors.sort(key=lambda f: (f.line or 0, f.record or 0))
    if errors:
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise InputError(errors[0].one_line() + more)
    if not out.predictions:
        raise InputError(f"{path}: no records to score — {_LLAMAFACTORY_HINT}")
    return out


def check_path(path: str) -> None:
    """UsageError (exit 2) for a path that is not a readable file."""
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file")
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a directory; give a prediction file such as generated_predictions.jsonl")


def read_prediction_rows(path: str) -> list[dict]:
    """Prediction rows (prompt/predict/label) of a generated_predictions.jsonl; a bad row raises with file:line."""
    pf = read_predictions(path)
    return [
        {"prompt": prompt, "predict": pred, "label": label}
        for prompt, pred, label in zip(pf.prompts, pf.predictions, pf.references)
    ]


# --- writing ---------------------------------------------------------------------------------------------
META_SUFFIX = ".meta.json"
META_KIND = "ftbench-predict"
# meta fields that must match for a run to extend an existing file (batch size, limit, device do not change rows)
RESUME_KEYS = ("data_sha256", "model", "adapter", "adapter_sha256", "format", "generation", "engine")
_RESUME_DEFAULTS = {"engine": "local"}  # files written before engines existed


def meta_path(out: str) -> str:
    return out + META_SUFFIX


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
            raise UsageError(
                f"{out}:{lineno}: not a JSON row; it was not written by ftbench predict, or was "
                "edited (delete it or pass --overwrite)"
            ) from None
        if not isinstance(row, dict) or row.get("index") != count:
            raise UsageError(
                f"{out}:{lineno}: expected the row with index {count}, found "
                f"{row.get('index') if isinstance(row, dict) else row!r} (delete it or pass --overwrite)"
            )
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
        raise UsageError(
            f"{out} exists but has no {os.path.basename(path)}, so it was not written by ftbench "
            "predict; choose another -o or pass --overwrite"
        )
    try:
        with open(path, encoding="utf-8") as fh:
            old = json.load(fh)
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: unreadable ({e}); pass --overwrite to start again") from None
    if not isinstance(old, dict) or old.get("kind") != META_KIND:
        raise UsageError(f"{path}: not an ftbench predict sidecar; pass --overwrite to start again")
    for key in RESUME_KEYS:
        if old.get(key, _RESUME_DEFAULTS.get(key)) != meta.get(key, _RESUME_DEFAULTS.get(key)):
            what = {
                "data_sha256": "a different data file (its contents changed)",
                "model": "another model",
                "adapter": "another adapter",
                "adapter_sha256": "a different adapter (its weights changed)",
                "format": "another --format",
                "generation": "other generation settings",
                "engine": "another --engine (or --api)",
            }[key]
            raise UsageError(
                f"{out} was made from {what}: {key} was {_short(old.get(key, _RESUME_DEFAULTS.get(key)))}"
                f", now {_short(meta.get(key, _RESUME_DEFAULTS.get(key)))}; use another -o, or "
                "--overwrite to start again"
            )


def _short(value) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def write_meta(out: str, meta: dict) -> None:
    write_json(meta_path(out), meta)


def prediction_meta(
    *,
    data: str,
    data_sha256: str,
    fmt: str,
    model: str,
    adapter: str | None,
    params,
    cutoff_len: int | None,
    engine: str,
    template=None,
) -> dict:
    """The sidecar of a prediction file: what its rows are made from (the RESUME_KEYS must match to extend it)
    and how. ``params``: the `GenerationParams`; ``template``: the named chat template, if any. `ftbench
    predict` and train-and-compare describe their files with it, and resume them with `prepare_output`."""
    import time

    from ftbench import __version__

    generation = {
        "max_new_tokens": params.max_new_tokens,
        "do_sample": params.do_sample,
        "stop": list(params.stop),
        "cutoff_len": cutoff_len,
    }
    if template is not None:  # only when set, so files made before templates existed still resume
        generation.update(template=template.name, default_system=template.default_system)
    if params.do_sample:
        generation.update(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k, seed=params.seed)
    model_id = os.path.abspath(os.path.expanduser(model)) if os.path.isdir(os.path.expanduser(model)) else model
    return {
        "kind": META_KIND,
        "ftbench_version": __version__,
        "data": data,
        "data_sha256": data_sha256,
        "format": fmt,
        "model": model_id,
        "adapter": os.path.abspath(adapter) if adapter else None,
        "adapter_sha256": adapter_sha256(adapter),
        "generation": generation,
        "engine": engine,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def samples_sha256(samples) -> str:
    """sha256 of what a list of `Sample`s asks (turns, system prompt, tools): the identity of a data set that was
    not read from one file (a run's held-out split)."""
    import hashlib

    h = hashlib.sha256()
    for s in samples:
        h.update(orjson.dumps([s.turns, s.system, s.tools], default=str) + b"\n")
    return h.hexdigest()


def prepare_output(out: str, meta: dict, *, overwrite: bool = False) -> ExistingRows:
    """The one resume mechanism for prediction files: create ``out`` (empty) with its sidecar, or, when it has
    rows, refuse unless its sidecar matches ``meta`` (`check_resumable`), cut off a half-written last line and
    keep the first run's creation time. Returns the rows already there (an empty file holds nothing to protect,
    e.g. one left by a run whose model failed to load: it starts afresh)."""
    if os.path.isdir(out):
        raise UsageError(f"-o {out}: is a folder; give a .jsonl file path")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    if overwrite or not os.path.exists(out) or os.path.getsize(out) == 0:
        write_meta(out, meta)
        with open(out, "wb"):
            pass
        return ExistingRows(0, 0)
    check_resumable(out, meta)
    existing = read_existing(out)
    try:
        with open(meta_path(out), encoding="utf-8") as fh:
            meta["created"] = json.load(fh).get("created") or meta.get("created")
    except (OSError, ValueError):
        pass
    write_meta(out, meta)
    return existing


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

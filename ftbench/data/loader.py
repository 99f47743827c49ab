"""The one way every ftbench command reads SFT data: files of any type LLaMA-Factory reads, folders of them,
hub datasets, or a LLaMA-Factory `dataset_info.json`.

`iter_samples` streams `Sample`s and reports every problem as a Finding; `load_samples` is the strict
variant for training and prediction (it raises on the first error, with its location).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterator

from ftbench.api.errors import InputError
from ftbench.api.findings import Finding
from ftbench.data.formats import (
    OPENAI_TAGS,
    SHAREGPT_TAGS,
    AlpacaFormat,
    ConversationFormat,
    Sample,
    replace_surrogates,
)
from ftbench.data.kinds import PretrainFormat
from ftbench.data.reader import RawRecord, peek_records, read_records
from ftbench.data.record import Windows
from ftbench.data.sources import data_files, file_type, needs_row_count, split_windows, where
from ftbench.data.spec import DatasetSpec, accessed_columns, reader_for, sft_refusal

DETECT_WINDOW = 200  # records looked at to detect the format and check that mapped columns exist
__all__ = [
    "DatasetSpec",
    "FilePlan",
    "FormatChoice",
    "plan_files",
    "iter_file_samples",
    "iter_samples",
    "load_samples",
    "detect_format",
    "reader_for",
]


@dataclass
class FormatChoice:
    """The format a file is read with, and why (shown to the user: auto-detection must explain itself)."""

    reader: object  # a format reader: AlpacaFormat, ConversationFormat, or one of data.kinds
    reason: str


def detect_format(records: list[RawRecord]) -> tuple[AlpacaFormat | ConversationFormat | None, str]:
    """Guess the format from the first records' keys and role values; say what was chosen and why."""
    dicts = [r.value for r in records if isinstance(r.value, dict)]
    if not dicts:
        return None, "no JSON objects among the first records"
    n = len(dicts)
    votes = {"sharegpt": 0, "messages": 0, "alpaca": 0, "qa": 0}
    for d in dicts:
        if isinstance(d.get("conversations"), list):
            votes["sharegpt"] += 1
        elif isinstance(d.get("messages"), list):
            votes["messages"] += 1
        elif "instruction" in d or "output" in d:
            votes["alpaca"] += 1
        elif "question" in d and "answer" in d:
            votes["qa"] += 1
    kind, count = max(votes.items(), key=lambda kv: kv[1])
    if count == 0:
        keys = sorted({k for d in dicts[:20] for k in d if isinstance(k, str)})[:8]
        return None, f"records have keys {', '.join(map(repr, keys))}"
    share = f"{count} of the first {n} records"
    if kind == "alpaca":
        return AlpacaFormat(), f"alpaca: {share} have 'instruction'/'output'"
    if kind == "qa":
        return (
            AlpacaFormat({"prompt": "question", "query": None, "response": "answer", "history": None}),
            f"alpaca with columns prompt=question, response=answer (GSM8K style): {share} have them",
        )
    column = "conversations" if kind == "sharegpt" else "messages"
    turns = [t for d in dicts if isinstance(d.get(column), list) for t in d[column][:4] if isinstance(t, dict)]
    role_key = "role" if sum("role" in t for t in turns) > sum("from" in t for t in turns) else "from"
    roles = [t.get(role_key) for t in turns]
    openai_roles = sum(r in ("user", "assistant") for r in roles) > sum(r in ("human", "gpt") for r in roles)
    if role_key == "role" or openai_roles:
        tags = (
            dict(OPENAI_TAGS)
            if role_key == "role"
            else {**SHAREGPT_TAGS, "user_tag": "user", "assistant_tag": "assistant"}
        )
        name = "openai" if role_key == "role" else "sharegpt"
        reason = (
            f"{name}: {share} have a '{column}' list whose turns use '{tags['role_tag']}' with roles "
            f"{tags['user_tag']!r}/{tags['assistant_tag']!r}"
        )
        return ConversationFormat(name, {"messages": column}, tags), reason
    return (
        ConversationFormat("sharegpt", {"messages": column}),
        f"sharegpt: {share} have a '{column}' list of from/value turns",
    )


@dataclass
class FilePlan:
    """One data file (or hub dataset) to read and the format to read it with (None: unreadable format, syntax
    check only)."""

    path: str
    name: str  # as shown in findings
    choice: FormatChoice | None
    dataset: str | None = None  # its dataset_info name, if any
    windows: Windows | None = None  # the rows its split selects (None: all)
    spec: DatasetSpec | None = None

    @property
    def local(self) -> bool:
        """True for a file on disk (False for a hub or script dataset read through `datasets`)."""
        return self.spec is None or self.spec.load_from == "file"


def plan_files(spec: DatasetSpec, findings: list[Finding]) -> list[FilePlan]:
    """Resolve a dataset to its files (or its hub dataset) and choose each one's format from its first records."""
    if spec.load_from != "file":
        from ftbench.data import hub

        if not hub.available(spec, findings):
            return []
        name = hub.display_name(spec)
        head = hub.peek(spec, DETECT_WINDOW)
        return [FilePlan(spec.path, name, _choose(spec, head, name, findings, complete=True), spec.name, spec=spec)]
    plans = []
    files = data_files(spec, findings)
    for path, windows in zip(files, _file_windows(spec, files)):
        if windows == []:
            continue  # the split selects none of its rows
        name = os.path.relpath(path) if not os.path.isabs(spec.path) else path
        head = peek_records(path, DETECT_WINDOW)
        complete = len(head) < DETECT_WINDOW or file_type(path) not in ("json", None)  # every column seen
        plans.append(
            FilePlan(path, name, _choose(spec, head, name, findings, complete=complete), spec.name, windows, spec)
        )
    return plans


def _file_windows(spec: DatasetSpec, files: list[str]) -> list[Windows | None]:
    """Each file's rows selected by the dataset's split (a slice of all files' rows, in order; the terms of
    a split such as train[:10]+train[-10:] are read as the union of their rows)."""
    if not files or not needs_row_count(spec.split):
        return [None] * len(files)
    sizes = [count_records(path) for path in files]
    merged: list[list[int]] = []
    for w in sorted((w.start, w.end) for w in split_windows(spec.split, sum(sizes)) or [] if w.end > w.start):
        if merged and w[0] <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], w[1])
        else:
            merged.append(list(w))
    out, first = [], 0
    for size in sizes:
        out.append(
            [(max(a, first) - first, min(b, first + size) - first) for a, b in merged if a < first + size and b > first]
        )
        first += size
    return out


def count_records(path: str) -> int:
    """The number of records (rows) in a data file, for split slices and sharding."""
    kind = file_type(path)
    if kind in ("parquet", "arrow"):
        from ftbench.data.columnar import row_count

        return row_count(path, kind)
    return sum(1 for _ in read_records(path, []))


def iter_file_samples(
    plan: FilePlan,
    findings: list[Finding],
    *,
    on_progress: Callable[[int], None] | None = None,
    byte_range: tuple[int, int] | None = None,
    counts: dict | None = None,
    rows: tuple[int, int] | None = None,
) -> Iterator[Sample]:
    """The valid samples of one planned file (or of one byte range or row range of it); problems go to
    ``findings``."""
    windows = plan.windows if rows is None else [rows]
    if plan.local:
        records = read_records(
            plan.path,
            findings,
            display_name=plan.name,
            on_progress=on_progress,
            byte_range=byte_range,
            counts=counts,
            windows=windows,
        )
    else:
        from ftbench.data import hub

        records = hub.read_hub_records(plan.spec, plan.name, findings, counts=counts)
    if plan.choice is None:
        for _ in records:  # still read to the end so every syntax error is reported
            pass
        return
    convert = plan.choice.reader.convert
    name = plan.name
    for rec in records:
        sample = convert(name, rec, findings)
        if sample is not None:
            yield sample


def iter_samples(spec: DatasetSpec, findings: list[Finding]) -> Iterator[Sample]:
    """Stream the valid samples of a dataset; every problem (syntax, record, column) goes to ``findings``."""
    for plan in plan_files(spec, findings):
        yield from iter_file_samples(plan, findings)


def _choose(
    spec: DatasetSpec, head: list[RawRecord], name: str, findings: list[Finding], *, complete: bool
) -> FormatChoice | None:
    if spec.formatting or spec.declared:
        reader = reader_for(spec)
        how = f"declared in {spec.info_file}" if spec.declared else "given with --format"
        kind = f", {spec.describe()}" if spec.kind != "sft" or spec.media_columns else ""
        choice = FormatChoice(reader, f"{reader.name}{kind} ({how}){_sampling(spec)}")
    elif file_type(name) == "text":
        choice = FormatChoice(PretrainFormat(), "text: one pretraining sample per line (a .txt file)")
    else:
        keys = {k for r in head if isinstance(r.value, dict) for k in r.value}
        if {"chosen", "rejected"} <= keys:  # LLaMA-Factory's dpo_en_demo.json, validated as a plain file
            findings.append(
                Finding(
                    "preference-data",
                    "the records carry 'chosen' and 'rejected' answers: this is preference data (DPO/RM), not SFT data",
                    hint='register it in dataset_info.json with "ranking": true and validate it with '
                    "--dataset-info FILE --dataset NAME (train-and-compare trains SFT)",
                    file=name,
                    line=head[0].line,
                    record=None if head[0].line else head[0].index,
                )
            )
            return None
        reader, why = detect_format(head)
        if reader is None:
            if head:
                text_only = keys == {"text"}
                findings.append(
                    Finding(
                        "unknown-format",
                        f"cannot tell the data format: {why}",
                        hint='pretraining text (one "text" column): LLaMA-Factory reads it for stage: pt, declared '
                        'in dataset_info.json as "columns": {"prompt": "text"}; SFT data needs alpaca, sharegpt or '
                        "OpenAI records"
                        if text_only
                        else "expected alpaca (instruction/input/output), sharegpt (conversations) or "
                        "OpenAI (messages); pass --format",
                        file=name,
                        line=head[0].line,
                        record=None if head[0].line else head[0].index,
                    )
                )
            return None
        choice = FormatChoice(reader, f"{why} (auto-detected)")
        if isinstance(reader, ConversationFormat) and reader.name == "sharegpt" and reader.tags["user_tag"] != "human":
            findings.append(
                Finding(
                    "nondefault-role-tags",
                    f"sharegpt turns use roles {reader.tags['user_tag']!r}/"
                    f"{reader.tags['assistant_tag']!r}, not LLaMA-Factory's default 'human'/'gpt'",
                    severity="warning",
                    hint='declare them in dataset_info.json: "tags": {"user_tag": "user", '
                    '"assistant_tag": "assistant"}, '
                    "or LLaMA-Factory drops every conversation",
                    file=name,
                    line=head[0].line if head else None,
                )
            )
    if not _columns_present(spec, choice.reader, head, name, findings, complete):
        return None  # a wrong mapping: said once above; per-record errors would only repeat it
    return choice


def _sampling(spec: DatasetSpec) -> str:
    """What split and num_samples do to the rows, for the file's reason line."""
    parts = [f"split {spec.split}"] if spec.split != "train" else []
    if spec.num_samples is not None:
        parts.append(
            f"num_samples {spec.num_samples}: LLaMA-Factory trains on {spec.num_samples} rows drawn at "
            "random from these (with repeats when there are fewer)"
        )
    return "; " + "; ".join(parts) if parts else ""


def _columns_present(spec, reader, head: list[RawRecord], name: str, findings: list[Finding], complete: bool) -> bool:
    """A mapped column absent from every one of the first records is a mapping mistake: say it once, at the
    dataset_info entry, instead of once per record. Columns LLaMA-Factory reads from every row but a record
    need not fill (system, history, ...) are reported only when every column of the file was seen."""
    dicts = [r.value for r in head if isinstance(r.value, dict)]
    if not dicts:
        return True
    required = reader.required_columns()
    optional = [c for c in accessed_columns(spec) if c not in required] if spec.declared and complete else []
    seen = {k for d in dicts for k in d if isinstance(k, str)}
    keys = sorted(seen)[:8]
    missing = [c for c in dict.fromkeys(required + optional) if c not in seen]
    if spec.declared and seen == {"text"} and missing:
        missing = missing[:1]  # a .txt file registered without columns: one finding says how to declare it
    ok = True
    for column in missing:
        scope = f"in none of the {'' if complete else 'first '}{len(dicts)} records"
        message = f"column '{column}' is {scope} of {name} (they have {', '.join(map(repr, keys))})"
        if spec.declared:
            message += f"; LLaMA-Factory stops with KeyError: '{column}'"
        hint = (
            'fix "columns" in dataset_info.json'
            if spec.declared
            else 'pass --format, or register the file in dataset_info.json with the right "columns"'
        )
        if spec.declared and seen == {"text"}:
            hint = 'pretraining text is declared as "columns": {"prompt": "text"}'
        elif spec.declared and column not in required:
            hint = f"add '{column}' to the records, or remove it from \"columns\" (it is mapped, or a default)"
        located = where(spec) if spec.declared else dict(file=name, line=1)
        if spec.declared:
            located["path"] = f"{spec.name}.columns"
        findings.append(Finding("dataset-column-missing", message, hint=hint, **located))
        ok = False
    return ok


def load_samples(spec: DatasetSpec | str, *, formatting: str | None = None) -> list[Sample]:
    """All samples of an SFT dataset, or InputError with the first problem's location (for train/predict); data
    of another kind (preference, KTO, pretraining text, multimodal) is refused, saying what it is."""
    if isinstance(spec, str):
        spec = DatasetSpec(spec, formatting=formatting)
    findings: list[Finding] = []
    samples: list[Sample] = []
    for plan in plan_files(spec, findings):
        refusal = (
            sft_refusal(getattr(plan.choice.reader, "kind", "sft"), bool(spec.media_columns), plan.name)
            if plan.choice
            else None
        )
        if refusal:
            raise InputError(f"{refusal} ({plan.choice.reason})")
        samples.extend(iter_file_samples(plan, findings))
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        more = f" (and {len(errors) - 1} more errors: run `ftbench validate {spec.path}`)" if len(errors) > 1 else ""
        raise InputError(errors[0].one_line() + more)
    unread = next((f for f in findings if f.severity == "note"), None)  # a hub dataset that is not available
    if unread:
        raise InputError(f"{unread.location()}: cannot read dataset '{spec.name}': {unread.message} — {unread.hint}")
    if not samples:
        raise InputError(f"{spec.path}: no records")
    return [replace_surrogates(s) for s in samples]  # what a tokenizer can encode

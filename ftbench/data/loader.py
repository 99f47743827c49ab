"""The one way every ftbench command reads SFT data: files or a LLaMA-Factory `dataset_info.json`.

`iter_samples` streams `Sample`s and reports every problem as a Finding; `load_samples` is the strict
variant for training and prediction (it raises on the first error, with its location).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Iterator

from ftbench.api.errors import InputError, UsageError
from ftbench.api.findings import Finding
from ftbench.data.formats import (OPENAI_TAGS, SHAREGPT_TAGS, AlpacaFormat, ConversationFormat, Sample,
                                  replace_surrogates)
from ftbench.data.reader import RawRecord, peek_records, read_records

DETECT_WINDOW = 200  # records looked at to detect the format and check that mapped columns exist
DATA_SUFFIXES = (".json", ".jsonl", ".ndjson")


@dataclass
class DatasetSpec:
    """Where one dataset's records are and how to read them; from the command line or a dataset_info entry."""

    path: str
    name: str | None = None
    formatting: str | None = None  # None = detect
    columns: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)
    info_file: str | None = None  # the dataset_info.json that declared it, and the entry's line
    info_line: int | None = None

    @property
    def declared(self) -> bool:
        return self.info_file is not None


@dataclass
class FormatChoice:
    """The format a file is read with, and why (shown to the user: auto-detection must explain itself)."""

    reader: AlpacaFormat | ConversationFormat
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
        return (AlpacaFormat({"prompt": "question", "query": None, "response": "answer", "history": None}),
                f"alpaca with columns prompt=question, response=answer (GSM8K style): {share} have them")
    column = "conversations" if kind == "sharegpt" else "messages"
    turns = [t for d in dicts if isinstance(d.get(column), list) for t in d[column][:4] if isinstance(t, dict)]
    role_key = "role" if sum("role" in t for t in turns) > sum("from" in t for t in turns) else "from"
    roles = [t.get(role_key) for t in turns]
    openai_roles = sum(r in ("user", "assistant") for r in roles) > sum(r in ("human", "gpt") for r in roles)
    if role_key == "role" or openai_roles:
        tags = dict(OPENAI_TAGS) if role_key == "role" else {**SHAREGPT_TAGS, "user_tag": "user",
                                                              "assistant_tag": "assistant"}
        name = "openai" if role_key == "role" else "sharegpt"
        reason = (f"{name}: {share} have a '{column}' list whose turns use '{tags['role_tag']}' with roles "
                  f"{tags['user_tag']!r}/{tags['assistant_tag']!r}")
        return ConversationFormat(name, {"messages": column}, tags), reason
    return (ConversationFormat("sharegpt", {"messages": column}),
            f"sharegpt: {share} have a '{column}' list of from/value turns")


def reader_for(spec: DatasetSpec) -> AlpacaFormat | ConversationFormat:
    """The format reader a declared or forced format asks for (LLaMA-Factory semantics: no guessing)."""
    fmt = spec.formatting or "alpaca"
    if fmt == "alpaca":
        return AlpacaFormat(spec.columns)
    if fmt == "openai" or (fmt == "sharegpt" and spec.tags.get("role_tag") == "role" and not spec.declared):
        return ConversationFormat("openai", spec.columns, spec.tags)
    return ConversationFormat("sharegpt", spec.columns, spec.tags)


@dataclass
class FilePlan:
    """One data file to read and the format to read it with (None: unreadable format, syntax check only)."""

    path: str
    name: str  # as shown in findings
    choice: FormatChoice | None
    dataset: str | None = None  # its dataset_info name, if any


def plan_files(spec: DatasetSpec, findings: list[Finding]) -> list[FilePlan]:
    """Resolve a dataset to its files and choose each file's format from its first records."""
    plans = []
    for path in _data_files(spec, findings):
        name = os.path.relpath(path) if not os.path.isabs(spec.path) else path
        plans.append(FilePlan(path, name, _choose(spec, peek_records(path, DETECT_WINDOW), name, findings), spec.name))
    return plans


def iter_file_samples(plan: FilePlan, findings: list[Finding], *, on_progress: Callable[[int], None] | None = None,
                      byte_range: tuple[int, int] | None = None, counts: dict | None = None) -> Iterator[Sample]:
    """The valid samples of one planned file (or one byte range of it); problems go to ``findings``."""
    records = read_records(plan.path, findings, display_name=plan.name, on_progress=on_progress,
                           byte_range=byte_range, counts=counts)
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


def _choose(spec: DatasetSpec, head: list[RawRecord], name: str, findings: list[Finding]) -> FormatChoice | None:
    if spec.formatting:
        reader = reader_for(spec)
        how = f"declared in {spec.info_file}" if spec.declared else "given with --format"
        choice = FormatChoice(reader, f"{reader.name} ({how})")
    else:
        reader, why = detect_format(head)
        if reader is None:
            if head:
                findings.append(Finding("unknown-format", f"cannot tell the data format: {why}",
                                        hint="expected alpaca (instruction/input/output), sharegpt (conversations) or "
                                        "OpenAI (messages); pass --format", file=name, line=head[0].line))
            return None
        choice = FormatChoice(reader, f"{why} (auto-detected)")
        if isinstance(reader, ConversationFormat) and reader.name == "sharegpt" and reader.tags["user_tag"] != "human":
            findings.append(Finding(
                "nondefault-role-tags", f"sharegpt turns use roles {reader.tags['user_tag']!r}/"
                f"{reader.tags['assistant_tag']!r}, not LLaMA-Factory's default 'human'/'gpt'", severity="warning",
                hint='declare them in dataset_info.json: "tags": {"user_tag": "user", "assistant_tag": "assistant"}, '
                "or LLaMA-Factory drops every conversation", file=name, line=head[0].line if head else None))
    if not _columns_present(spec, choice.reader, head, name, findings):
        return None  # a wrong mapping: said once above; per-record errors would only repeat it
    return choice


def _columns_present(spec, reader, head: list[RawRecord], name: str, findings: list[Finding]) -> bool:
    """A mapped column absent from every one of the first records is a mapping mistake: say it once, at the
    dataset_info entry, instead of once per record."""
    dicts = [r.value for r in head if isinstance(r.value, dict)]
    ok = True
    for column in reader.required_columns() if dicts else ():
        if not any(column in d for d in dicts):
            keys = sorted({k for d in dicts[:20] for k in d if isinstance(k, str)})
            where = dict(file=spec.info_file, line=spec.info_line) if spec.declared else dict(file=name, line=1)
            findings.append(Finding("dataset-column-missing",
                                    f"column '{column}' is in none of the first {len(dicts)} records of {name}"
                                    f" (they have {', '.join(map(repr, keys[:8]))})",
                                    hint="fix \"columns\" in dataset_info.json" if spec.declared else "pass --format, "
                                    "or register the file in dataset_info.json with the right \"columns\"",
                                    path=f"{spec.name}.columns" if spec.name else None, **where))
            ok = False
    return ok


def _data_files(spec: DatasetSpec, findings: list[Finding]) -> list[str]:
    path = spec.path
    if os.path.isdir(path):  # LLaMA-Factory accepts a folder of data files
        files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.lower().endswith(DATA_SUFFIXES))
        if not files:
            findings.append(Finding("dataset-file-missing", f"folder {path} holds no .json/.jsonl files",
                                    file=spec.info_file or path, line=spec.info_line,
                                    path=f"{spec.name}.file_name" if spec.name else None))
        return files
    if not os.path.exists(path):
        if spec.declared:
            findings.append(Finding("dataset-file-missing", f"dataset '{spec.name}' points at {path}, which does not "
                                    "exist", hint="file_name is relative to the folder of dataset_info.json",
                                    file=spec.info_file, line=spec.info_line, path=f"{spec.name}.file_name"))
            return []
        raise UsageError(f"{path}: no such file")
    return [path]


def load_samples(spec: DatasetSpec | str, *, formatting: str | None = None) -> list[Sample]:
    """All samples of a dataset, or InputError with the first problem's location (for train/predict)."""
    if isinstance(spec, str):
        spec = DatasetSpec(spec, formatting=formatting)
    findings: list[Finding] = []
    samples = list(iter_samples(spec, findings))
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        more = f" (and {len(errors) - 1} more errors: run `ftbench validate {spec.path}`)" if len(errors) > 1 else ""
        raise InputError(errors[0].one_line() + more)
    if not samples:
        raise InputError(f"{spec.path}: no records")
    return [replace_surrogates(s) for s in samples]  # what a tokenizer can encode

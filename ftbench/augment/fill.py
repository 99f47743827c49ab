"""Fill `{{name}}`-style template slots in every text field of a data file, keeping its format and layout.

Placeholders are found with the validator's own regex (`quality.text.PLACEHOLDER`), so what `validate` warns
about is exactly what `fill` can see: `{{ name }}` slots with a `--set` value are filled, every other match
(`{{model}}` without a value, `<name>`, `[name]`, `【名字】`...) is reported with its record and field path.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from ftbench.api.errors import InputError, UsageError
from ftbench.api.findings import Finding
from ftbench.data.reader import is_jsonl, read_records
from ftbench.data.sources import file_type
from ftbench.io import atomic_write_text, atomic_write_with
from ftbench.quality.text import PLACEHOLDER, find_placeholders

# a --set key: anything a {{ }} slot can hold (the regex allows up to 40 characters without braces or newlines)
_KEY = re.compile(r"[^{}\s=]{1,40}")


def parse_assignments(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`--set KEY=VALUE` options as a dict; malformed or repeated keys are usage errors."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        key = key.strip()
        if not eq:
            raise UsageError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set name=Archer")
        if not _KEY.fullmatch(key):
            raise UsageError(
                f"--set {pair!r}: the key must be 1-40 characters without spaces, braces or '=' (it fills {{{{KEY}}}})"
            )
        if key in values:
            raise UsageError(f"--set {key}: given twice ({values[key]!r} and {value!r})")
        values[key] = value
    if not values:
        raise UsageError("give at least one --set KEY=VALUE")
    return values


def slot_name(placeholder: str) -> str | None:
    """`{{ name }}` -> "name"; None for the other placeholder shapes (`<name>`, `[name]`, ...)."""
    if placeholder.startswith("{{") and placeholder.endswith("}}"):
        return placeholder[2:-2].strip()
    return None


@dataclass
class Unfilled:
    """A placeholder still in the data after filling, with where it is."""

    record: int
    path: str  # field path as validate prints it: [3].conversations[1].value
    placeholder: str
    line: int | None = None


@dataclass
class FillReport:
    """What `fill` did: slots filled per key, placeholders left, keys never used."""

    records: int = 0
    filled: dict[str, int] = field(default_factory=dict)
    fields_changed: int = 0
    unfilled: list[Unfilled] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "records": self.records,
            "filled": self.filled,
            "fields_changed": self.fields_changed,
            "unfilled": [
                {"record": u.record, "line": u.line, "path": u.path, "placeholder": u.placeholder}
                for u in self.unfilled
            ],
            "unused_keys": self.unused,
        }


class PlaceholderFiller:
    """Replaces `{{key}}` (any spacing inside the braces) with its value in every string of a JSON value."""

    def __init__(self, values: dict[str, str]):
        self.values = values
        self.report = FillReport(filled={k: 0 for k in values})

    def fill_text(self, text: str) -> str:
        if "{{" not in text:  # the common case: nothing to fill
            return text

        def replace(m: re.Match) -> str:
            name = slot_name(m.group())
            if name in self.values:
                self.report.filled[name] += 1
                return self.values[name]
            return m.group()

        return PLACEHOLDER.sub(replace, text)

    def fill_value(self, value: Any, path: str, record: int, line: int | None) -> Any:
        """The value with every string filled (dict keys are left alone); remembers what stays unfilled."""
        if isinstance(value, str):
            filled = self.fill_text(value)
            if filled != value:
                self.report.fields_changed += 1
            for p in find_placeholders(filled):
                self.report.unfilled.append(Unfilled(record, path, p, line))
            return filled
        if isinstance(value, dict):
            return {k: self.fill_value(v, f"{path}.{k}", record, line) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill_value(v, f"{path}[{i}]", record, line) for i, v in enumerate(value)]
        return value

    def finish(self) -> FillReport:
        self.report.unused = [k for k, n in self.report.filled.items() if n == 0]
        return self.report


@dataclass
class DataFile:
    """A data file's records and how it was laid out (JSON Lines, a JSON array with some indent, or another file
    type LLaMA-Factory reads, with its schema for Parquet/Arrow)."""

    records: list[Any]
    lines: list[int | None]
    jsonl: bool
    indent: int | str | None  # of a JSON array: 2, 4, "\t", or None for one line
    trailing_newline: bool
    file_type: str = "json"  # json, parquet, arrow, csv or text
    schema: Any = None  # the pyarrow schema of a Parquet/Arrow file

    def describe(self) -> str:
        """The layout, for messages: "JSON Lines", "JSON array", "Parquet", ..."""
        if self.file_type == "json":
            return "JSON Lines" if self.jsonl else "JSON array"
        return {"parquet": "Parquet", "arrow": "Arrow", "csv": "CSV", "text": "text"}[self.file_type]


def read_data_file(path: str) -> DataFile:
    """Every record of a data file; a file with errors is refused (its layout cannot be kept)."""
    findings: list[Finding] = []
    rows = list(read_records(path, findings))
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InputError(f"{errors[0].one_line()}{more}; fix the file first (ftbench validate {path})")
    kind = file_type(path) or "json"
    if kind != "json":
        schema = None
        if kind in ("parquet", "arrow"):
            from ftbench.data.columnar import read_schema

            schema = read_schema(path, kind)
        return DataFile([r.value for r in rows], [r.line for r in rows], False, None, True, kind, schema)
    jsonl = is_jsonl(path)
    with open(path, "rb") as fh:
        text = fh.read().decode("utf-8", errors="replace").lstrip("\ufeff")
    indent = None if jsonl else _array_indent(text)
    return DataFile([r.value for r in rows], [r.line for r in rows], jsonl, indent, text.endswith("\n"))


def _array_indent(text: str) -> int | str | None:
    """The indent unit of a JSON array: the leading whitespace of the first line after the `[`."""
    start = text.find("[")
    for line in text[start + 1 :].split("\n")[1:]:
        if line.strip():
            ws = line[: len(line) - len(line.lstrip())]
            if not ws:
                return 0
            return "\t" if ws.startswith("\t") else len(ws)
    return None


def render_data_file(data: DataFile, records: list[Any]) -> str:
    """The records laid out as the input was: one JSON Lines record a line, or the array with its indent."""
    if data.jsonl:
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    text = json.dumps(records, ensure_ascii=False, indent=data.indent)
    return text + "\n" if data.trailing_newline else text


def write_data_file(path: str, data: DataFile, records: list[Any]) -> None:
    """Write the records to ``path`` (atomically) in the input's file type and layout."""
    if data.file_type == "json":
        atomic_write_text(path, render_data_file(data, records))
    elif data.file_type in ("parquet", "arrow"):
        from ftbench.data.columnar import write_columnar

        atomic_write_with(path, lambda tmp: write_columnar(tmp, data.file_type, records, data.schema))
    else:
        from ftbench.data import textfiles

        write = textfiles.write_csv if data.file_type == "csv" else textfiles.write_text
        atomic_write_with(path, lambda tmp: write(tmp, records))


def same_file(a: str, b: str) -> bool:
    """True if the paths name one file (after symlinks, and as hard links)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def fill_file(data_path: str, values: dict[str, str]) -> tuple[DataFile, list[Any], FillReport]:
    """Read DATA and fill it; returns the file layout, the filled records and the report (nothing is written)."""
    data = read_data_file(data_path)
    filler = PlaceholderFiller(values)
    records = [filler.fill_value(r, f"[{i}]", i, line) for i, (r, line) in enumerate(zip(data.records, data.lines))]
    report = filler.finish()
    report.records = len(records)
    return data, records, report

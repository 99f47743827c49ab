"""Read raw records from every file type LLaMA-Factory reads: `.json` (array, or JSON Lines saved as .json)
and `.jsonl` here; `.parquet`/`.arrow` (`columnar`) and `.csv`/`.txt` (`textfiles`) through `read_records`.

Every later command reads data through here. Syntax problems never raise: they become Findings with
file:line:column (appended to the caller's list) and reading goes on, so one run reports every bad JSONL
line and every repairable mistake in a .json file. JSONL, CSV, text and columnar files are streamed in
bounded memory.
"""

from __future__ import annotations

import itertools
import json
import os
from typing import Any, Callable, Iterator

import orjson

from ftbench.api.errors import UsageError
from ftbench.api.findings import Finding
from ftbench.data import jsonsyntax
from ftbench.data.encoding import decode_text
from ftbench.data.record import RawRecord, Windows, in_windows
from ftbench.data.sources import file_type
from ftbench.io import MAX_JSON_DOCUMENT_BYTES, MAX_SMALL_FILE_BYTES, not_a_regular_file

JSONL_SUFFIXES = (".jsonl", ".ndjson")
__all__ = [
    "RawRecord",
    "read_records",
    "peek_records",
    "is_jsonl",
    "split_jsonl",
    "check_readable",
    "loads_line",
    "read_small_file",
]


def _strict_loads(text: str | bytes) -> Any:
    """Python's json, but NaN/Infinity are errors as in every other JSON reader (pyarrow, orjson, JS), and
    nesting deeper than the interpreter's stack is a ValueError like any other unreadable text."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("values nested too deep") from None


def loads_line(raw: bytes) -> Any:
    """Parse one JSON value fast (orjson); fall back to json for what orjson refuses but is valid JSON
    (lone surrogate escapes such as "\\ud800", which the validator reports as invalid Unicode instead)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _strict_loads(raw)


def check_readable(path: str) -> None:
    """Refuse, by `stat` and before any read, what is not a data file: a missing path, a folder, a FIFO or a
    device such as /dev/zero (UsageError, exit 2)."""
    problem = not_a_regular_file(path)
    if problem == "is a directory, not a regular file":
        raise UsageError(f"{path}: is a directory (give a data file, or --dataset-info DIR/dataset_info.json)")
    if problem:
        raise UsageError(f"{path}: {problem} (give a data file)")


def read_small_file(path: str, what: str, *, limit: int = MAX_SMALL_FILE_BYTES) -> bytes:
    """The bytes of a small input file read whole (a config, dataset_info.json, a metrics file), refusing special
    files and files over ``limit`` with one line (UsageError, exit 2) before reading."""
    problem = not_a_regular_file(path)
    if problem:
        raise UsageError(f"{path}: {problem} (give a {what})")
    size = os.path.getsize(path)
    if size > limit:
        raise UsageError(f"{path}: {size / 2**20:.0f} MB is too large for a {what} (limit {limit / 2**20:.0f} MB)")
    with open(path, "rb") as fh:
        return fh.read(limit + 1)


def is_jsonl(path: str) -> bool:
    """JSON Lines by suffix, or a .json file that holds JSON Lines (as `datasets` accepts)."""
    if path.lower().endswith(JSONL_SUFFIXES):
        return True
    if file_type(path) not in ("json", None):
        return False
    with open(path, "rb") as fh:
        head = fh.read(4096)
    return _looks_like_jsonl(path, head)


def read_records(
    path: str,
    findings: list[Finding],
    *,
    display_name: str | None = None,
    on_progress: Callable[[int], None] | None = None,
    byte_range: tuple[int, int] | None = None,
    counts: dict | None = None,
    windows: Windows | None = None,
) -> Iterator[RawRecord]:
    """Yield the records of a data file of any type; problems go to ``findings`` (never raised).

    ``on_progress(nbytes)`` is called with the number of bytes read since its last call, for progress bars.
    ``byte_range`` (JSON Lines only, from `split_jsonl`) reads one shard: its record indices and lines then
    count from the shard's start, and ``counts`` receives {"lines", "records"} so the caller can shift them.
    ``windows`` keeps only the records whose index is in one of its [start, end) ranges (a split such as
    train[:100], or a worker's share of a Parquet file); their indices stay the file's.
    """
    check_readable(path)
    name = display_name or path
    kind = file_type(path)
    if kind in ("parquet", "arrow"):
        from ftbench.data.columnar import read_columnar

        yield from read_columnar(path, kind, name, findings, windows=windows, on_progress=on_progress, counts=counts)
        return
    if kind in ("csv", "text"):
        from ftbench.data import textfiles

        read = textfiles.read_csv if kind == "csv" else textfiles.read_text
        yield from read(path, name, findings, windows=windows, on_progress=on_progress, counts=counts)
        return
    if is_jsonl(path):
        records = _read_jsonl(path, name, findings, on_progress, byte_range or (0, None), counts)
    else:
        records = _read_json_document(path, name, findings, on_progress, counts)
    if windows is None:
        yield from records
    else:
        yield from (r for r in records if in_windows(r.index, windows))


def split_jsonl(path: str, parts: int) -> list[tuple[int, int]]:
    """Cut a JSON Lines file into ``parts`` byte ranges that start and end on line boundaries."""
    size = os.path.getsize(path)
    bounds = [0]
    with open(path, "rb") as fh:
        for k in range(1, parts):
            fh.seek(max(bounds[-1], size * k // parts))
            fh.readline()
            bounds.append(min(fh.tell(), size))
    bounds.append(size)
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a] or [(0, size)]


def peek_records(path: str, limit: int) -> list[RawRecord]:
    """The first readable records of a file, cheaply, for format detection (problems are not reported)."""
    ignored: list[Finding] = []
    if file_type(path) not in ("json", None):
        return list(itertools.islice(read_records(path, ignored), limit))
    if is_jsonl(path):
        return list(itertools.islice(_read_jsonl(path, path, ignored, None, (0, None), None), limit))
    if os.path.getsize(path) > MAX_JSON_DOCUMENT_BYTES:
        return []  # read_records reports it
    with open(path, "rb") as fh:
        text = fh.read().decode("utf-8", errors="replace").lstrip("\ufeff")
    try:
        if text.lstrip().startswith("["):
            return [RawRecord(i, line, v) for i, (line, v) in enumerate(itertools.islice(_scan_array(text), limit))]
    except (ValueError, RecursionError):
        pass
    return list(itertools.islice(_read_json_document(path, path, ignored, None, None), limit))


def _looks_like_jsonl(path: str, head: bytes) -> bool:
    """A .json file holding JSON Lines: the first value is an object that ends its line and another
    value follows on a later line."""
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if not text.startswith(b"{"):
        return False
    with open(path, "rb") as fh:
        first = fh.readline().lstrip(b"\xef\xbb\xbf")
        second = fh.readline()
        while second and not second.strip():
            second = fh.readline()
    try:
        loads_line(first)
    except (ValueError, RecursionError):
        return False
    return second.strip().startswith(b"{")


def _read_jsonl(
    path: str,
    name: str,
    findings: list[Finding],
    on_progress: Callable[[int], None] | None,
    byte_range: tuple[int, int | None],
    counts: dict | None,
) -> Iterator[RawRecord]:
    start, end = byte_range
    index = lineno = 0
    consumed = reported = 0
    limit = float("inf") if end is None else end - start
    with open(path, "rb") as fh:
        fh.seek(start)
        for raw in fh:
            lineno += 1
            consumed += len(raw)
            if on_progress is not None and lineno % 4096 == 0:
                on_progress(consumed - reported)
                reported = consumed
            if lineno == 1 and start == 0 and raw.startswith(b"\xef\xbb\xbf"):
                findings.append(
                    Finding(
                        "utf8-bom",
                        "the file starts with a UTF-8 byte-order mark (BOM)",
                        hint="re-save the file as UTF-8 without BOM; many JSON readers reject it",
                        file=name,
                        line=1,
                        column=1,
                    )
                )
                raw = raw[3:]
            if raw.strip():  # blank lines are allowed between JSON Lines records
                try:
                    value = loads_line(raw)
                except (ValueError, RecursionError):
                    value = _recover_line(raw, name, lineno, index, findings)
                if value is not _UNREADABLE:
                    yield RawRecord(index, lineno, value)
                index += 1
            if consumed >= limit:
                break
    if on_progress is not None:
        on_progress(consumed - reported)
    if counts is not None:
        counts["lines"], counts["records"] = lineno, index


_UNREADABLE = object()


def _recover_line(raw: bytes, name: str, lineno: int, index: int, findings: list[Finding]) -> Any:
    """Explain why a JSONL line did not parse; return its value if a repair makes it readable (so its
    fields are still checked), else _UNREADABLE."""
    text, problems = decode_text(raw, name)
    for f in problems:  # decode positions are relative to the line
        if f.line is not None:
            f.line += lineno - 1
        f.record = index
    findings.extend(problems)
    text = text.rstrip("\r\n")
    try:
        return _strict_loads(text)  # only the encoding was wrong
    except (ValueError, RecursionError):
        pass
    repaired, diagnosed = jsonsyntax.diagnose_json(text, name, first_line=lineno, record=index)
    findings.extend(diagnosed)
    if repaired is None:
        return _UNREADABLE
    try:
        return _strict_loads(repaired)
    except (ValueError, RecursionError):
        return _UNREADABLE


def _read_json_document(
    path: str, name: str, findings: list[Finding], on_progress: Callable[[int], None] | None, counts: dict | None = None
) -> Iterator[RawRecord]:
    n = 0
    for n, rec in enumerate(_json_document_records(path, name, findings, on_progress), start=1):  # noqa: B007 (n: the count, read after the loop)
        yield rec
    if counts is not None:
        counts["lines"], counts["records"] = 0, n


def _json_document_records(
    path: str, name: str, findings: list[Finding], on_progress: Callable[[int], None] | None
) -> Iterator[RawRecord]:
    size = os.path.getsize(path)
    if size > MAX_JSON_DOCUMENT_BYTES:
        findings.append(
            Finding(
                "file-too-large",
                f"a .json array of {size / 2**20:,.0f} MB is read whole, and this "
                f"is more than the {MAX_JSON_DOCUMENT_BYTES / 2**20:,.0f} MB limit",
                hint="save it as JSON Lines (.jsonl, one record per line), which is streamed; or "
                "raise the limit with FTBENCH_MAX_JSON_MB",
                file=name,
                line=1,
                column=1,
            )
        )
        return
    with open(path, "rb") as fh:
        data = fh.read()
    if on_progress is not None:
        on_progress(len(data))
    text, problems = decode_text(data, name)
    findings.extend(problems)
    if not text.strip():
        findings.append(
            Finding(
                "empty-file",
                "the file is empty",
                hint="a dataset file holds a JSON array of records",
                file=name,
                line=1,
                column=1,
            )
        )
        return
    array = text.lstrip().startswith("[")
    if array:
        try:  # fast path: one pass of the C scanner, element by element, keeping each element's line
            yield from _iter_array(text)
            return
        except (ValueError, RecursionError):
            pass  # _iter_array yields nothing on failure: diagnose the whole text below (no second full parse)
    try:
        if array:
            raise ValueError("not a valid array")
        value = _strict_loads(text)
    except (ValueError, RecursionError):
        repaired, diagnosed = jsonsyntax.diagnose_json(text, name)
        findings.extend(diagnosed)
        if repaired is None:
            return
        text = repaired  # repairs keep every newline where it was, so record line numbers stay right
        value = _strict_loads(text)
    if isinstance(value, dict):
        # One record on its own; LLaMA-Factory expects a list, but a lone object is still worth checking.
        findings.append(
            Finding(
                "not-a-list",
                "the file holds one JSON object, not an array of records",
                hint="wrap the records in [ ... ]",
                file=name,
                line=1,
                column=1,
            )
        )
        yield RawRecord(0, 1, value)
        return
    if not isinstance(value, list):
        findings.append(
            Finding(
                "not-a-list",
                f"the file holds a JSON {type(value).__name__}, not an array of records",
                hint="a dataset file holds a JSON array of objects: [ {...}, {...} ]",
                file=name,
                line=1,
                column=1,
            )
        )
        return
    value = None  # _iter_array parses again, keeping lines: do not hold two copies of every record
    yield from _iter_array(text)


def _iter_array(text: str) -> Iterator[RawRecord]:
    """The elements of a top-level JSON array with the line each starts on, parsed by the C scanner."""
    elements = list(_scan_array(text))  # parse everything before yielding: a syntax error yields nothing
    for index, (line, value) in enumerate(elements):
        yield RawRecord(index, line, value)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _scan_array(text: str) -> Iterator[tuple[int, Any]]:
    pos = text.index("[") + 1
    line = text.count("\n", 0, pos) + 1
    n = len(text)
    expect_value, after_comma = True, False
    while True:
        start = pos
        while pos < n and text[pos] in " \t\r\n":
            pos += 1
        line += text.count("\n", start, pos)
        if pos >= n:
            raise ValueError("unterminated array")
        ch = text[pos]
        if ch == "]":
            if after_comma:
                raise ValueError("trailing comma")
            if text[pos + 1 :].strip():
                raise ValueError("extra data after the array")
            return
        if ch == ",":
            if expect_value:
                raise ValueError("unexpected comma")
            expect_value, after_comma = True, True
            pos += 1
            continue
        if not expect_value:
            raise ValueError("missing comma")
        value, end = _DECODER.raw_decode(text, pos)
        yield line, value
        line += text.count("\n", pos, end)
        pos = end
        expect_value, after_comma = False, False

"""CSV and plain-text (`.txt`) data files as records, with the values LLaMA-Factory gets from them.

LLaMA-Factory reads CSV through `datasets`, which uses pandas in chunks of 10,000 rows: blank lines are
skipped, an empty cell and pandas' NA words ("NA", "None", "null", "nan", ...) become null, and a column whose
cells in a chunk are all numbers (or all True/False) becomes numbers (or booleans), so a numeric `output`
column is not text. The same happens here, row by row in bounded memory, and each record keeps the file line
its row starts on. Cells of any size are read (pandas has no field limit; Python's csv module's 128 KiB default
is lifted), and a quote left open at the end of the file is an error at the line it opens on, as pandas' "EOF
inside string" is. A `.txt` file is one record {"text": line} per line, as `datasets`' text builder reads it.
"""

from __future__ import annotations

import bisect
import csv
import itertools
import re
import sys
from typing import Callable, Iterator

from ftbench.api.findings import Finding
from ftbench.data.encoding import decode_text
from ftbench.data.record import RawRecord, Windows, in_windows

CHUNK_ROWS = 10_000  # datasets' CsvConfig.chunksize: pandas infers column types per chunk of this many rows
# pandas.read_csv's default na_values (STR_NA_VALUES)
NA_VALUES = frozenset(
    [
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    ]
)
_INT = re.compile(r"\s*[+-]?\d+\s*$")
_FLOAT = re.compile(r"\s*[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|inf|Inf|INF|infinity|Infinity)\s*$")
_BOOLS = {"True": True, "TRUE": True, "true": True, "False": False, "FALSE": False, "false": False}


def read_csv(
    path: str,
    name: str,
    findings: list[Finding],
    *,
    windows: Windows | None = None,
    on_progress: Callable[[int], None] | None = None,
    counts: dict | None = None,
) -> Iterator[RawRecord]:
    """The rows of a CSV file as records (index = data row, line = the file line the row starts on)."""
    read = 0
    csv.field_size_limit(sys.maxsize)  # pandas (so datasets) reads a cell of any size
    with open(path, encoding="utf-8-sig", newline="") as fh:
        progress = _Progress(fh, on_progress)
        lines = _RowLines(fh)
        reader = csv.reader(lines)
        try:
            header, header_line = _header(reader)
            if header is None:
                findings.append(
                    Finding(
                        "empty-file",
                        "the CSV file has no header row",
                        hint="the first line names the columns: instruction,input,output",
                        file=name,
                        line=1,
                    )
                )
                return
            lines.current = []
            chunk: list[tuple[int, list[str]]] = []
            index, previous = 0, reader.line_num
            for row in reader:
                start, previous = previous + 1, reader.line_num
                raw, lines.current = lines.current, []
                if lines.exhausted and (opened := _unclosed_quote(raw)) is not None:
                    findings.append(
                        Finding(
                            "invalid-csv",
                            "this quoted field is never closed: the rest of the file would be its text "
                            "(pandas, which LLaMA-Factory uses, stops: EOF inside string)",
                            record=index,
                            line=start + opened,
                            file=name,
                            hint='close the quote this field opens (write a " inside a quoted field as "")',
                        )
                    )
                    break
                if not row:
                    continue  # a blank line: pandas skips it
                if len(row) > len(header):
                    findings.append(
                        Finding(
                            "csv-field-count",
                            f"this row has {len(row)} fields but the header (line {header_line}) "
                            f"names {len(header)} columns",
                            record=index,
                            line=start,
                            file=name,
                            hint='quote a field that contains a comma: "a, b" (pandas, which LLaMA-Factory uses, '
                            "stops at this line: Error tokenizing data)",
                        )
                    )
                elif in_windows(index, windows):
                    chunk.append((start, index, row))
                index += 1
                if len(chunk) == CHUNK_ROWS:
                    for record in _typed(header, chunk):
                        read += 1
                        yield record
                    chunk = []
                    progress.update()
            for record in _typed(header, chunk):
                read += 1
                yield record
        except UnicodeDecodeError:
            findings.append(_not_utf8(path, name))
        except csv.Error as err:  # not expected with the lenient default dialect and no field limit
            findings.append(
                Finding(
                    "invalid-csv",
                    f"the CSV cannot be read here: {err}",
                    file=name,
                    line=reader.line_num,
                    hint='check this line\'s quoting (write a " inside a quoted field as "")',
                )
            )
    if counts is not None:
        counts["lines"], counts["records"] = 0, read


class _RowLines:
    """The file's lines as csv.reader pulls them, keeping those of the row being read (``current``, cleared by
    the caller after each row) and whether the file has ended (``exhausted``)."""

    def __init__(self, fh):
        self.fh, self.current, self.exhausted = fh, [], False

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.fh.readline()
        if not line:
            self.exhausted = True
            raise StopIteration
        self.current.append(line)
        return line


def _unclosed_quote(lines: list[str]) -> int | None:
    """The line (counted from 0 within ``lines``, one row's text) on which a quoted field opens that the file
    never closes, or None. Follows csv's default dialect: a quote opens a field only at its start, "" inside a
    quoted field is a quote, and text after a closing quote joins the field."""
    text = "".join(lines)
    i, n, at_start, opened = 0, len(text), True, None
    while i < n:
        if at_start and text[i] == '"':
            opened, close = i, i + 1
            while True:  # skip to the quote that closes it ("" is an escaped quote)
                close = text.find('"', close)
                if close < 0:
                    return bisect.bisect_right(list(itertools.accumulate(map(len, lines))), opened)
                if text.startswith('"', close + 1):
                    close += 2
                    continue
                break
            i, at_start = close + 1, False
            continue
        nxt = min((j for j in (text.find(",", i), text.find("\n", i), text.find("\r", i)) if j >= 0), default=n)
        if nxt >= n:
            break
        i, at_start = nxt + 1, True  # a new field (or record) starts after a comma or line break
    return None


def _header(reader) -> tuple[list[str] | None, int]:
    """The column names (the first non-blank row; pandas renames repeats a, a.1, a.2) and their line."""
    for row in reader:
        if row:
            seen: dict[str, int] = {}
            names = []
            for cell in row:
                n = seen.get(cell, 0)
                seen[cell] = n + 1
                names.append(cell if n == 0 else f"{cell}.{n}")
            return names, reader.line_num
    return None, 0


def _typed(header: list[str], chunk: list[tuple[int, int, list[str]]]) -> Iterator[RawRecord]:
    """Records of one chunk, each cell typed the way pandas types its column in that chunk."""
    converters = [_column_type([row[c] if c < len(row) else "" for _, _, row in chunk]) for c in range(len(header))]
    for line, index, row in chunk:
        values = {}
        for c, name in enumerate(header):
            cell = row[c] if c < len(row) else ""
            values[name] = None if cell in NA_VALUES else converters[c](cell)
        yield RawRecord(index, line, values)


def _column_type(cells: list[str]) -> Callable[[str], object]:
    """pandas' inference for one column of a chunk: int, float, bool, or text (NA cells do not count)."""
    present = [c for c in cells if c not in NA_VALUES]
    if not present:
        return str
    if all(_INT.match(c) for c in present):
        return int
    if all(_FLOAT.match(c) for c in present):
        return float
    if all(c in _BOOLS for c in present):
        return _BOOLS.__getitem__
    return str


def read_text(
    path: str,
    name: str,
    findings: list[Finding],
    *,
    windows: Windows | None = None,
    on_progress: Callable[[int], None] | None = None,
    counts: dict | None = None,
) -> Iterator[RawRecord]:
    """The lines of a .txt file as records {"text": line} (line breaks removed, blank lines kept), as the
    `datasets` text builder reads them."""
    read = 0
    with open(path, encoding="utf-8") as fh:  # universal newlines, as datasets opens it
        progress = _Progress(fh, on_progress)
        try:
            for index, line in enumerate(fh):
                if in_windows(index, windows):
                    read += 1
                    yield RawRecord(index, index + 1, {"text": line.rstrip("\n")})
                if index % 65536 == 65535:
                    progress.update()
        except UnicodeDecodeError:
            findings.append(_not_utf8(path, name))
        progress.update()
    if counts is not None:
        counts["lines"], counts["records"] = 0, read


def _not_utf8(path: str, name: str) -> Finding:
    """The first invalid UTF-8 byte of a file, located at its line and column (found by a second, binary pass:
    text-mode reading decodes ahead of the line it is on)."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            found = decode_text(raw, name)[1]
            bad = [f for f in found if f.code == "invalid-utf8"]
            if bad:
                bad[0].line = number
                bad[0].message += " (reading stops here, as LLaMA-Factory's does)"
                return bad[0]
    return Finding("invalid-utf8", "the file is not valid UTF-8", file=name, line=1, hint="re-save it as UTF-8")


class _Progress:
    """Reports the bytes read from a text file since the last report."""

    def __init__(self, fh, on_progress: Callable[[int], None] | None):
        self.fh, self.on_progress, self.done = fh, on_progress, 0

    def update(self) -> None:
        if self.on_progress is not None:
            now = self.fh.buffer.tell()
            self.on_progress(now - self.done)
            self.done = now


def write_csv(path: str, records: list[dict]) -> None:
    """Write records as CSV with a header row (the first record's keys); None becomes an empty cell."""
    columns = list(records[0]) if records else []
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        for record in records:
            writer.writerow(["" if record.get(c) is None else record.get(c) for c in columns])


def write_text(path: str, records: list[dict]) -> None:
    """Write records {"text": ...} as a .txt file, one line each."""
    with open(path, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write((record.get("text") or "") + "\n")

"""Parquet and Arrow files (and tables `datasets` loaded) as records, read in record batches through pyarrow.

Each row becomes a `RawRecord` whose index is the row's index in its file and whose value is a dict of the
row's columns, exactly as `to_pylist()` gives it: a column missing from the file is absent from the dict, a null
cell is None, an empty string is "". Only the batches overlapping the wanted rows are converted to Python, so
memory stays bounded by one batch whatever the file size. pyarrow is imported only when such a file is read.
"""

from __future__ import annotations

import os
from typing import Callable, Iterator

from ftbench.api.findings import Finding
from ftbench.data.record import RawRecord, Windows

BATCH_ROWS = 8192  # rows converted to Python at a time
STREAM_ROW_GROUP_BYTES = 256 << 20  # Parquet row groups larger than this (uncompressed) are read page by page


def row_count(path: str, ftype: str) -> int:
    """Rows in a Parquet or Arrow file, from its metadata (Arrow streams: by walking the batches, no copy)."""
    if ftype == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    with _ArrowSource(path) as batches:
        return sum(b.num_rows for b in batches)


def row_splits(path: str, ftype: str, parts: int) -> list[tuple[int, int]]:
    """About ``parts`` row ranges covering a Parquet/Arrow file, cut at row-group (or batch) boundaries when
    there are enough of them, so that workers read disjoint parts of the file."""
    if ftype == "parquet":
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(path).metadata
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    else:
        with _ArrowSource(path) as batches:
            sizes = [b.num_rows for b in batches]
    total = sum(sizes)
    if parts <= 1 or total == 0:
        return [(0, total)]
    if len(sizes) < parts:  # one big row group: cut by rows; workers skip the rows before theirs
        step = -(-total // parts)
        return [(a, min(a + step, total)) for a in range(0, total, step)]
    bounds, done, target = [0], 0, total / parts
    for size in sizes:
        done += size
        if done >= target * len(bounds) and done < total:
            bounds.append(done)
    bounds.append(total)
    return list(zip(bounds, bounds[1:]))


def read_columnar(
    path: str,
    ftype: str,
    name: str,
    findings: list[Finding],
    *,
    windows: Windows | None = None,
    on_progress: Callable[[int], None] | None = None,
    counts: dict | None = None,
) -> Iterator[RawRecord]:
    """The rows of a Parquet or Arrow file (those in ``windows``, if given) as records; an unreadable file
    becomes one finding that says what the file really is and how to fix it."""
    size, read = os.path.getsize(path), 0
    try:
        if ftype == "parquet":
            pf = _open_parquet(path)
            total = max(pf.metadata.num_rows, 1)
            source = _parquet_batches(pf, windows)
        else:
            source, total = _ArrowSource(path).batches(), None
        for first, batch in source:
            records = table_rows(batch, first, windows)
            yield from records
            read += len(records)
            if on_progress is not None:  # Arrow is memory-mapped, so its batches' bytes are the file's
                on_progress(size * batch.num_rows // total if total else batch.nbytes)
    except Exception as err:  # pyarrow raises ArrowInvalid, ArrowIOError, OSError... for damaged files
        if not _is_arrow_error(err):
            raise
        findings.append(unreadable_finding(path, ftype, name, err, read))
    if counts is not None:
        counts["lines"], counts["records"] = 0, read


def table_rows(batch, first: int, windows: Windows | None = None) -> list[RawRecord]:
    """The rows of one record batch (or table) that starts at row ``first``, as records; only the rows inside
    ``windows`` are converted (a list: one batch at a time is what memory holds)."""
    n = batch.num_rows
    if windows is None:
        parts = [(0, n)]
    else:
        parts = [(max(a, first) - first, min(b, first + n) - first) for a, b in windows if a < first + n and b > first]
    names = batch.schema.names
    out: list[RawRecord] = []
    for lo, hi in parts:
        piece = batch.slice(lo, hi - lo) if (lo, hi) != (0, n) else batch
        columns = [column.to_pylist() for column in piece.columns]
        out += [RawRecord(i, None, dict(zip(names, values))) for i, values in enumerate(zip(*columns), first + lo)]
    return out


def _open_parquet(path: str):
    """A ParquetFile that reads a row group's column chunks in one go (fast), unless a row group is so large
    that it must be streamed page by page to keep memory bounded."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    largest = max((meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)), default=0)
    if largest > STREAM_ROW_GROUP_BYTES:
        return pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
    return pq.ParquetFile(path)


def _parquet_batches(pf, windows: Windows | None) -> Iterator[tuple[int, object]]:
    """(first row, batch) of a Parquet file, reading only the row groups that overlap ``windows``."""
    meta = pf.metadata
    first = 0
    for group in range(meta.num_row_groups):
        rows = meta.row_group(group).num_rows
        if windows is None or any(a < first + rows and b > first for a, b in windows):
            start = first
            for batch in pf.iter_batches(batch_size=BATCH_ROWS, row_groups=[group]):
                yield start, batch
                start += batch.num_rows
        first += rows


class _ArrowSource:
    """An Arrow IPC file, in the stream format `datasets` writes (cache files, save_to_disk) or the file
    format, memory-mapped: batches are read without copying."""

    def __init__(self, path: str):
        import pyarrow as pa

        self.mmap = pa.memory_map(path)
        try:
            self.reader = pa.ipc.open_stream(self.mmap)
            self.count = None
        except (pa.ArrowInvalid, OSError):
            self.mmap.seek(0)
            self.reader = pa.ipc.open_file(self.mmap)
            self.count = self.reader.num_record_batches

    def __enter__(self) -> Iterator:
        return (batch for _, batch in self.batches())

    def __exit__(self, *exc) -> None:
        self.mmap.close()

    def batches(self) -> Iterator[tuple[int, object]]:
        first = 0
        stream = self.reader if self.count is None else (self.reader.get_batch(i) for i in range(self.count))
        try:
            for batch in stream:
                yield first, batch
                first += batch.num_rows
        finally:
            self.mmap.close()


def read_schema(path: str, ftype: str):
    """The pyarrow schema of a Parquet or Arrow file."""
    if ftype == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).schema_arrow
    source = _ArrowSource(path)
    try:
        return source.reader.schema
    finally:
        source.mmap.close()


def write_columnar(path: str, ftype: str, records: list[dict], schema=None) -> None:
    """Write records as a Parquet file, or as an Arrow IPC stream (the format `datasets` writes), with the
    given schema (the input file's, so types survive a round trip)."""
    import pyarrow as pa

    table = pa.Table.from_pylist(records, schema=schema)
    if ftype == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
        return
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


def _is_arrow_error(err: Exception) -> bool:
    import pyarrow as pa

    return isinstance(err, (pa.ArrowException, OSError, ValueError))


MAGIC = (
    (b"PAR1", "a Parquet file", ".parquet"),
    (b"ARROW1", "an Arrow IPC file", ".arrow"),
    (b"\xff\xff\xff\xff", "an Arrow IPC stream", ".arrow"),
)


def unreadable_finding(path: str, ftype: str, name: str, err: Exception, rows_read: int) -> Finding:
    """One finding for a Parquet/Arrow file pyarrow cannot read: what it really is (by its first bytes), and
    the fix."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    what = {"parquet": "Parquet", "arrow": "Arrow"}[ftype]
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    actual = next(((kind, ext) for magic, kind, ext in MAGIC if head.startswith(magic)), None)
    if not head:
        actual, hint = ("an empty file", None), "the file is empty: write the data again"
    elif stripped[:1] in (b"[", b"{"):
        actual, hint = ("JSON text", None), f"rename it .{'jsonl' if stripped[:1] == b'{' else 'json'}"
    elif actual is not None and actual[1] != f".{ftype}":
        hint = f"it is {actual[0]}: rename it {actual[1]}"
    else:
        actual = None
        hint = "the file is damaged or cut short (an interrupted download or write): write it again, e.g. " + (
            "df.to_parquet(path) or dataset.to_parquet(path)"
            if ftype == "parquet"
            else "dataset.save_to_disk(folder) and use its data-*.arrow file"
        )
    at = f" after row {rows_read - 1}" if rows_read else ""
    message = (
        f"not a readable {what} file{at}"
        + (f": it holds {actual[0]}" if actual else "")
        + f" (pyarrow: {str(err).splitlines()[0][:160]})"
    )
    return Finding("unreadable-file", message, hint=hint, file=name, record=rows_read if rows_read else None)

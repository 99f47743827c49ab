"""`RawRecord`: one record as read from a data file, before any format gives it meaning."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Windows = list[tuple[int, int]]  # [start, end) ranges of record indices to read; None means every record


@dataclass(slots=True)
class RawRecord:
    """One record of a data file: its 0-based index (the row of a table), the 1-based line it starts on (None
    for Parquet/Arrow rows), and its value (a JSON value, or a row as a dict of its columns)."""

    index: int
    line: int | None
    value: Any


def in_windows(index: int, windows: Windows | None) -> bool:
    """True if a record index is inside the windows (always, without windows)."""
    return windows is None or any(a <= index < b for a, b in windows)

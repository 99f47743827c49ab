"""Where a dataset's rows come from, as LLaMA-Factory decides it: the file type from the extension
(`FILEEXT2TYPE`), a folder as every file in it (one type), and the `split` slice (`train`, `train[:100]`,
`train[10%:20%]`, `a+b`) applied to the rows of the dataset as `datasets` applies it.

Problems (an unknown extension, mixed types, a missing path, a split that is not `train`) become findings
located at the dataset_info.json entry, or at the path when it was given directly.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ftbench.api.errors import UsageError
from ftbench.api.findings import Finding
from ftbench.io import not_a_regular_file

# LLaMA-Factory's extras/constants.py FILEEXT2TYPE; .ndjson is ftbench's own leniency for direct paths
FILE_TYPES = {"arrow": "arrow", "csv": "csv", "json": "json", "jsonl": "json", "parquet": "parquet", "txt": "text"}
LENIENT_TYPES = {"ndjson": "json"}
ALLOWED = ",".join(FILE_TYPES)
COLUMNAR_TYPES = ("parquet", "arrow")

# datasets' arrow_reader._SUB_SPEC_RE: "train", "train[:100]", "train[-10%:]", "train[:33%](pct1_dropremainder)"
_SLICE = re.compile(
    r"^(?P<split>\w+(?:\.\w+)*)(?:\[(?:(?P<from>-?[\d_]+)(?P<from_pct>%)?)?:"
    r"(?:(?P<to>-?[\d_]+)(?P<to_pct>%)?)?\])?(?:\((?P<rounding>[^)]*)\))?$"
)
_PLUS = re.compile(r"\s*\+\s*")


def file_type(path: str, *, lenient: bool = True) -> str | None:
    """The loader type of a data file by its extension (json, csv, parquet, arrow, text), or None."""
    ext = os.path.splitext(path)[1][1:].lower()
    return FILE_TYPES.get(ext) or (LENIENT_TYPES.get(ext) if lenient else None)


def where(spec) -> dict:
    """Finding location fields for a problem with a whole dataset: its dataset_info entry, else its path."""
    if spec.declared:
        return dict(file=spec.info_file, line=spec.info_line, path=f"{spec.name}.{spec.path_key}")
    return dict(file=spec.path)


def data_files(spec, findings: list[Finding]) -> list[str]:
    """The files of a local dataset in LLaMA-Factory's order: the file itself, or every entry of a folder
    (`os.listdir` order, not recursive, hidden files included), all of one type. Problems go to ``findings``
    (nothing is read then); a direct path that does not exist is a usage error."""
    path = spec.path
    if os.path.isdir(path):
        entries = os.listdir(path)
        if not entries:
            findings.append(
                Finding(
                    "dataset-file-missing",
                    f"folder {path} is empty",
                    hint="put the data files in it, or point file_name at a file",
                    **where(spec),
                )
            )
            return []
        files = [os.path.join(path, e) for e in entries]
        if _refuse_mixed(spec, files, findings) or _refuse_special(spec, files, findings):
            return []
        return files
    if not os.path.exists(path):
        if spec.declared:
            findings.append(
                Finding(
                    "dataset-file-missing",
                    f"dataset '{spec.name}' points at {path}, which does not exist",
                    hint="file_name is relative to the folder of dataset_info.json",
                    **where(spec),
                )
            )
            return []
        raise UsageError(f"{path}: no such file")
    if spec.declared and (_refuse_mixed(spec, [path], findings) or _refuse_special(spec, [path], findings)):
        return []
    problem = not_a_regular_file(path)
    if problem:
        raise UsageError(f"{path}: {problem} (give a data file)")
    return [path]  # a path given directly is read as JSON whatever its extension, unless it is a known type


def _refuse_special(spec, files: list[str], findings: list[Finding]) -> bool:
    """A FIFO, a device (/dev/zero) or a folder where a data file belongs, found by `stat` before any read."""
    for f in files:
        problem = not_a_regular_file(f)
        if problem:
            findings.append(
                Finding(
                    "not-a-file",
                    f"{f} {problem}: it cannot be read as data",
                    hint="point file_name at a data file (a named pipe or a device never ends)",
                    **where(spec),
                )
            )
            return True
    return False


def _refuse_mixed(spec, files: list[str], findings: list[Finding]) -> bool:
    """LLaMA-Factory's two refusals: a file type it cannot read, and a folder mixing types. True if refused."""
    lenient = not spec.declared
    unknown = [f for f in files if file_type(f, lenient=lenient) is None]
    if unknown:
        shown = os.path.basename(unknown[0]) + ("/" if os.path.isdir(unknown[0]) else "")
        inside = f"folder {spec.path} holds {shown!r}, which" if os.path.isdir(spec.path) else f"{shown!r}"
        ext = os.path.splitext(unknown[0])[1][1:].lower()
        hint = (
            "rename it .jsonl"
            if ext == "ndjson"
            else "move it out of the folder"
            if os.path.isdir(spec.path)
            else "convert it to one of these"
        )
        findings.append(
            Finding(
                "unsupported-file-type",
                f"{inside} is not a type LLaMA-Factory reads (allowed file types: {ALLOWED})",
                hint=hint + _saved_dataset_hint(spec.path),
                **where(spec),
            )
        )
        return True
    types = {file_type(f) for f in files}
    if len(types) > 1:
        by_type = {}
        for f in files:
            by_type.setdefault(file_type(f), os.path.basename(f))
        shown = ", ".join(f"{name} ({kind})" for kind, name in sorted(by_type.items()))
        findings.append(
            Finding(
                "mixed-file-types",
                f"folder {spec.path} mixes file types: {shown}; LLaMA-Factory "
                "refuses it ('File types should be identical.')",
                hint="keep one type per folder (.json and .jsonl count as one)" + _saved_dataset_hint(spec.path),
                **where(spec),
            )
        )
        return True
    return False


def _saved_dataset_hint(path: str) -> str:
    """A `datasets` save_to_disk folder (data-*.arrow next to state.json) is not a LLaMA-Factory data folder."""
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "state.json")):
        arrows = sorted(f for f in os.listdir(path) if f.endswith(".arrow"))
        if arrows:
            return (
                f"; this is a `datasets` save_to_disk folder: give its data file (or make it the file_name) "
                f"{os.path.join(path, arrows[0])}"
            )
    return ""


@dataclass(frozen=True)
class RowWindow:
    """Rows [start, end) of a dataset (all its files in order), one term of a split such as train[:100]."""

    start: int
    end: int


def parse_split(split: str) -> list[tuple]:
    """The terms of a `datasets` split string: (name, from, to, percent, rounding); ValueError if malformed."""
    terms = []
    for part in _PLUS.split(split.strip()):
        m = _SLICE.match(part)
        if not m:
            raise ValueError(f"cannot read split {split!r}")
        pct = bool(m.group("from_pct") or m.group("to_pct"))
        rounding = m.group("rounding") or "closest"
        if rounding not in ("closest", "pct1_dropremainder"):
            raise ValueError(f"unknown rounding {rounding!r} in split {split!r}")
        as_int = lambda s: int(s.replace("_", "")) if s else None
        terms.append((m.group("split"), as_int(m.group("from")), as_int(m.group("to")), pct, rounding))
    return terms


def split_windows(split: str, rows: int) -> list[RowWindow] | None:
    """The row windows a split selects from a dataset of ``rows`` rows, as `datasets` computes them (None: all
    rows, the plain "train"). Local files have only a "train" split; ValueError names what is wrong."""
    terms = parse_split(split)
    if len(terms) == 1 and terms[0][1:3] == (None, None):
        _check_name(terms[0][0], split)
        return None
    windows = []
    for name, lo, hi, pct, rounding in terms:
        _check_name(name, split)
        if pct:
            if rounding == "pct1_dropremainder" and rows < 100:
                raise ValueError("pct1_dropremainder rounding on fewer than 100 rows always gives no rows")
            to_abs = (
                (lambda b: int(round(b * rows / 100.0))) if rounding == "closest" else (lambda b: b * (rows // 100))
            )
            lo = 0 if lo is None else to_abs(lo)
            hi = rows if hi is None else to_abs(hi)
        else:
            lo = 0 if lo is None else lo
            hi = rows if hi is None else hi
        lo = max(rows + lo, 0) if lo < 0 else lo
        hi = max(rows + hi, 0) if hi < 0 else hi
        windows.append(RowWindow(min(lo, rows), min(hi, rows)))
    return windows


def needs_row_count(split: str) -> bool:
    """True when the split is a slice (its windows depend on the number of rows)."""
    terms = parse_split(split)
    return not (len(terms) == 1 and terms[0][1:3] == (None, None))


def _check_name(name: str, split: str) -> None:
    if name != "train":
        raise ValueError(
            f"split {split!r}: a local file has only the 'train' split (LLaMA-Factory: Unknown split "
            f"\"{name}\". Should be one of ['train'].)"
        )

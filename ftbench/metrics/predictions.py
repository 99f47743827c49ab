"""Prediction files: what `ftbench score` reads.

Accepted, one JSON object per line (or a JSON array):

* LLaMA-Factory's ``generated_predictions.jsonl`` and ftbench's own prediction files: ``predict`` (the
  model output) and ``label`` (the reference); ``prompt`` and any other field are kept out of scoring;
* lm-eval's ``--log_samples`` files (``samples_<task>_*.jsonl``): ``resps[0][0]`` and ``target``.

A missing or mistyped field is an input error located as file:line [record].field.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ftbench.api.errors import InputError, UsageError
from ftbench.api.findings import Finding

_LLAMAFACTORY_HINT = "LLaMA-Factory's generated_predictions.jsonl has one {\"prompt\", \"predict\", \"label\"} per line"


@dataclass
class PredictionFile:
    """The (predict, label) pairs of a file, with each record's index and line, in file order."""

    path: str
    predictions: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    lines: list[int | None] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    format: str = "llamafactory"

    def __len__(self) -> int:
        return len(self.predictions)


def _field_problem(path: str, line: int | None, index: int, name: str, message: str, hint: str) -> Finding:
    return Finding("bad-prediction-record", message, hint=hint, file=path, line=line, record=index,
                   path=f"[{index}].{name}")


def _pair_of(value, path: str, line: int | None, index: int, numeric_labels: bool,
             problems: list[Finding]) -> tuple[str, str] | None:
    if not isinstance(value, dict):
        problems.append(Finding("bad-prediction-record", f"expected a JSON object, got {type(value).__name__}",
                                hint=_LLAMAFACTORY_HINT, file=path, line=line, record=index, path=f"[{index}]"))
        return None
    if "predict" not in value and "resps" in value and "target" in value:  # lm-eval --log_samples
        resps = value["resps"]
        while isinstance(resps, list) and resps:
            resps = resps[0]
        predict, label, names = resps, value["target"], ("resps[0][0]", "target")
    else:
        predict, label, names = value.get("predict"), value.get("label"), ("predict", "label")
    ok = True
    for name, item in zip(names, (predict, label)):
        key = name.split("[")[0]
        if key not in value:
            fields = ", ".join(sorted(value)) or "none"
            problems.append(_field_problem(path, line, index, name, f"no '{key}' field (fields: {fields})",
                                           _LLAMAFACTORY_HINT))
            ok = False
        elif isinstance(item, str):
            continue
        elif name in ("label", "target") and numeric_labels and isinstance(item, (int, float)) \
                and not isinstance(item, bool):
            continue
        else:
            kind = "null" if item is None else type(item).__name__
            problems.append(_field_problem(path, line, index, name, f"expected a string, got {kind}",
                                           "predictions and labels are text"))
            ok = False
    return (predict, str(label)) if ok else None


def read_predictions(path: str, *, numeric_labels: bool = False) -> PredictionFile:
    """Read a prediction file; raise InputError (one line, with location) if any record is unusable.

    ``numeric_labels``: accept numbers as labels (GSM8K answers), converted with str() as lm-eval does.
    """
    from ftbench.data.reader import read_records

    findings: list[Finding] = []
    problems: list[Finding] = []
    out = PredictionFile(path)
    for record in read_records(path, findings):
        pair = _pair_of(record.value, path, record.line, record.index, numeric_labels, problems)
        if pair is None:
            continue
        if out.indices == [] and "resps" in record.value and "predict" not in record.value:
            out.format = "lm-eval-samples"
        out.predictions.append(pair[0])
        out.references.append(pair[1])
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
    import os

    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file")
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a directory; give a prediction file such as generated_predictions.jsonl")

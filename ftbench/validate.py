"""`validate` as a library call: read datasets through the shared loader, run the quality pass, and return
one report object that the text, JSON and HTML renderers (and train-and-compare) share."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

from ftbench.api.findings import Finding
from ftbench.data.loader import DatasetSpec, FormatChoice, iter_samples
from ftbench.quality.checks import QualityChecker, QualityOptions


@dataclass
class ValidationReport:
    """Everything validate found: errors, warnings, how each file was read, and statistics."""

    errors: list[Finding]
    warnings: list[Finding]
    records: int
    stats: dict
    files: list[dict] = field(default_factory=list)  # {"file", "format", "reason"}
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict:
        return {"ok": self.ok, "records": self.records, "errors": [f.to_json() for f in self.errors],
                "warnings": [f.to_json() for f in self.warnings],
                "stats": {**self.stats, "files": self.files, "seconds": round(self.seconds, 3)}}

    def counts_by_code(self, findings: list[Finding]) -> list[tuple[str, int]]:
        counts: dict[str, int] = {}
        for f in findings:
            counts[f.code] = counts.get(f.code, 0) + 1
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def validate(specs: list[DatasetSpec], options: QualityOptions, *, against: list[DatasetSpec] = (),
             findings: list[Finding] | None = None, on_progress: Callable[[int], None] | None = None,
             on_format: Callable[[str, FormatChoice], None] | None = None) -> ValidationReport:
    """Check every dataset in ``specs`` (and compare with ``against``); ``findings`` may already hold problems
    found before reading (e.g. in dataset_info.json)."""
    start = time.perf_counter()
    findings = list(findings or [])
    files: list[dict] = []

    def note_format(name: str, choice: FormatChoice) -> None:
        files.append({"file": name, "format": choice.reader.name, "reason": choice.reason})
        if on_format is not None:
            on_format(name, choice)

    checker = QualityChecker(options)
    if against:
        checker.expect_test_set()
        test_findings: list[Finding] = []
        for spec in against:
            for sample in iter_samples(spec, test_findings):
                checker.observe_test(sample)
        # a broken test file is worth knowing about, but it is not the training data: warnings only
        for f in test_findings:
            f.severity = "warning"
            f.message = f"(--against) {f.message}"
        findings.extend(test_findings)
    counts = {"records": 0}
    observe = checker.observe
    for spec in specs:
        for sample in iter_samples(spec, findings, on_format=note_format, on_progress=on_progress, counts=counts):
            observe(sample)
    warnings, stats = checker.finish()
    order = {f["file"]: i for i, f in enumerate(files)}
    errors = [f for f in findings if f.severity == "error"]
    warnings = [f for f in findings if f.severity == "warning"] + warnings
    key = lambda f: (order.get(f.file, -1), f.line or 0, f.column or 0, f.record if f.record is not None else -1)
    errors.sort(key=key)
    warnings.sort(key=key)
    stats["invalid_records"] = counts["records"] - stats["valid_records"]
    return ValidationReport(errors, warnings, counts["records"], stats, files, time.perf_counter() - start)


def total_size(specs: list[DatasetSpec]) -> int:
    size = 0
    for spec in specs:
        if os.path.isfile(spec.path):
            size += os.path.getsize(spec.path)
        elif os.path.isdir(spec.path):
            size += sum(os.path.getsize(os.path.join(spec.path, f)) for f in os.listdir(spec.path))
    return size

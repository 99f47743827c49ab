"""`validate` as a library call: plan the files, check them shard by shard (in worker processes when the
data is large), merge in order, run the whole-dataset checks, and return one report object that the text,
JSON and HTML renderers (and train-and-compare) share."""

from __future__ import annotations

import gc
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from ftbench.api.findings import Finding
from ftbench.data.columnar import row_splits
from ftbench.data.loader import DatasetSpec, FilePlan, iter_file_samples, iter_samples, plan_files
from ftbench.data.reader import is_jsonl, split_jsonl
from ftbench.data.sources import COLUMNAR_TYPES, file_type
from ftbench.quality.checks import QualityOptions, RecordChecker, RecordFacts
from ftbench.quality.dataset import DatasetChecks

PARALLEL_MIN_BYTES = 32 << 20  # below this, starting workers costs more than it saves
SHARD_BYTES = 64 << 20  # JSON Lines files are cut into shards of about this size


@dataclass
class ValidationReport:
    """Everything validate found: errors, warnings, notes (what was not checked, and why), how each file was
    read, and statistics."""

    errors: list[Finding]
    warnings: list[Finding]
    records: int
    stats: dict
    files: list[dict] = field(default_factory=list)  # {"file", "format", "reason"}
    seconds: float = 0.0
    notes: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict:
        """The --json report; "notes" is there only when something was not checked (the shape stays otherwise)."""
        notes = {"notes": [f.to_json() for f in self.notes]} if self.notes else {}
        return {
            "ok": self.ok,
            "records": self.records,
            "errors": [f.to_json() for f in self.errors],
            "warnings": [f.to_json() for f in self.warnings],
            **notes,
            "stats": {**self.stats, "files": self.files, "seconds": round(self.seconds, 3)},
        }

    def counts_by_code(self, findings: list[Finding]) -> list[tuple[str, int]]:
        counts: dict[str, int] = {}
        for f in findings:
            counts[f.code] = counts.get(f.code, 0) + 1
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


@dataclass
class Shard:
    """A file, a line-aligned byte range of a JSON Lines file, or a row range of a Parquet/Arrow file, checked
    as one unit of work; ``plan_index`` says which planned file it belongs to."""

    plan: FilePlan
    plan_index: int
    byte_range: tuple[int, int] | None = None
    rows: tuple[int, int] | None = None


@dataclass
class ShardResult:
    plan_index: int
    file: str
    facts: RecordFacts
    findings: list[Finding]
    lines: int
    records: int
    relative: bool  # positions count from the shard's start (JSON Lines byte ranges), not the file's


def check_shard(shard: Shard, options: QualityOptions, on_progress: Callable[[int], None] | None = None) -> ShardResult:
    """Read, convert and check one shard; JSON Lines byte ranges report positions relative to their start."""
    findings: list[Finding] = []
    counts: dict = {}
    checker = RecordChecker(options, shard.plan.name)
    observe = checker.observe
    with _cyclic_gc_paused():
        for sample in iter_file_samples(
            shard.plan, findings, byte_range=shard.byte_range, rows=shard.rows, counts=counts, on_progress=on_progress
        ):
            observe(sample)
    facts, warnings = checker.finish()
    return ShardResult(
        shard.plan_index,
        shard.plan.name,
        facts,
        findings + warnings,
        counts.get("lines", 0),
        counts.get("records", 0),
        shard.byte_range is not None,
    )


@contextmanager
def _cyclic_gc_paused():
    """Pause the cyclic garbage collector while records stream through: each record makes a few short-lived,
    acyclic objects (freed by reference counting anyway), and the collector's passes over a batch's survivors
    cost a fifth of the time. It is switched back on (if it was on) however the loop ends."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _shift(findings: list[Finding], line_offset: int, record_offset: int) -> None:
    """Move a shard's findings (record indices, lines, field paths) to their place in the whole file."""
    if not line_offset and not record_offset:
        return
    for f in findings:
        if f.line is not None:
            f.line += line_offset
        if f.record is not None:
            old = f"[{f.record}]"
            f.record += record_offset
            if f.path and f.path.startswith(old):
                f.path = f"[{f.record}]{f.path[len(old) :]}"


def _plan_shards(plans: list[FilePlan], workers: int) -> list[Shard]:
    """Large files cut into shards for the workers: JSON Lines into ~SHARD_BYTES byte ranges, Parquet/Arrow
    into one row range per worker (at row-group boundaries when it has enough of them)."""
    shards = []
    for i, plan in enumerate(plans):
        kind = file_type(plan.path) if plan.local else None
        size = os.path.getsize(plan.path) if plan.local and os.path.isfile(plan.path) else 0
        if workers <= 1 or size <= SHARD_BYTES or plan.windows is not None or plan.choice is None:
            shards.append(Shard(plan, i))
        elif kind in COLUMNAR_TYPES:
            shards += [Shard(plan, i, rows=r) for r in row_splits(plan.path, kind, workers)]
        elif is_jsonl(plan.path):
            shards += [Shard(plan, i, byte_range=r) for r in split_jsonl(plan.path, -(-size // SHARD_BYTES))]
        else:
            shards.append(Shard(plan, i))
    return shards


def _run_shards(
    shards: list[Shard], options: QualityOptions, workers: int, on_progress: Callable[[int], None] | None
) -> Iterator[ShardResult]:
    """Results in shard order, whatever the number of workers (so output never depends on it)."""
    sizes = [_shard_bytes(s) for s in shards]
    if workers <= 1 or len(shards) == 1:
        for shard in shards:
            yield check_shard(shard, options, on_progress)
        return
    import multiprocessing

    # fork: workers inherit the parent's str-hash secret, so hash() columns from different workers agree
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for result, size in zip(pool.imap(_check_shard_star, [(s, options) for s in shards]), sizes):
            yield result
            if on_progress is not None:
                on_progress(size)


def _shard_bytes(shard: Shard) -> int:
    """The share of the file's bytes a shard reads, for the progress bar."""
    if shard.byte_range:
        return shard.byte_range[1] - shard.byte_range[0]
    size = total_size([shard.plan])
    if shard.rows:
        from ftbench.data.loader import count_records

        return size * (shard.rows[1] - shard.rows[0]) // max(count_records(shard.plan.path), 1)
    return size


def _check_shard_star(args) -> ShardResult:
    return check_shard(*args)


def _worker_count(total_bytes: int, options: QualityOptions) -> int:
    if total_bytes < PARALLEL_MIN_BYTES or options.token_counter is not None or os.name != "posix":
        return 1
    env = os.environ.get("FTBENCH_WORKERS")
    if env:
        return max(1, int(env))
    return min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8)


def validate(
    specs: list[DatasetSpec],
    options: QualityOptions,
    *,
    against: list[DatasetSpec] = (),
    findings: list[Finding] | None = None,
    progress: Callable[[int], Callable[[int], None]] | None = None,
) -> ValidationReport:
    """Check every dataset in ``specs`` (and compare with ``against``); ``findings`` may already hold problems
    found before reading (e.g. in dataset_info.json). ``progress(total_bytes)`` returns a callback that is
    given the bytes done as they are read."""
    start = time.perf_counter()
    findings = list(findings or [])
    options.keep_prompts = bool(against)
    dataset = DatasetChecks(options)
    if against:
        test_findings: list[Finding] = []
        for spec in against:
            for s in iter_samples(spec, test_findings):
                dataset.add_test_sample(s.file, s.record, s.line, s.prompt_text())
        for f in test_findings:  # a broken test file is worth knowing, but it is not the training data
            f.severity, f.message = "note" if f.severity == "note" else "warning", f"(--against) {f.message}"
        findings.extend(test_findings)

    plans = [plan for spec in specs for plan in plan_files(spec, findings)]
    files = [
        {
            "file": p.name,
            "dataset": p.dataset,
            "format": p.choice.reader.name if p.choice else None,
            "kind": getattr(p.choice.reader, "kind", "sft") if p.choice else None,
            "reason": p.choice.reason if p.choice else "records not checked (see the errors): syntax only",
        }
        for p in plans
    ]
    total = total_size(plans)
    workers = _worker_count(total, options)
    records = 0
    offsets: dict[int, tuple[int, int]] = {}  # per planned file: lines and records of its shards so far
    on_progress = progress(total) if progress is not None else None
    for result in _run_shards(_plan_shards(plans, workers), options, workers, on_progress):
        line_off, rec_off = offsets.get(result.plan_index, (0, 0)) if result.relative else (0, 0)
        _shift(result.findings, line_off, rec_off)
        offsets[result.plan_index] = (line_off + result.lines, rec_off + result.records)
        records += result.records
        findings.extend(result.findings)
        dataset.add(result.file, result.facts, line_offset=line_off, record_offset=rec_off)
    warnings, stats = dataset.finish()
    stats["workers"] = workers

    order = {f["file"]: i for i, f in enumerate(files)}
    key = lambda f: (order.get(f.file, -1), f.line or 0, f.column or 0, f.record if f.record is not None else -1)
    errors = sorted((f for f in findings if f.severity == "error"), key=key)
    warnings = sorted([f for f in findings if f.severity == "warning"] + warnings, key=key)
    notes = sorted((f for f in findings if f.severity == "note"), key=key)
    stats["invalid_records"] = records - stats["valid_records"]
    return ValidationReport(errors, warnings, records, stats, files, time.perf_counter() - start, notes)


def total_size(plans: list[FilePlan]) -> int:
    """The bytes of the planned local files (Parquet and Arrow count their compressed size)."""
    return sum(os.path.getsize(p.path) for p in plans if p.local and os.path.isfile(p.path))

"""Benchmark `ftbench validate` on a Parquet file against the floor: pyarrow reading the same file and converting
each record batch to Python rows (`to_pylist()`), which every Python check of the rows has to pay for.

Generates N alpaca records with `bench_validate.generate` (mixed Chinese/English, ~1% exact and ~1% near
duplicates, some placeholders; the same data as the JSON Lines benchmark), writes them as Parquet (snappy, row
groups of 100,000 rows, as `datasets`/pandas write them), then in one run times
  (a) pyarrow: iter_batches + to_pylist on every batch (the floor),
  (b) `ftbench validate --no-near-dup` (whole process, as a user runs it),
and prints the ratio and the peak RSS of the validate run (summed over its worker processes).
Targets (issue 11): (b) <= 3x the floor, peak RSS <= 2 GB.

    python benchmarks/bench_validate_parquet.py            # 1,000,000 records
    python benchmarks/bench_validate_parquet.py -n 100000  # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_validate import generate, run_validate  # noqa: E402  (same folder: the data and the runner are shared)

ROW_GROUP = 100_000
BATCH = 8192  # the batch size validate converts at a time (ftbench.data.columnar.BATCH_ROWS)


def write_parquet(jsonl: str, path: str) -> None:
    """JSON Lines to Parquet in row groups of ROW_GROUP rows, never holding more than one group in memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("instruction", pa.string()), ("input", pa.string()), ("output", pa.string())])
    with open(jsonl, encoding="utf-8") as fh, pq.ParquetWriter(path, schema) as writer:
        rows = []
        for line in fh:
            rows.append(json.loads(line))
            if len(rows) == ROW_GROUP:
                writer.write_table(pa.Table.from_pylist(rows, schema=schema))
                rows = []
        if rows:
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))


def floor_seconds(path: str) -> tuple[float, float, int]:
    """pyarrow reading every batch and converting it to Python rows, the least any row-by-row check costs:
    (wall seconds, CPU seconds, rows)."""
    import pyarrow.parquet as pq

    start, cpu = time.perf_counter(), time.process_time()
    rows = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH):
        rows += len(batch.to_pylist())
    return time.perf_counter() - start, time.process_time() - cpu, rows


def children_cpu() -> float:
    """CPU seconds used by finished child processes (and their own children, once reaped)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=1_000_000, help="records to generate")
    ap.add_argument("--data", help="reuse this Parquet file instead of generating (default: a cached file in /tmp)")
    args = ap.parse_args()
    path = args.data or os.path.join(tempfile.gettempdir(), f"ftbench-bench-validate-{args.n}.parquet")
    if not os.path.exists(path):
        t = time.perf_counter()
        jsonl = os.path.join(tempfile.gettempdir(), f"ftbench-bench-validate-{args.n}.jsonl")
        if not os.path.exists(jsonl):
            generate(jsonl + ".part", args.n)
            os.replace(jsonl + ".part", jsonl)
        write_parquet(jsonl, path + ".part")
        os.replace(path + ".part", path)
        print(
            f"generated {args.n:,} records ({os.path.getsize(path) / 2**20:.0f} MB of Parquet) in "
            f"{time.perf_counter() - t:.0f} s"
        )
    with open(path, "rb") as fh:  # warm the page cache, so no side of the comparison pays for the disk
        while fh.read(1 << 24):
            pass
    floor, floor_cpu, rows = floor_seconds(path)
    before = children_cpu()
    fast, fast_rss, report = run_validate(path, "--no-near-dup")
    fast_cpu = children_cpu() - before
    stats = report["stats"]
    print(
        f"data: {path} ({rows:,} rows, {os.path.getsize(path) / 2**20:.0f} MB, {os.cpu_count()} CPUs, "
        f"{stats['workers']} validate workers; load average {os.getloadavg()[0]:.1f} at the end)"
    )
    print(f"(a) pyarrow iter_batches + to_pylist (floor)  {floor:7.2f} s  (CPU {floor_cpu:6.2f} s)")
    print(
        f"(b) ftbench validate --no-near-dup           {fast:7.2f} s  {fast / floor:5.2f}x floor  "
        f"peak RSS {fast_rss:6.0f} MB  (targets <= 3x, RSS <= 2048 MB)  (CPU {fast_cpu:6.2f} s in all processes)"
    )
    print(
        f"findings: {len(report['warnings']):,} warnings ({stats['exact_duplicates']:,} exact duplicates), "
        f"{len(report['errors']):,} errors; {report['records']:,} records read"
    )


if __name__ == "__main__":
    main()

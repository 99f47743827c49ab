"""Benchmark the diagnosis of large broken .json files against parsing a valid file of the same size.

Issue 12's target: a 50 MB broken file is diagnosed in <= 10x the time of reading a valid file of the same size,
with peak memory <= 4x the file. Each case runs `read_records` (what every command reads data with) in a fresh
process, in one run:
  valid         a .json array of alpaca records, one per line (the reference)
  one-line      the same records on one line, written by print(): single quotes and True on every record
  no-bracket    the valid file without its final ']' (truncated-json)
and prints seconds, peak RSS (the process's, minus the interpreter's start-up RSS) and the ratios.

    python benchmarks/bench_broken_json.py          # 50 MB
    python benchmarks/bench_broken_json.py --mb 5   # quicker
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import resource, sys, time
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
from ftbench.data.reader import read_records
import ftbench.data.jsonsyntax  # imported up front, as a validate run has it
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
findings = []
t = time.perf_counter()
n = sum(1 for _ in read_records(sys.argv[1], findings))
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
print(seconds, peak * 1024, n, len(findings), findings[0].code if findings else "-")
"""


def write_files(folder: str, mb: float) -> dict[str, str]:
    record = '{"instruction": "Translate the sentence into French, please", "input": "q%d", "output": "answer %d"}'
    lines, size, i = [], 0, 0
    while size < mb * 2**20:
        line = record % (i, i)
        lines.append(line)
        size += len(line) + 2
        i += 1
    paths = {name: os.path.join(folder, f"{name}.json") for name in ("valid", "one-line", "no-bracket")}
    valid = "[\n" + ",\n".join(lines) + "\n]\n"
    with open(paths["valid"], "w") as fh:
        fh.write(valid)
    with open(paths["no-bracket"], "w") as fh:
        fh.write(valid.rstrip().rstrip("]"))
    one = "{'instruction': 'q', 'output': True}, "
    with open(paths["one-line"], "w") as fh:
        fh.write("[" + one * (len(valid) // len(one)) + "{'instruction': 'q', 'output': True}]")
    return paths


def run(path: str) -> tuple[float, int, str]:
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", CHILD, path], capture_output=True, text=True, env=env, check=True)
    seconds, peak, records, findings, code = out.stdout.split()
    return float(seconds), int(peak), f"{records} records, {findings} findings ({code})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50.0, help="file size in MB (default 50)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        paths = write_files(folder, args.mb)
        sizes = {name: os.path.getsize(p) for name, p in paths.items()}
        results = {name: run(p) for name, p in paths.items()}
    ref_t, ref_m, _ = results["valid"]
    print(
        f"{'case':<11} {'MB':>6} {'seconds':>8} {'peak MB':>8} {'time/valid':>10} {'mem/valid':>9} {'mem/file':>8}"
        "  result"
    )
    for name, (t, m, what) in results.items():
        print(
            f"{name:<11} {sizes[name] / 2**20:6.1f} {t:8.2f} {m / 2**20:8.0f} {t / ref_t:10.2f} {m / ref_m:9.2f} "
            f"{m / sizes[name]:8.2f}  {what}"
        )


if __name__ == "__main__":
    main()

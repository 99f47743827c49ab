"""Benchmark `ftbench validate` against the floor: parsing the same JSONL with json.loads, line by line.

Generates N realistic alpaca records (mixed Chinese/English, varied lengths, ~1% exact and ~1% near
duplicates, some placeholders), then in one run times
  (a) json.loads per line (the floor),
  (b) `ftbench validate --no-near-dup` (whole process, as a user runs it),
  (c) `ftbench validate` (default: with MinHash near-duplicates),
and prints the ratios and the peak RSS of each validate run (summed over its worker processes).
Targets (issue 2): (b) <= 3x the floor, (c) <= 10x, peak RSS <= 2 GB.

    python benchmarks/bench_validate.py            # 1,000,000 records
    python benchmarks/bench_validate.py -n 100000  # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _vocabulary() -> tuple[list[str], list[str]]:
    """English words and Chinese characters of the bundled datasets, most frequent first (Zipf-like draws
    from them give text whose n-gram statistics look like real SFT data, not like a dozen stock phrases)."""
    import re
    from collections import Counter

    words, chars = Counter(), Counter()
    for name in os.listdir(os.path.join(REPO, "datasets")):
        if name.endswith((".json", ".jsonl")):
            with open(os.path.join(REPO, "datasets", name), encoding="utf-8") as fh:
                text = fh.read()
            words.update(w.lower() for w in re.findall(r"[A-Za-z]{2,}", text))
            chars.update(re.findall(r"[\u4e00-\u9fff]", text))
    return [w for w, _ in words.most_common()], [c for c, _ in chars.most_common()]


EN_WORDS, ZH_CHARS = _vocabulary()
ZH_PUNCT = "，，，。。、；："


def _zipf(rng: random.Random, items: list[str]) -> str:
    """Frequent items more often (rank r drawn with weight ~1/r), as in natural text."""
    return items[min(len(items) - 1, int(len(items) ** rng.random()) - 1)]


def _zh(rng: random.Random, chars: int) -> str:
    out, size = [], 0
    while size < chars:
        piece = "".join(_zipf(rng, ZH_CHARS) for _ in range(rng.randint(4, 14)))
        out.append(piece + rng.choice(ZH_PUNCT))
        size += len(piece) + 1
    return "".join(out)


def _en(rng: random.Random, chars: int) -> str:
    words, size = [], 0
    while size < chars:
        w = _zipf(rng, EN_WORDS)
        words.append(w)
        size += len(w) + 1
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


INSTRUCTIONS_ZH = [
    "请总结下面的内容。",
    "把这段话翻译成英文。",
    "解释一下这个概念。",
    "写一段简短的介绍。",
    "回答下面的问题。",
    "给出三个建议。",
    "改写这句话，使它更正式。",
    "分析下面文本的情感倾向。",
]
INSTRUCTIONS_EN = [
    "Summarise the following text.",
    "Translate this into Chinese.",
    "Explain the concept below.",
    "Write a short introduction.",
    "Answer the question.",
    "Give three suggestions.",
    "Rewrite this sentence more formally.",
    "Classify the sentiment of the review.",
]


def _text(rng: random.Random, chars: int) -> str:
    r = rng.random()
    if r < 0.45:
        return _zh(rng, chars)
    if r < 0.85:
        return _en(rng, chars)
    return _zh(rng, chars // 2) + " " + _en(rng, chars // 2)  # mixed


def generate(path: str, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    recent: list[dict] = []
    with open(path, "w", encoding="utf-8") as fh:
        for _ in range(n):
            r = rng.random()
            if recent and r < 0.01:  # exact duplicate (up to case/whitespace)
                rec = dict(rng.choice(recent))
                rec["instruction"] = rec["instruction"] + " "
            elif recent and r < 0.02:  # near duplicate: a few characters changed
                rec = dict(rng.choice(recent))
                out = rec["output"]
                k = rng.randrange(max(1, len(out) - 3))
                rec["output"] = out[:k] + "的" + out[k + 2 :]
            else:
                zh = rng.random() < 0.5
                instruction = rng.choice(INSTRUCTIONS_ZH if zh else INSTRUCTIONS_EN)
                with_input = rng.random() < 0.35
                if not with_input:  # a task with no input carries its content in the instruction
                    instruction += " " + _text(rng, int(rng.lognormvariate(3.5, 0.6)))
                rec = {
                    "instruction": instruction,
                    "input": _text(rng, int(rng.lognormvariate(4.5, 0.5))) if with_input else "",
                    "output": _text(rng, max(5, int(rng.lognormvariate(5.4, 0.6)))),
                }
                if rng.random() < 0.001:
                    rec["output"] = "我是 {{name}}，由 {{author}} 开发。" + rec["output"]
            recent.append(rec)
            if len(recent) > 1000:
                recent.pop(0)
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


def floor_seconds(path: str) -> float:
    start = time.perf_counter()
    with open(path, "rb") as fh:
        for line in fh:
            json.loads(line)
    return time.perf_counter() - start


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants, from /proc (Linux)."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    stack.extend(int(c) for c in fh.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def run_validate(path: str, *extra: str) -> tuple[float, float, dict]:
    """Wall seconds, peak RSS (MB, whole process tree), and the JSON report's stats."""
    cmd = [sys.executable, "-m", "ftbench", "validate", "--json", "--max-shown", "0", path, *extra]
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE)
        peak = 0

        def sample():
            nonlocal peak
            while proc.poll() is None:
                peak = max(peak, _tree_rss_kb(proc.pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, err = proc.communicate()
        elapsed = time.perf_counter() - start
        sampler.join()
        if proc.returncode not in (0, 1):
            raise SystemExit(f"validate failed ({proc.returncode}): {err.decode()[-2000:]}")
        out.seek(0)
        report = json.loads(out.read())
    return elapsed, peak / 1024, report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=1_000_000, help="records to generate")
    ap.add_argument("--data", help="reuse this JSONL instead of generating (default: a cached file in /tmp)")
    args = ap.parse_args()
    path = args.data or os.path.join(tempfile.gettempdir(), f"ftbench-bench-validate-{args.n}.jsonl")
    if not os.path.exists(path):
        t = time.perf_counter()
        generate(path + ".part", args.n)
        os.replace(path + ".part", path)
        print(
            f"generated {args.n:,} records ({os.path.getsize(path) / 2**20:.0f} MB) in {time.perf_counter() - t:.0f} s"
        )
    size_mb = os.path.getsize(path) / 2**20
    with open(path, "rb") as fh:  # warm the page cache, so no side of the comparison pays for the disk
        while fh.read(1 << 24):
            pass
    floor = floor_seconds(path)
    fast, fast_rss, fast_report = run_validate(path, "--no-near-dup")
    full, full_rss, full_report = run_validate(path)
    stats = full_report["stats"]
    print(
        f"data: {path} ({full_report['records']:,} records, {size_mb:.0f} MB, {os.cpu_count()} CPUs, "
        f"{stats['workers']} validate workers)"
    )
    print(f"(a) json.loads per line (floor)     {floor:7.2f} s")
    print(
        f"(b) ftbench validate --no-near-dup  {fast:7.2f} s  {fast / floor:5.2f}x floor  peak RSS {fast_rss:6.0f} MB"
        "  (target <= 3x)"
    )
    print(
        f"(c) ftbench validate (near-dup on)  {full:7.2f} s  {full / floor:5.2f}x floor  peak RSS {full_rss:6.0f} MB"
        "  (target <= 10x, RSS <= 2048 MB)"
    )
    print(
        f"findings: {len(full_report['warnings']):,} warnings ({stats['exact_duplicates']:,} exact duplicates, "
        f"{stats['near_duplicates']:,} near), {len(full_report['errors']):,} errors; "
        f"--no-near-dup found {len(fast_report['warnings']):,} warnings"
    )


if __name__ == "__main__":
    main()

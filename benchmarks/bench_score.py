"""Benchmark `ftbench score` against LLaMA-Factory's own per-sample metric formula.

For 3,000 and 10,000 (predict, label) pairs of mixed Chinese/English text (~400 characters each), this

1. times LLaMA-Factory's formula (`ComputeSimilarity`: jieba + rouge-chinese + nltk, one process, as its
   metric code runs; jieba's dictionary load is *not* counted, which favours the reference);
2. times `ftbench score FILE --json --samples OUT` as a whole process (interpreter start, imports,
   jieba's dictionary load, workers, bootstrap and output all counted), before and after the reference,
   and uses the mean of the two;
3. checks that every per-sample value and every averaged figure is identical, and prints the ratio.

Usage: .venv/bin/python benchmarks/bench_score.py [--sizes 3000,10000] [--keep DIR]
Needs the reference libraries: pip install rouge-chinese nltk jieba.

Data: labels are clauses of dictionary words (jieba's own dictionary, frequency-weighted), English
technical terms, numbers and punctuation, with paragraph breaks; each prediction keeps about half of its
label's clauses and rewrites, drops or adds the others — roughly how a fine-tuned model's answer relates
to the reference. Seeded, so every run scores the same text.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FTBENCH = os.path.join(os.path.dirname(sys.executable), "ftbench")

ENGLISH = (
    "LoRA adapter learning rate batch size epoch checkpoint tokenizer prompt template GPU memory "
    "Qwen2.5 LLaMA-Factory loss eval step warmup cosine scheduler gradient accumulation fp16 bf16 "
    "dataset alpaca sharegpt JSON Python API model output inference vLLM token"
).split()
PUNCT_CLAUSE = "，，，、；："
PUNCT_END = "。。。！？"


class TextMaker:
    """Clauses of realistic mixed Chinese/English text from jieba's dictionary, seeded."""

    def __init__(self, seed: int):
        import jieba

        self.rng = random.Random(seed)
        words, weights = [], []
        with open(os.path.join(os.path.dirname(jieba.__file__), "dict.txt"), encoding="utf-8") as fh:
            for line in fh:
                word, freq = line.split()[:2]
                if int(freq) >= 300 and len(word) <= 4:
                    words.append(word)
                    weights.append(int(freq))
        self.words = words
        self.cumulative = np.cumsum(weights, dtype=np.float64).tolist()

    def clause(self) -> str:
        rng = self.rng
        parts = []
        for _ in range(rng.randint(3, 9)):
            r = rng.random()
            if r < 0.82:
                parts.append(rng.choices(self.words, cum_weights=self.cumulative)[0])
            elif r < 0.94:
                parts.append(f" {rng.choice(ENGLISH)} ")
            else:
                numbers = [rng.randint(1, 100), rng.randint(100, 5000), round(rng.random() * 10, 2)]
                parts.append(str(rng.choice(numbers)))
        return "".join(parts).strip() + rng.choice(PUNCT_CLAUSE if rng.random() < 0.7 else PUNCT_END)

    def label(self, chars: int) -> list[str]:
        clauses, size = [], 0
        while size < chars:
            c = self.clause()
            if self.rng.random() < 0.06:
                c += "\n"
            clauses.append(c)
            size += len(c)
        return clauses

    def prediction(self, label: list[str]) -> str:
        out = []
        for c in label:
            r = self.rng.random()
            if r < 0.5:
                out.append(c)  # kept
            elif r < 0.85:
                out.append(self.clause())  # rewritten
            elif r < 0.93:
                continue  # dropped
            else:
                out += [c, self.clause()]  # kept, plus an added clause
        return "".join(out)


def make_pairs(n: int, seed: int = 20240601) -> list[dict]:
    maker = TextMaker(seed)
    rows = []
    for i in range(n):
        label = maker.label(400)
        rows.append({"prompt": f"问题 {i}", "predict": maker.prediction(label), "label": "".join(label)})
    return rows


def reference_scores(rows: list[dict]) -> tuple[dict[str, float], dict[str, list[float]], float]:
    """LLaMA-Factory ComputeSimilarity's loop and aggregation; returns (figures, per-sample, seconds)."""
    import jieba
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
    from rouge_chinese import Rouge

    jieba.setLogLevel(logging.CRITICAL)
    jieba.initialize()
    score_dict = {"rouge-1": [], "rouge-2": [], "rouge-l": [], "bleu-4": []}
    start = time.perf_counter()
    for row in rows:
        pred, label = row["predict"], row["label"]
        hypothesis = list(jieba.cut(pred))
        reference = list(jieba.cut(label))
        if len(" ".join(hypothesis).split()) == 0 or len(" ".join(reference).split()) == 0:
            result = {"rouge-1": {"f": 0.0}, "rouge-2": {"f": 0.0}, "rouge-l": {"f": 0.0}}
        else:
            rouge = Rouge()
            scores = rouge.get_scores(" ".join(hypothesis), " ".join(reference))
            result = scores[0]
        for k, v in result.items():
            score_dict[k].append(round(v["f"] * 100, 4))
        bleu_score = sentence_bleu([list(label)], list(pred), smoothing_function=SmoothingFunction().method3)
        score_dict["bleu-4"].append(round(bleu_score * 100, 4))
    figures = {k: float(np.mean(v)) for k, v in score_dict.items()}
    return figures, score_dict, time.perf_counter() - start


def ftbench_scores(path: str, samples: str) -> tuple[dict, dict[str, list[float]], float]:
    start = time.perf_counter()
    proc = subprocess.run(
        [FTBENCH, "score", path, "--json", "--samples", samples], capture_output=True, text=True, cwd=REPO
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"ftbench score failed ({proc.returncode}): {proc.stderr.strip()}")
    out = json.loads(proc.stdout)
    per_sample: dict[str, list[float]] = {k: [] for k in out["metrics"]}
    with open(samples, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            for k in per_sample:
                per_sample[k].append(row[k])
    return out["metrics"], per_sample, seconds


def run(n: int, workdir: str) -> dict:
    rows = make_pairs(n)
    path = os.path.join(workdir, f"generated_predictions_{n}.jsonl")
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    chars = sum(len(r["predict"]) + len(r["label"]) for r in rows) / (2 * n)
    samples = os.path.join(workdir, f"samples_{n}.jsonl")
    # ftbench is timed before and after the reference and the mean is used: the machine is shared, and the
    # mean sees roughly the load the reference saw while it ran between the two
    loads = [os.getloadavg()[0]]
    ours, our_samples, our_s1 = ftbench_scores(path, samples)
    loads.append(os.getloadavg()[0])
    ref, ref_samples, ref_s = reference_scores(rows)
    loads.append(os.getloadavg()[0])
    _, _, our_s2 = ftbench_scores(path, samples)
    our_s = (our_s1 + our_s2) / 2
    mismatched = {k: sum(1 for a, b in zip(ref_samples[k], our_samples[k]) if a != b) for k in ref}
    identical = all(v == 0 for v in mismatched.values()) and all(ref[k] == ours[k] for k in ref)
    printed_equal = all(f"{ref[k]:.4f}" == f"{ours[k]:.4f}" for k in ref)
    print(
        f"\n{n:,} pairs, {chars:.0f} characters per text on average; "
        f"load average {' / '.join(f'{x:.1f}' for x in loads)} (before / between / after)"
    )
    for k in sorted(ref):
        print(f"  {k:8} LLaMA-Factory {ref[k]:.4f}   ftbench {ours[k]:.4f}   per-sample mismatches {mismatched[k]}")
    print(f"  LLaMA-Factory formula: {ref_s:8.2f} s   ({ref_s / n * 1000:.2f} ms/pair, jieba load excluded)")
    print(
        f"  ftbench score process: {our_s:8.2f} s   ({our_s / n * 1000:.2f} ms/pair, everything included; "
        f"runs: {our_s1:.2f} s, {our_s2:.2f} s)"
    )
    print(
        f"  speed-up {ref_s / our_s:.1f}x; figures identical: {'yes' if identical else 'NO'}"
        f" (printed to 4 decimals: {'yes' if printed_equal else 'NO'})"
    )
    return {"n": n, "reference_s": ref_s, "ftbench_s": our_s, "ratio": ref_s / our_s, "identical": identical}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3000,10000", help="comma-separated numbers of pairs")
    parser.add_argument("--keep", help="write the generated files here instead of a temporary folder")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or tmp
        os.makedirs(workdir, exist_ok=True)
        results = [run(int(n), workdir) for n in args.sizes.split(",")]
    if not all(r["identical"] for r in results):
        sys.exit("FAIL: ftbench's figures differ from LLaMA-Factory's")


if __name__ == "__main__":
    main()

"""Speed, memory and recall of ftbench's MinHash LSH near-duplicate index on a synthetic alpaca JSONL.

Writes (once, cached in /tmp) N alpaca records of mixed Chinese/English text, 300-400 characters each, ~1%
of them near-duplicates of another record (1-8 characters edited). Then, each run in a fresh process so
peak RSS is the index's own: reads the file line by line, json.loads each record (not timed), adds
instruction + output to a NearDuplicateIndex (timed), calls pairs() (timed), and reports wall and CPU
time, peak RSS and the recall of the planted pairs by true Jaccard. Also times plain json.loads of the file
(the floor `ftbench validate` is measured against) and datasketch on a subset, extrapolated.

    .venv/bin/python benchmarks/bench_minhash.py              # 1,000,000 records, 2 runs
    .venv/bin/python benchmarks/bench_minhash.py -n 200000 --runs 1 --datasketch-n 0
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

from ftbench.quality.minhash import NearDuplicateIndex, char_shingles

CJK_PUNCT = "，。、！？：；"


def _zipf_ids(rng: np.random.Generator, size: int, vocab: int, a: float = 1.0) -> np.ndarray:
    """Word/character ids with a Zipf frequency (p ~ 1/rank**a), as in natural text."""
    cdf = np.cumsum(1.0 / np.arange(1, vocab + 1) ** a)
    grid = 1 << 20  # an inverse-CDF lookup table: ~20x faster than searchsorted for tens of millions of draws
    inverse = np.searchsorted(cdf, (np.arange(grid) + 0.5) / grid * cdf[-1])
    return inverse[rng.integers(0, grid, size=size)]


def _english_words(rng: np.random.Generator, count: int) -> list[str]:
    """Pronounceable pseudo-words built from syllables, so shingles look like English ones."""
    onsets = ["", "b", "c", "d", "f", "g", "h", "l", "m", "n", "p", "r", "s", "t", "th", "st", "pr", "w"]
    vowels = ["a", "e", "i", "o", "u", "ea", "ou", "io"]
    codas = ["", "n", "r", "s", "t", "nd", "ng", "ll", "ck", "ed", "ing", "tion"]
    words = set()
    while len(words) < count:
        syllables = rng.integers(1, 4)
        words.add(
            "".join(
                onsets[rng.integers(len(onsets))] + vowels[rng.integers(len(vowels))] + codas[rng.integers(len(codas))]
                for _ in range(syllables)
            )
        )
    return sorted(words)


def make_corpus(n: int, seed: int = 0, chunk: int = 10000) -> list[str]:
    """n texts: 45% English, 45% Chinese, 10% Chinese followed by English; 300-400 characters each."""
    rng = np.random.default_rng(seed)
    chars = np.array([ord(c) for c in CJK_PUNCT] + list(range(0x4E00, 0x4E00 + 3500)), dtype=np.uint32)
    vocab = _english_words(rng, 20000)
    vocab = [w.capitalize() if i % 9 == 0 else w for i, w in enumerate(vocab)]
    texts: list[str] = []
    for _ in range(0, n, chunk):  # in chunks, so generating stays fast and small next to what is measured
        lengths = rng.integers(300, 401, size=min(chunk, n - len(texts)))
        kind = rng.choice(3, size=len(lengths), p=[0.45, 0.45, 0.10])
        # Chinese: one long run of Zipf-distributed common characters with punctuation, cut into texts
        cjk_ids = _zipf_ids(rng, int(lengths.sum()), len(chars) - len(CJK_PUNCT)) + len(CJK_PUNCT)
        punct_at = np.flatnonzero(rng.random(len(cjk_ids)) < 0.07)
        cjk_ids[punct_at] = rng.integers(0, len(CJK_PUNCT), size=len(punct_at))
        cjk = chars[cjk_ids].tobytes().decode("utf-32-le")
        # English: Zipf-distributed words joined by spaces, one long run cut at word boundaries
        english = " ".join([vocab[i] for i in _zipf_ids(rng, int(lengths.sum()) // 5, len(vocab)).tolist()])
        cjk_at = en_at = 0
        for length, k in zip(lengths.tolist(), kind.tolist()):
            if k == 0:
                end = english.find(" ", en_at + length)
                texts.append(english[en_at:end])
                en_at = end + 1
            elif k == 1:
                texts.append(cjk[cjk_at : cjk_at + length])
                cjk_at += length
            else:
                end = english.find(" ", en_at + length // 3)
                texts.append(cjk[cjk_at : cjk_at + length * 2 // 3] + "：" + english[en_at:end])
                cjk_at, en_at = cjk_at + length * 2 // 3, end + 1
    return texts


def plant_near_duplicates(texts: list[str], fraction: float, seed: int = 1) -> list[tuple[int, int]]:
    """Overwrite `fraction` of the texts with lightly edited copies of others; returns (source, copy) pairs."""
    rng = np.random.default_rng(seed)
    n = len(texts)
    chosen = rng.choice(n, size=2 * int(n * fraction), replace=False)
    sources, copies = chosen[: len(chosen) // 2], chosen[len(chosen) // 2 :]
    alphabet = "abcdefghijklmnopqrstuvwxyz的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年"
    planted = []
    for s, c in zip(sources.tolist(), copies.tolist()):
        chars = list(texts[s])
        for _ in range(int(rng.integers(1, 9))):  # 1-8 single-character edits
            at, op = int(rng.integers(len(chars))), int(rng.integers(3))
            letter = alphabet[int(rng.integers(len(alphabet)))]
            if op == 0:
                chars[at] = letter
            elif op == 1:
                chars.insert(at, letter)
            elif len(chars) > 1:
                del chars[at]
        texts[c] = "".join(chars)
        planted.append((s, c))
    return planted


def peak_rss_mb() -> float:
    """Peak RSS of this process in MB. VmHWM where Linux has it: getrusage's ru_maxrss survives exec, so in
    a child it would report the parent's peak if that was higher."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def jaccard(a: str, b: str, ngram: int = 5) -> float:
    """True Jaccard similarity of the two texts' character n-gram sets."""
    x, y = char_shingles(a, ngram), char_shingles(b, ngram)
    return len(x & y) / len(x | y)


def record_text(line: str) -> str:
    """The text validate gives the index for an alpaca record: prompt, newline, response."""
    record = json.loads(line)
    return record["instruction"] + "\n" + record["output"]


def write_corpus(path: str, n: int) -> None:
    """Alpaca JSONL of n synthetic records (instruction = first third of a text) plus a planted-pairs file."""
    texts = make_corpus(n)
    planted = plant_near_duplicates(texts, 0.01)
    with open(path + ".tmp", "w", encoding="utf-8") as out:
        for text in texts:
            cut = len(text) // 3
            out.write(
                json.dumps({"instruction": text[:cut], "input": "", "output": text[cut:]}, ensure_ascii=False) + "\n"
            )
    with open(path + ".planted.json", "w") as out:
        json.dump(planted, out)
    os.replace(path + ".tmp", path)


def timed_run(path: str, threshold: float, num_perm: int) -> None:
    """One measured run (in its own process): stream the file into an index, find pairs, print the results."""
    planted = [tuple(p) for p in json.load(open(path + ".planted.json"))]
    wanted = {i for pair in planted for i in pair}
    kept: dict[int, str] = {}  # texts of planted pairs, for their true Jaccard
    index = NearDuplicateIndex(threshold=threshold, num_perm=num_perm)
    add, add_wall, add_cpu = index.add, 0.0, 0.0
    with open(path, encoding="utf-8") as lines:
        while True:
            batch = [record_text(line) for _, line in zip(range(10000), lines)]
            if not batch:
                break
            wall, cpu = time.perf_counter(), time.process_time()
            for text in batch:
                i = add(text)
                if i in wanted:
                    kept[i] = text
            add_wall += time.perf_counter() - wall
            add_cpu += time.process_time() - cpu
    wall, cpu = time.perf_counter(), time.process_time()
    _ = index.signatures  # the last partial batch belongs to the add phase
    pairs = index.pairs()
    pairs_wall, pairs_cpu = time.perf_counter() - wall, time.process_time() - cpu
    rss = peak_rss_mb()
    total = add_wall + pairs_wall
    print(
        f"add {add_wall:.2f} s (cpu {add_cpu:.2f}) + pairs {pairs_wall:.2f} s (cpu {pairs_cpu:.2f}) = "
        f"{total:.2f} s wall, {add_cpu + pairs_cpu:.2f} s cpu; {len(index) / total:,.0f} records/s; "
        f"peak RSS {rss:.0f} MB (signatures {index.signatures.nbytes / 2**20:.0f} MB)"
    )
    print(
        f"index: {index.num_perm} hashes, {index.bands} bands x {index.rows} rows, "
        f"character {index.ngram}-grams, threshold {index.threshold}"
    )
    recall_report(kept, pairs, planted, threshold)


def recall_report(texts: dict[int, str], pairs: list, planted: list[tuple[int, int]], threshold: float) -> None:
    """Recall of planted pairs (same cluster) by true-Jaccard band, and how many reported pairs were planted."""
    root = {later: first for first, later, _ in pairs}
    found = np.array([root.get(s, s) == root.get(c, c) for s, c in planted])
    true_j = np.array([jaccard(texts[s], texts[c]) for s, c in planted])
    print(f"planted pairs: {len(planted)}, true Jaccard min {true_j.min():.3f} median {np.median(true_j):.3f}")
    for lo, hi in (
        (threshold + 0.1, 1.01),
        (threshold + 0.05, threshold + 0.1),
        (threshold, threshold + 0.05),
        (0.0, threshold),
    ):
        band = (true_j >= lo) & (true_j < hi)
        if band.any():
            print(f"  true Jaccard [{lo:.2f}, {min(hi, 1):.2f}): {band.sum():6d} pairs, found {found[band].mean():.2%}")
    print(f"recall of planted pairs with true Jaccard >= {threshold}: {found[true_j >= threshold].mean():.2%}")
    planted_ids = {i for pair in planted for i in pair}
    stray = [(a, b, s) for a, b, s in pairs if a not in planted_ids or b not in planted_ids]
    print(f"reported pairs: {len(pairs)}; involving a record that was not planted: {len(stray)}")


def json_floor(path: str) -> float:
    """Seconds to read the file and json.loads every line: the floor validate's time is compared with."""
    start = time.perf_counter()
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            json.loads(line)
    return time.perf_counter() - start


def datasketch_speed(path: str, count: int, threshold: float, num_perm: int, ngram: int = 5) -> float:
    """Seconds datasketch takes per record (MinHash.update_batch + MinHashLSH query and insert)."""
    from datasketch import MinHash, MinHashLSH

    with open(path, encoding="utf-8") as lines:
        texts = [record_text(line) for _, line in zip(range(count), lines)]
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    start = time.perf_counter()
    for i, text in enumerate(texts):
        m = MinHash(num_perm=num_perm)
        m.update_batch([s.encode("utf-8") for s in char_shingles(text, ngram)])
        lsh.query(m)
        lsh.insert(i, m)
    return (time.perf_counter() - start) / len(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1_000_000, help="number of records")
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--num-perm", type=int, default=128)
    parser.add_argument("--runs", type=int, default=2, help="measured runs, each in a fresh process")
    parser.add_argument("--datasketch-n", type=int, default=20000, help="subset for datasketch (0: skip)")
    parser.add_argument("--run-one", metavar="PATH", help=argparse.SUPPRESS)  # internal: one measured run
    args = parser.parse_args()
    if args.run_one:
        timed_run(args.run_one, args.threshold, args.num_perm)
        return

    path = f"/tmp/ftbench_bench_minhash_v1_{args.n}.jsonl"  # bump v1 when the generator changes
    if not os.path.exists(path):
        start = time.perf_counter()
        write_corpus(path, args.n)
        print(f"wrote {path} in {time.perf_counter() - start:.0f} s")
    print(
        f"{args.n:,} records, {os.path.getsize(path) / 2**20:.0f} MB; json.loads of every line: "
        f"{json_floor(path):.2f} s"
    )
    for run in range(args.runs):
        print(f"--- run {run + 1} ---", flush=True)
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--run-one",
                path,
                "--threshold",
                str(args.threshold),
                "--num-perm",
                str(args.num_perm),
            ],
            check=True,
        )
    if args.datasketch_n:
        per_record = datasketch_speed(path, args.datasketch_n, args.threshold, args.num_perm)
        print(
            f"datasketch (update_batch + LSH query/insert) on {args.datasketch_n:,} records: "
            f"{per_record * 1e6:.0f} us/record, extrapolated to {args.n:,}: {per_record * args.n:.0f} s"
        )


if __name__ == "__main__":
    main()

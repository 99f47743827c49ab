"""Whole-dataset quality checks over the facts that `RecordChecker` collected from every shard.

Shards come back in file order; `DatasetChecks.add` shifts their record indices and lines into place, then
`finish` finds exact duplicates and conflicting outputs (vectorised over the hash columns), label skew,
near-duplicates (MinHash LSH) and train/test overlap, and summarises the data.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ftbench.api.findings import Finding
from ftbench.quality.checks import LABEL_SET_MAX, LANGUAGES, QualityOptions, RecordFacts, short

COLUMNS = (
    "record",
    "line",
    "key",
    "prompt",
    "response",
    "prompt_chars",
    "response_chars",
    "tokens",
    "turns",
    "language",
)


def _percentiles(a: np.ndarray) -> dict:
    if not len(a):
        return {"p50": 0, "p90": 0, "p99": 0, "max": 0, "mean": 0.0}
    p50, p90, p99 = np.percentile(a, [50, 90, 99], method="nearest")
    return {"p50": int(p50), "p90": int(p90), "p99": int(p99), "max": int(a.max()), "mean": round(float(a.mean()), 1)}


def _first_index(keys: np.ndarray) -> np.ndarray:
    """For every position, the position of the first occurrence of the same key."""
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return first[inverse]


class DatasetChecks:
    """Merges per-shard facts in order and runs the checks that need every record at once."""

    def __init__(self, options: QualityOptions):
        self.opt = options
        self.files: list[str] = []
        self.parts: dict[str, list] = {c: [] for c in COLUMNS}
        self.file_ids: list[np.ndarray] = []
        self.signatures: list = []
        self.prompts: list[str] = []
        self.label_text: dict[int, str] | None = {}
        self.warnings: list[Finding] = []
        self.test_prompts: dict[int, tuple] = {}
        self.test_texts: list[str] = []

    def add(self, file: str, facts: RecordFacts, *, line_offset: int = 0, record_offset: int = 0) -> None:
        """Append one shard's facts; the offsets move a shard's record indices and lines into the file's."""
        if file not in self.files:
            self.files.append(file)
        fid = self.files.index(file)
        for c in COLUMNS:
            values = getattr(facts, c)
            column = np.frombuffer(values, dtype=values.typecode) if len(values) else np.zeros(0, values.typecode)
            if c == "record" and record_offset:
                column = column + np.uint32(record_offset)
            elif c == "line" and line_offset:
                column = np.where(column > 0, column + np.uint32(line_offset), column)
            self.parts[c].append(column)
        self.file_ids.append(np.full(len(facts.record), fid, dtype=np.uint32))
        if facts.signatures is not None:
            self.signatures.append(facts.signatures)
        if facts.prompts is not None:
            self.prompts.extend(facts.prompts)
        if self.label_text is not None:
            if facts.label_text or not len(facts.record):
                for h, text in facts.label_text.items():
                    self.label_text.setdefault(h, text)
                if len(self.label_text) > LABEL_SET_MAX:
                    self.label_text = None
            else:
                self.label_text = None

    def add_test_sample(self, file: str, record: int, line: int | None, prompt_text: str) -> None:
        """A record of the --against test set, remembered for the overlap check."""
        norm = " ".join(prompt_text.lower().split())
        self.test_prompts.setdefault(hash(norm), (file, record, line))
        self.test_texts.append(norm)

    # -- the checks -----------------------------------------------------------------------------------
    def finish(self) -> tuple[list[Finding], dict]:
        col = {c: np.concatenate(p) if p else np.zeros(0) for c, p in self.parts.items()}
        self.col = col
        self.fid = np.concatenate(self.file_ids) if self.file_ids else np.zeros(0, dtype=np.uint32)
        n = len(col["record"])
        first_key = _first_index(col["key"]) if n else np.zeros(0, dtype=np.int64)
        is_first = first_key == np.arange(n)
        for i in np.flatnonzero(~is_first):
            self._warn_at(
                i,
                "exact-duplicate",
                f"duplicate of {self._where(first_key[i])} (same text after whitespace/case normalisation)",
                "remove it: duplicates overweight one example",
            )
        conflicts = self._conflicting_outputs(is_first)
        near = self._near_duplicates(is_first)
        self._label_skew(n)
        stats = {
            "valid_records": n,
            "prompt_chars": _percentiles(col["prompt_chars"]),
            "response_chars": _percentiles(col["response_chars"]),
            "tokens": {**_percentiles(col["tokens"]), "estimated": self.opt.token_counter is None},
            "turns": _percentiles(col["turns"]),
            "languages": {LANGUAGES[k]: int(v) for k, v in zip(*np.unique(col["language"], return_counts=True))},
            "exact_duplicates": int(n - is_first.sum()),
            "near_duplicates": near,
            "conflicting_outputs": conflicts,
        }
        if self.opt.near_dup:
            from ftbench.quality.minhash import NearDuplicateIndex

            ix = NearDuplicateIndex(threshold=self.opt.near_dup_threshold)
            stats["near_dup_method"] = (
                f"MinHash LSH, {ix.num_perm} hashes in {ix.bands} bands of {ix.rows}, "
                f"character {ix.ngram}-grams, Jaccard >= {ix.threshold}"
            )
        if self.opt.cutoff_len:
            stats["over_cutoff_len"] = int((col["tokens"] > self.opt.cutoff_len).sum())
        if self.opt.keep_prompts:
            stats["test_overlap"] = self._test_overlap()
        return self.warnings, stats

    def _conflicting_outputs(self, is_first: np.ndarray) -> int:
        """Same normalised prompt, different normalised output (exact duplicates excluded)."""
        idx = np.flatnonzero(is_first)
        if not len(idx):
            return 0
        first = idx[_first_index(self.col["prompt"][idx])]
        clash = idx[self.col["response"][idx] != self.col["response"][first]]
        first_of = dict(zip(idx.tolist(), first.tolist()))
        for i in clash:
            self._warn_at(
                i,
                "conflicting-outputs",
                f"same prompt as {self._where(first_of[int(i)])} but a different output",
                "keep one answer per prompt, or make the prompts differ",
            )
        return len(clash)

    def _near_duplicates(self, is_first: np.ndarray) -> int:
        if not self.opt.near_dup or not self.signatures:
            return 0
        from ftbench.quality.minhash import NearDuplicateIndex

        sig = np.concatenate(self.signatures) if len(self.signatures) > 1 else self.signatures[0]
        self.signatures = []
        keep = np.flatnonzero(is_first)  # exact duplicates are reported already
        index = NearDuplicateIndex.from_signatures(sig[keep], threshold=self.opt.near_dup_threshold)
        del sig
        pairs = index.pairs()
        for a, b, sim in pairs:
            self._warn_at(
                keep[b],
                "near-duplicate",
                f"near-duplicate of {self._where(keep[a])} (estimated Jaccard {sim:.2f})",
                "near-copies overweight one example; keep one or make them differ",
            )
        return len(pairs)

    def _label_skew(self, n: int) -> None:
        if self.label_text is None or n < 20 or not 2 <= len(self.label_text) <= LABEL_SET_MAX:
            return
        counts = Counter(self.col["response"].tolist()).most_common()
        (top_h, top_n), (_, low_n) = counts[0], counts[-1]
        if top_n / n >= 0.6 or top_n >= 5 * low_n:
            dist = ", ".join(f"{short(self.label_text[h])!r}: {c}" for h, c in counts)
            self.warnings.append(
                Finding(
                    "label-skew",
                    f"outputs come from {len(counts)} distinct values with a skewed distribution ({dist})",
                    severity="warning",
                    hint=f"the model may learn to always answer {short(self.label_text[top_h])!r}; balance the classes",
                    file=self.files[0] if len(self.files) == 1 else None,
                )
            )

    def _test_overlap(self) -> dict:
        exact = 0
        for i, np_ in enumerate(self.prompts):
            hit = self.test_prompts.get(hash(np_))
            if hit is not None:
                exact += 1
                self._warn_at(
                    i,
                    "test-overlap-exact",
                    f"the same prompt is in the test set at {_fmt_loc(*hit)}",
                    "remove it from training, or the test score measures memorisation",
                )
        near = 0
        if self.opt.near_dup and self.test_texts and self.prompts:
            from ftbench.quality.minhash import NearDuplicateIndex

            train, test = (NearDuplicateIndex(threshold=self.opt.near_dup_threshold) for _ in range(2))
            train.add_many(self.prompts)
            test.add_many(self.test_texts)
            locations = list(self.test_prompts.values())
            for a, b, sim in train.cross_pairs(test):
                if hash(self.prompts[a]) in self.test_prompts:
                    continue  # reported as exact
                near += 1
                where = _fmt_loc(*locations[b]) if b < len(locations) else f"test record {b}"
                self._warn_at(
                    a,
                    "test-overlap-near",
                    f"prompt is a near copy (Jaccard {sim:.2f}) of the test prompt at {where}",
                    "remove or rewrite it: near copies leak the test set",
                )
        return {"exact": exact, "near": near, "test_records": len(self.test_texts)}

    # -- locations ------------------------------------------------------------------------------------
    def _warn_at(self, i, code: str, message: str, hint: str | None) -> None:
        i = int(i)
        record, line = int(self.col["record"][i]), int(self.col["line"][i])
        self.warnings.append(
            Finding(
                code,
                message,
                severity="warning",
                hint=hint,
                file=self.files[self.fid[i]],
                line=line or None,
                record=record,
                path=f"[{record}]",
            )
        )

    def _where(self, i) -> str:
        i = int(i)
        return _fmt_loc(self.files[self.fid[i]], int(self.col["record"][i]), int(self.col["line"][i]) or None)


def _fmt_loc(file: str, record: int, line: int | None) -> str:
    return f"{file}:{line} [{record}]" if line else f"{file} [{record}]"

"""Dataset-level quality warnings, computed in one streaming pass over the samples.

`QualityChecker.observe` is called once per valid sample (it must stay cheap: a million records);
`finish` runs what needs the whole dataset (near-duplicates, label skew, train/test overlap) and returns
warnings plus summary statistics.
"""

from __future__ import annotations

import re
from array import array
from collections import Counter
from dataclasses import dataclass

from ftbench.api.findings import Finding
from ftbench.data.formats import Sample
from ftbench.quality.text import find_placeholders, text_problems

GSM8K_ANSWER = re.compile(r"#### (\-?[0-9\.\,]+)\s*$")  # lm-eval's strict-match pattern, anchored at the end
LABEL_SET_MAX = 20  # outputs drawn from at most this many distinct values look like classification labels
CHAT_OVERHEAD_TOKENS = 10  # rough template cost: role markers per turn and a default system prompt
CHAT_TOKENS_PER_TURN = 5


def normalise(text: str) -> str:
    """Case- and whitespace-insensitive form used for duplicate and overlap checks."""
    return " ".join(text.lower().split())


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate for Qwen-class BPE: ~1.4 CJK characters or ~3.8 other characters a token."""
    wide = (len(text.encode("utf-8")) - len(text)) // 2  # CJK characters take 3 bytes in UTF-8
    return int(wide * 0.72 + (len(text) - wide) / 3.8) + 1


def _percentiles(values: array) -> dict:
    if not values:
        return {"p50": 0, "p90": 0, "p99": 0, "max": 0, "mean": 0.0}
    import numpy as np

    a = np.frombuffer(values, dtype=np.uint32) if values.typecode == "I" else np.asarray(values)
    p50, p90, p99 = np.percentile(a, [50, 90, 99], method="nearest")
    return {"p50": int(p50), "p90": int(p90), "p99": int(p99), "max": int(a.max()), "mean": round(float(a.mean()), 1)}


@dataclass
class QualityOptions:
    """What the quality pass checks, from validate's command-line options."""

    near_dup: bool = True
    near_dup_threshold: float = 0.8
    cutoff_len: int | None = None
    task: str | None = None  # "gsm8k": answers must end in "#### <number>"
    token_counter: object | None = None  # quality.tokens.TokenCounter when --tokenizer is given


class QualityChecker:
    """Streams samples, warns about what is wrong with the data as training data, and summarises it."""

    def __init__(self, options: QualityOptions):
        self.opt = options
        self.warnings: list[Finding] = []
        self.files: list[str] = []
        self._file_ids: dict[str, int] = {}
        # per-sample location, kept compact: a million records must fit easily in memory
        self.loc_file, self.loc_record, self.loc_line = array("I"), array("I"), array("I")
        self.prompt_chars, self.response_chars, self.tokens, self.turns = array("I"), array("I"), array("I"), array("I")
        self.languages = Counter()
        self.seen: dict[int, int] = {}  # hash(normalised prompt, response) -> first sample
        self.prompt_first: dict[int, tuple[int, int]] = {}  # hash(prompt) -> (hash(response), first sample)
        self.labels: Counter = Counter()
        self.label_text: dict[int, str] = {}
        self.duplicates = 0
        self.near_index = None
        self.near_ids = array("I")  # near-dup index id -> sample number
        # train/test overlap (--against): the test prompts, and every train prompt kept for the comparison
        self.prompt_norms: list[str] | None = None
        self.test_prompts: dict[int, tuple] = {}
        self.test_samples: list[str] = []
        self.pending_token_samples: list[tuple[int, Sample]] = []
        if options.near_dup:
            from ftbench.quality.minhash import NearDuplicateIndex

            self.near_index = NearDuplicateIndex(threshold=options.near_dup_threshold)

    # -- streaming pass ------------------------------------------------------------------------------
    def observe(self, s: Sample) -> None:
        n = len(self.loc_record)
        fid = self._file_ids.get(s.file)
        if fid is None:
            fid = self._file_ids[s.file] = len(self.files)
            self.files.append(s.file)
        self.loc_file.append(fid)
        self.loc_record.append(s.record)
        self.loc_line.append(s.line or 0)

        prompt, response = s.prompt_text(), s.response_text()
        np_, nr = normalise(prompt), normalise(response)
        key = hash((np_, nr))
        first = self.seen.setdefault(key, n)
        if first != n:
            self.duplicates += 1
            self._warn(s, "exact-duplicate", "", f"duplicate of {self._where(first)} (same text after "
                       "whitespace/case normalisation)", "remove it: duplicates overweight one example")
        else:
            ph, rh = hash(np_), hash(nr)
            prev = self.prompt_first.setdefault(ph, (rh, n))
            if prev[0] != rh:
                self._warn(s, "conflicting-outputs", s.response_path, f"same prompt as {self._where(prev[1])} "
                           "but a different output", "keep one answer per prompt, or make the prompts differ")
            if self.near_index is not None:
                self.near_index.add(np_ + "\n" + nr)
                self.near_ids.append(n)
        if self.prompt_norms is not None:
            self.prompt_norms.append(np_)

        if not nr:
            self._warn(s, "empty-output", s.response_path, "the output is empty or whitespace only",
                       "an empty answer teaches the model to say nothing; fill it or drop the record")
        elif len(s.turns) >= 2 and nr == normalise(s.turns[-2][1]):
            self._warn(s, "output-equals-prompt", s.response_path, "the output is identical to the prompt",
                       "the answer just repeats the question; probably a copy-paste slip")
        for path, text in s.fields.items():
            found = find_placeholders(text)
            if found:
                shown = ", ".join(dict.fromkeys(found))
                self._warn(s, "placeholder", path, f"unreplaced template placeholder {shown}",
                           "fill it: ftbench augment fill DATA -o OUT --set name=... --set author=...")
            for code, message, hint in text_problems(text):
                self._warn(s, code, path, message, hint)

        if self.opt.task == "gsm8k" and not GSM8K_ANSWER.search(response):
            self._warn(s, "gsm8k-answer-format", s.response_path, _gsm8k_problem(response),
                       "end the answer with '#### <number>', as GSM8K and lm-eval's strict-match expect")

        rh = hash(nr)
        if len(self.labels) <= LABEL_SET_MAX or rh in self.labels:
            self.labels[rh] += 1
            self.label_text.setdefault(rh, response)
        self.prompt_chars.append(len(prompt))
        self.response_chars.append(len(response))
        self.turns.append(len(s.turns))
        whole = prompt + response
        if whole.isascii():
            self.languages["en"] += 1
        else:
            wide = (len(whole.encode("utf-8")) - len(whole)) / 2 / max(1, len(whole))
            self.languages["zh" if wide >= 0.5 else "en" if wide < 0.05 else "mixed"] += 1
        if self.opt.token_counter is not None:
            self.pending_token_samples.append((n, s))
            if len(self.pending_token_samples) >= 256:
                self._count_tokens()
        else:
            est = estimate_tokens(whole) + CHAT_OVERHEAD_TOKENS + CHAT_TOKENS_PER_TURN * len(s.turns)
            self.tokens.append(est)
            if self.opt.cutoff_len and est > self.opt.cutoff_len:
                self._warn(s, "too-long", "", f"about {est} tokens (estimated without a tokenizer) > cutoff_len "
                           f"{self.opt.cutoff_len}", "it will be truncated; pass --tokenizer for exact counts")

    def observe_test(self, s: Sample) -> None:
        """A record of the --against test set: remembered for the overlap check."""
        self.test_prompts.setdefault(hash(normalise(s.prompt_text())), (s.file, s.record, s.line))
        self.test_samples.append(normalise(s.prompt_text()))

    def expect_test_set(self) -> None:
        """Call before observing anything when a test set will be compared against."""
        self.prompt_norms = []

    # -- whole-dataset checks ------------------------------------------------------------------------
    def finish(self) -> tuple[list[Finding], dict]:
        if self.pending_token_samples:
            self._count_tokens()
        near = self._near_duplicates() if self.near_index is not None else 0
        self._label_skew()
        overlap = self._test_overlap() if self.prompt_norms is not None else None
        stats = {
            "valid_records": len(self.loc_record),
            "prompt_chars": _percentiles(self.prompt_chars),
            "response_chars": _percentiles(self.response_chars),
            "tokens": {**_percentiles(self.tokens), "estimated": self.opt.token_counter is None},
            "turns": _percentiles(self.turns),
            "languages": dict(self.languages),
            "exact_duplicates": self.duplicates,
            "near_duplicates": near,
        }
        if self.near_index is not None:
            ix = self.near_index
            stats["near_dup_method"] = (f"MinHash LSH, {ix.num_perm} hashes in {ix.bands} bands of {ix.rows}, "
                                        f"character {ix.ngram}-grams, Jaccard >= {ix.threshold}")
        if overlap is not None:
            stats["test_overlap"] = overlap
        if self.opt.cutoff_len:
            stats["over_cutoff_len"] = sum(1 for t in self.tokens if t > self.opt.cutoff_len)
        return self.warnings, stats

    def _near_duplicates(self) -> int:
        pairs = self.near_index.pairs()
        for a, b, sim in pairs:
            first, later = self.near_ids[a], self.near_ids[b]
            self._warn_at(later, "near-duplicate", f"near-duplicate of {self._where(first)} (estimated Jaccard "
                          f"{sim:.2f})", "near-copies overweight one example; keep one or make them differ")
        return len(pairs)

    def _label_skew(self) -> None:
        n = len(self.loc_record)
        if n < 20 or not 2 <= len(self.labels) <= LABEL_SET_MAX or sum(self.labels.values()) != n:
            return
        top = self.labels.most_common()
        (top_h, top_n), (low_h, low_n) = top[0], top[-1]
        if top_n / n >= 0.6 or top_n >= 5 * low_n:
            dist = ", ".join(f"{_short(self.label_text[h])!r}: {c}" for h, c in top)
            self.warnings.append(Finding("label-skew", f"outputs come from {len(top)} distinct values with a skewed "
                                         f"distribution ({dist})", severity="warning",
                                         hint="the model may learn to always answer "
                                         f"{_short(self.label_text[top_h])!r}; balance the classes",
                                         file=self.files[0] if len(self.files) == 1 else None))

    def _test_overlap(self) -> dict:
        exact = 0
        for n, np_ in enumerate(self.prompt_norms):
            hit = self.test_prompts.get(hash(np_))
            if hit is not None:
                exact += 1
                self._warn_at(n, "test-overlap-exact", f"the same prompt is in the test set at {_fmt_loc(*hit)}",
                              "remove it from training, or the test score measures memorisation")
        near = 0
        if self.near_index is not None and self.test_samples:
            from ftbench.quality.minhash import NearDuplicateIndex

            train, test = (NearDuplicateIndex(threshold=self.opt.near_dup_threshold) for _ in range(2))
            train.add_many(self.prompt_norms)
            test.add_many(self.test_samples)
            exact_hits = {hash(t) for t in self.test_samples}
            for a, b, sim in train.cross_pairs(test):
                if hash(self.prompt_norms[a]) in exact_hits:
                    continue
                near += 1
                self._warn_at(a, "test-overlap-near", f"prompt is a near copy (Jaccard {sim:.2f}) of test record "
                              f"{b}", "remove or rewrite it: near copies leak the test set into training")
        return {"exact": exact, "near": near, "test_records": len(self.test_samples)}

    # -- helpers ------------------------------------------------------------------------------------
    def _count_tokens(self) -> None:
        batch, self.pending_token_samples = self.pending_token_samples, []
        counts = self.opt.token_counter.count([s for _, s in batch])
        for (n, s), count in zip(batch, counts):
            self.tokens.append(count)
            if self.opt.cutoff_len and count > self.opt.cutoff_len:
                self._warn(s, "too-long", "", f"{count} tokens > cutoff_len {self.opt.cutoff_len}",
                           f"{count - self.opt.cutoff_len} tokens will be cut off the end in training; shorten it "
                           "or raise cutoff_len")

    def _warn(self, s: Sample, code: str, path: str, message: str, hint: str | None) -> None:
        self.warnings.append(Finding(code, message, severity="warning", hint=hint, file=s.file, line=s.line,
                                     record=s.record, path=f"[{s.record}]{path}"))

    def _warn_at(self, n: int, code: str, message: str, hint: str | None) -> None:
        record = self.loc_record[n]
        self.warnings.append(Finding(code, message, severity="warning", hint=hint, file=self.files[self.loc_file[n]],
                                     line=self.loc_line[n] or None, record=record, path=f"[{record}]"))

    def _where(self, n: int) -> str:
        return _fmt_loc(self.files[self.loc_file[n]], self.loc_record[n], self.loc_line[n] or None)


def _fmt_loc(file: str, record: int, line: int | None) -> str:
    return f"{file}:{line} [{record}]" if line else f"{file} [{record}]"


def _short(text: str, limit: int = 30) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _gsm8k_problem(response: str) -> str:
    if "####" not in response:
        return "the answer has no '#### <number>' line"
    tail = response.rsplit("####", 1)[1]
    if not re.match(r" \-?[0-9\.\,]+", tail):
        return f"'####' is not followed by ' <number>' (found {_short(tail.strip(), 20)!r})"
    return f"text follows the final answer: {_short(tail.strip(), 30)!r}"

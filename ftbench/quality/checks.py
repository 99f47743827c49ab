"""Per-record quality checks, run in one streaming pass (possibly in several worker processes).

`RecordChecker.observe` is called once per valid sample and must stay cheap (a million records): it emits
the warnings that one record shows on its own (empty output, placeholders, broken text, ...) and keeps
compact per-record facts (hashes, lengths) in arrays, from which `quality.dataset` finds what needs the
whole dataset (duplicates, conflicting outputs, label skew, near-duplicates, train/test overlap).
"""

from __future__ import annotations

import re
from array import array
from dataclasses import dataclass, field

from ftbench.api.findings import Finding
from ftbench.data.formats import Sample
from ftbench.metrics.gsm8k import STRICT_PATTERN
from ftbench.quality.text import find_placeholders, looks_broken, text_problems

GSM8K_ANSWER = re.compile(STRICT_PATTERN + r"\s*$")  # lm-eval's strict-match pattern, anchored at the end
LABEL_SET_MAX = 20  # outputs drawn from at most this many distinct values look like classification labels
CHAT_OVERHEAD_TOKENS = 10  # rough template cost: role markers per turn and a default system prompt
CHAT_TOKENS_PER_TURN = 5
LANGUAGES = ("en", "mixed", "zh")


def normalise(text: str) -> str:
    """Case- and whitespace-insensitive form used for duplicate and overlap checks."""
    return " ".join(text.lower().split())


@dataclass
class QualityOptions:
    """What the quality pass checks, from validate's command-line options."""

    near_dup: bool = True
    near_dup_threshold: float = 0.8
    cutoff_len: int | None = None
    answer_format: str | None = None  # "gsm8k": answers must end in "#### <number>"
    token_counter: object | None = None  # quality.tokens.TokenCounter when --tokenizer is given
    keep_prompts: bool = False  # keep normalised prompts for the --against overlap check


@dataclass
class RecordFacts:
    """Columnar facts about every valid record of one shard, in order (cheap to pickle between processes)."""

    record: array = field(default_factory=lambda: array("I"))
    line: array = field(default_factory=lambda: array("I"))  # 0 = unknown
    key: array = field(default_factory=lambda: array("q"))  # hash of normalised (prompt, response)
    prompt: array = field(default_factory=lambda: array("q"))  # hash of normalised prompt
    response: array = field(default_factory=lambda: array("q"))  # hash of normalised response
    prompt_chars: array = field(default_factory=lambda: array("I"))
    response_chars: array = field(default_factory=lambda: array("I"))
    tokens: array = field(default_factory=lambda: array("I"))
    turns: array = field(default_factory=lambda: array("I"))
    language: array = field(default_factory=lambda: array("B"))  # index into LANGUAGES
    label_text: dict = field(default_factory=dict)  # response hash -> text, while there are few distinct
    prompts: list | None = None  # normalised prompts, for --against
    signatures: object | None = None  # MinHash signatures (numpy uint16 rows), for near-duplicates


class RecordChecker:
    """Checks records one at a time and collects their facts; one instance per shard of a file."""

    def __init__(self, options: QualityOptions, file: str):
        self.opt, self.file = options, file
        self.warnings: list[Finding] = []
        self.facts = RecordFacts(prompts=[] if options.keep_prompts else None)
        self.labels_open = True
        self.near_index = None
        self.pending_tokens: list[Sample] = []
        if options.near_dup:
            from ftbench.quality.minhash import NearDuplicateIndex

            self.near_index = NearDuplicateIndex(threshold=options.near_dup_threshold)

    def observe(self, s: Sample) -> None:
        # hot path: a million calls must cost a few microseconds each, hence the inlining and fast paths
        f = self.facts
        f.record.append(s.record)
        f.line.append(s.line or 0)
        prompt, response = s.prompt_text(), s.response_text()
        np_, nr = " ".join(prompt.lower().split()), " ".join(response.lower().split())
        rh, key = hash(nr), hash((np_, nr))
        f.key.append(key)
        f.prompt.append(hash(np_) if np_ else key)  # no prompt (pretraining text): never a "conflicting output"
        f.response.append(rh)
        if self.near_index is not None:
            self.near_index.add(np_ + "\n" + nr)
        if f.prompts is not None:
            f.prompts.append(np_)

        if not nr:
            if s.kind != "pretrain":  # (an empty text was reported as empty-text when it was read)
                self._warn(
                    s,
                    "empty-output",
                    s.response_path,
                    "the output is empty or whitespace only",
                    "an empty answer teaches the model to say nothing; fill it or drop the record",
                )
        elif (
            len(s.turns) >= 2
            and abs(len(s.turns[-2][1]) - len(response)) <= len(response) // 4 + 2
            and nr == normalise(s.turns[-2][1])
        ):
            self._warn(
                s,
                "output-equals-prompt",
                s.response_path,
                "the output is identical to the prompt",
                "the answer just repeats the question; probably a copy-paste slip",
            )
        blob = "\n".join(s.fields.values())  # one prefilter over all fields; per-field work only on a hit
        raw = None if blob.isascii() else blob.encode("utf-8", "surrogatepass")
        if find_placeholders(blob) or looks_broken(blob, raw):
            self._text_findings(s)
        if self.opt.answer_format == "gsm8k" and not GSM8K_ANSWER.search(response):
            self._warn(
                s,
                "gsm8k-answer-format",
                s.response_path,
                _gsm8k_problem(response),
                "end the answer with '#### <number>', as GSM8K and lm-eval's strict-match expect",
            )

        if self.labels_open:  # classification-like data only: stop remembering once outputs are too varied
            f.label_text.setdefault(rh, response)
            self.labels_open = len(f.label_text) <= LABEL_SET_MAX
        f.prompt_chars.append(len(prompt))
        f.response_chars.append(len(response))
        f.turns.append(len(s.turns))
        size = len(prompt) + len(response)
        # CJK characters take 3 bytes; the fields hold the same text as prompt and response (plus ASCII newlines)
        wide = 0 if raw is None else min((len(raw) - len(blob)) // 2, size)
        share = wide / size if size else 0.0
        f.language.append(2 if share >= 0.5 else 0 if share < 0.05 else 1)
        if self.opt.token_counter is not None:
            self.pending_tokens.append(s)
            if len(self.pending_tokens) >= 256:
                self._count_tokens()
        else:  # tokenizer-free estimate for Qwen-class BPE: ~1.4 CJK or ~3.8 other characters a token
            est = (
                int(wide * 0.72 + (size - wide) / 3.8) + 1 + CHAT_OVERHEAD_TOKENS + CHAT_TOKENS_PER_TURN * len(s.turns)
            )
            f.tokens.append(est)
            if self.opt.cutoff_len and est > self.opt.cutoff_len:
                self._warn(
                    s,
                    "too-long",
                    "",
                    f"about {est} tokens (estimated without a tokenizer) > cutoff_len {self.opt.cutoff_len}",
                    "it will be truncated; pass --tokenizer for exact counts",
                )

    def finish(self) -> tuple[RecordFacts, list[Finding]]:
        if self.pending_tokens:
            self._count_tokens()
        if self.near_index is not None:
            self.facts.signatures = self.near_index.signatures
        if not self.labels_open:
            self.facts.label_text = {}
        return self.facts, self.warnings

    def _text_findings(self, s: Sample) -> None:
        for path, text in s.fields.items():
            found = find_placeholders(text)
            if found:
                shown = ", ".join(dict.fromkeys(found))
                self._warn(
                    s,
                    "placeholder",
                    path,
                    f"unreplaced template placeholder {shown}",
                    "fill it: ftbench augment fill DATA -o OUT --set name=... --set author=...",
                )
            for code, message, hint in text_problems(text):
                self._warn(s, code, path, message, hint)

    def _count_tokens(self) -> None:
        batch, self.pending_tokens = self.pending_tokens, []
        for s, count in zip(batch, self.opt.token_counter.count(batch)):
            self.facts.tokens.append(count)
            if self.opt.cutoff_len and count > self.opt.cutoff_len:
                self._warn(
                    s,
                    "too-long",
                    "",
                    f"{count} tokens > cutoff_len {self.opt.cutoff_len}",
                    f"{count - self.opt.cutoff_len} tokens will be cut off the end in training; shorten it "
                    "or raise cutoff_len",
                )

    def _warn(self, s: Sample, code: str, path: str, message: str, hint: str | None) -> None:
        self.warnings.append(
            Finding(
                code,
                message,
                severity="warning",
                hint=hint,
                file=s.file,
                line=s.line,
                record=s.record,
                path=f"[{s.record}]{path}",
            )
        )


def short(text: str, limit: int = 30) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _gsm8k_problem(response: str) -> str:
    if "####" not in response:
        return "the answer has no '#### <number>' line"
    tail = response.rsplit("####", 1)[1]
    if not re.match(r" \-?[0-9\.\,]+", tail):
        return f"'####' is not followed by ' <number>' (found {short(tail.strip(), 20)!r})"
    return f"text follows the final answer: {short(tail.strip(), 30)!r}"

"""LLaMA-Factory's predict metrics (`ComputeSimilarity`), reproduced bit for bit but much faster.

For every (predict, label) pair LLaMA-Factory computes

* ``bleu-4``: nltk ``sentence_bleu([list(label)], list(predict), smoothing_function=method3)`` — characters,
  uniform weights over 1..4-grams;
* ``rouge-1/2/l``: rouge-chinese ``Rouge().get_scores(" ".join(jieba.cut(predict)), " ".join(jieba.cut(label)))``,
  F value; 0 for all three when either side has no word after jieba;

each ``round(x * 100, 4)``, and prints the mean of each list. Here the same arithmetic runs in the same
order (so the floats are identical), with the two slow parts replaced: rouge-chinese's O(n·m) dict LCS
by a bit-parallel LCS over the same words, and nltk's Fraction/Counter machinery by vectorised counting
of n-gram ids. jieba itself still segments, exactly as LLaMA-Factory calls it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Callable, Sequence

import numpy as np

from ftbench.metrics.lcs import lcs_length

# LLaMA-Factory's figure names, in the order its log_metrics prints them (sorted).
FIGURES = ("bleu-4", "rouge-1", "rouge-2", "rouge-l")

# The rouge-chinese release whose definitions (sentence cut, set n-grams, summary-level ROUGE-L, F with
# +1e-8) are reproduced here; the tests compare against the installed one.
ROUGE_CHINESE_DEFINITION = "1.0.3"

# rouge-chinese `Rouge.cut_sent`: its four substitutions, in order, then rstrip and split on newlines.
_CUT_SENT_RULES = (
    (re.compile(r"([。！？\?])([^”’])"), r"\1\n\2"),
    (re.compile(r"(\.{6})([^”’])"), r"\1\n\2"),
    (re.compile(r"(\…{2})([^”’])"), r"\1\n\2"),
    (re.compile(r"([。！？\?][”’])([^，。！？\?])"), r"\1\n\2"),
)


def cut_sentences(paragraph: str) -> list[str]:
    """rouge-chinese's sentence splitter (`Rouge.cut_sent`), unchanged."""
    for pattern, replacement in _CUT_SENT_RULES:
        paragraph = pattern.sub(replacement, paragraph)
    return paragraph.rstrip().split("\n")


def rouge_words(tokens: Sequence[str]) -> list[str] | None:
    """The word list rouge-chinese scores for a jieba token list, or None when LLaMA-Factory scores 0.

    rouge-chinese re-splits the space-joined string into sentences, collapses whitespace inside each, then
    splits on single spaces and concatenates: a whitespace-only "sentence" (two newlines in a row)
    becomes an empty-string word, and that word counts. We keep every such quirk by running the same
    string operations.
    """
    joined = " ".join(tokens)
    if not joined.split():  # LLaMA-Factory: empty hypothesis or reference -> all ROUGE = 0
        return None
    words: list[str] = []
    for sentence in cut_sentences(joined):
        if len(sentence) > 0:
            # rouge-chinese: " ".join(sentence.split()).split(" "), which is sentence.split(), or [""]
            words.extend(sentence.split() or [""])
    return words


def _f_measure(hyp_count: int, ref_count: int, overlap: int) -> float:
    """rouge-chinese `f_r_p_rouge_n` F value (the same formula ends `rouge_l_summary_level`)."""
    precision = 0.0 if hyp_count == 0 else overlap / hyp_count
    recall = 0.0 if ref_count == 0 else overlap / ref_count
    return 2.0 * ((precision * recall) / (precision + recall + 1e-8))


def rouge_f(hyp_words: list[str], ref_words: list[str]) -> tuple[float, float, float]:
    """Unrounded rouge-1, rouge-2, rouge-l F values of two rouge-chinese word lists (both non-empty)."""
    hyp1, ref1 = set(hyp_words), set(ref_words)  # rouge-chinese counts distinct n-grams ("exclusive")
    hyp2, ref2 = set(zip(hyp_words, hyp_words[1:])), set(zip(ref_words, ref_words[1:]))
    rouge1 = _f_measure(len(hyp1), len(ref1), len(hyp1 & ref1))
    rouge2 = _f_measure(len(hyp2), len(ref2), len(hyp2 & ref2))
    # summary level ROUGE-L over the concatenated words is a plain LCS of the two lists
    llcs = lcs_length(ref_words, hyp_words)
    r_lcs = llcs / len(ref_words)
    p_lcs = llcs / len(hyp_words)
    rouge_l = 2.0 * ((p_lcs * r_lcs) / (p_lcs + r_lcs + 1e-8))
    return rouge1, rouge2, rouge_l


def _clipped_matches_counter(hypothesis: str, reference: str) -> list[int]:
    """nltk's clipped n-gram match counts for n = 1..4 with Counters (substrings stand for tuples)."""
    matches = []
    for n in (1, 2, 3, 4):
        if len(hypothesis) < n or len(reference) < n:
            matches.append(0)
            continue
        hyp = Counter([hypothesis[i : i + n] for i in range(len(hypothesis) - n + 1)])
        ref = Counter([reference[i : i + n] for i in range(len(reference) - n + 1)])
        clipped = 0
        for gram, count in hyp.items():
            ref_count = ref.get(gram)
            if ref_count:
                clipped += count if count < ref_count else ref_count
        matches.append(clipped)
    return matches


def clipped_matches(hypothesis: str, reference: str) -> list[int]:
    """Clipped n-gram matches for n = 1..4: sum over n-grams of min(count in hyp, count in ref).

    Vectorised: characters get dense ids, an n-gram becomes one int64 (ids in base K), and the counts of
    equal keys are compared by sorting — about 3x faster than building Counters, with the same integers.
    """
    hyp_len, ref_len = len(hypothesis), len(reference)
    if hyp_len == 0 or ref_len == 0:
        return [0, 0, 0, 0]
    codes = np.frombuffer((hypothesis + reference).encode("utf-32-le"), dtype=np.uint32)
    _, ids = np.unique(codes, return_inverse=True)
    base = int(ids.max()) + 1
    if base**4 >= 2**62:  # 4-grams would not fit in an int64 (tens of thousands of distinct chars)
        return _clipped_matches_counter(hypothesis, reference)
    ids = ids.astype(np.int64).ravel()
    hyp_ids, ref_ids = ids[:hyp_len], ids[hyp_len:]
    hyp_keys, ref_keys = hyp_ids, ref_ids
    matches = []
    for n in (1, 2, 3, 4):
        if hyp_len < n or ref_len < n:
            matches.append(0)
            continue
        if n > 1:
            hyp_keys = hyp_keys[:-1] * base + hyp_ids[n - 1 :]
            ref_keys = ref_keys[:-1] * base + ref_ids[n - 1 :]
        grams, hyp_counts = np.unique(hyp_keys, return_counts=True)
        ref_sorted = np.sort(ref_keys)
        ref_counts = np.searchsorted(ref_sorted, grams, "right") - np.searchsorted(ref_sorted, grams, "left")
        matches.append(int(np.minimum(hyp_counts, ref_counts).sum()))
    return matches


def sentence_bleu4_chars(hypothesis: str, reference: str) -> float:
    """nltk ``sentence_bleu([list(reference)], list(hypothesis), smoothing_function=method3)``, same floats.

    nltk keeps unreduced Fractions whose float is the correctly rounded numerator/denominator, smooths a
    zero count to 1/(2^k * denominator), sums 0.25*log(p_n) with math.fsum and multiplies by the brevity
    penalty; returns the int 0 when no character matches. All of that is done here in the same order.
    """
    hyp_len, ref_len = len(hypothesis), len(reference)
    numerators = clipped_matches(hypothesis, reference)
    if numerators[0] == 0:
        return 0
    denominators = [max(1, hyp_len - n + 1) for n in (1, 2, 3, 4)]
    if hyp_len > ref_len:
        brevity_penalty = 1
    else:
        brevity_penalty = math.exp(1 - ref_len / hyp_len)
    log_precisions = []
    k = 1  # method3: the k-th zero count becomes 1 / (2^k * denominator)
    for numerator, denominator in zip(numerators, denominators):
        if numerator == 0:
            log_precisions.append(0.25 * math.log(1 / (2**k * denominator)))
            k += 1
        else:
            log_precisions.append(0.25 * math.log(numerator / denominator))
    return brevity_penalty * math.exp(math.fsum(log_precisions))


def score_pair(predict: str, label: str, segment: Callable[[str], list[str]]) -> tuple[float, float, float, float]:
    """(bleu-4, rouge-1, rouge-2, rouge-l) of one pair, each ``round(x * 100, 4)`` as LLaMA-Factory stores it."""
    bleu = sentence_bleu4_chars(predict, label)
    hyp_words = rouge_words(segment(predict))
    ref_words = rouge_words(segment(label)) if hyp_words is not None else None
    if hyp_words is None or ref_words is None:
        rouge1 = rouge2 = rouge_l = 0.0
    else:
        rouge1, rouge2, rouge_l = rouge_f(hyp_words, ref_words)
    return (float(round(bleu * 100, 4)), round(rouge1 * 100, 4), round(rouge2 * 100, 4), round(rouge_l * 100, 4))

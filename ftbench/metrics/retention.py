"""The `retention` scorer: what a fine-tune changed where it should not have. The base model and the fine-tuned
model answer the same general prompts, unrelated to the training data (the bundled set: 100 prompts, half Chinese,
half English; `--retention PATH|none`), and the fine-tuned answers are scored against the base model's own:

* ``same-answer``: the share of prompts answered exactly as the base model did (whitespace at the ends aside);
* ``self-rouge-l``: LLaMA-Factory's ROUGE-L of the fine-tuned answer against the base model's (100 = unchanged);
* ``no-leak``: the share of answers free of *spread phrases*: a phrase (4 words, or 6 Chinese characters) that the
  fine-tuned model puts into answers to at least ``MIN_PROMPTS`` different prompts, that no base answer holds and
  that the prompt does not ask for (the identity fine-tune answering "What is the capital of France?" with
  "I'm Lumen, an AI assistant ..."). Each spread phrase is listed with the prompts it reached.

On every figure the base model scores 100 against itself, so each delta is what the fine-tune cost, with a 95%
bootstrap interval over the prompts. A pairwise scorer: it sees both sides at once (`Scorer.compare`).
"""

from __future__ import annotations

import re
from collections import defaultdict

from ftbench.api.metrics import Comparison, Scorer, format_signature

MIN_PROMPTS = 3  # a phrase in answers to this many different prompts is spread, not one answer's wording
WORDS, CJK_CHARS = 4, 6
SHOWN = 10  # spread phrases listed, most widespread first
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")


def phrases(text: str) -> set[str]:
    """Every run of WORDS words (lower-cased, within one stretch of non-Chinese text: "我是 Lumen，由 ftbench 开发的
    AI 助手" holds no 4 words in a row) and of CJK_CHARS Chinese characters."""
    out = set()
    for stretch in _CJK_RUN.split(text.lower()):
        words = _WORD.findall(stretch)
        out.update(" ".join(words[i : i + WORDS]) for i in range(len(words) - WORDS + 1))
    for run in _CJK_RUN.findall(text):
        out.update(run[i : i + CJK_CHARS] for i in range(len(run) - CJK_CHARS + 1))
    return out


def spread_phrases(prompts: list[str], before: list[str], after: list[str]) -> dict[str, list[int]]:
    """phrase -> the prompts (indices) whose fine-tuned answer holds it, for every phrase that reached
    MIN_PROMPTS prompts, is in no base answer and was not in the prompt it answers."""
    base = set().union(*(phrases(b) for b in before)) if before else set()
    reached: dict[str, list[int]] = defaultdict(list)
    for i, (prompt, answer) in enumerate(zip(prompts, after)):
        asked = phrases(prompt)
        for phrase in phrases(answer) - base - asked:
            reached[phrase].append(i)
    return {p: idx for p, idx in reached.items() if len(idx) >= MIN_PROMPTS}


def leakage(prompts: list[str], after: list[str], spread: dict[str, list[int]]) -> list[dict]:
    """The spread phrases for the report, most widespread first; phrases reaching exactly the same prompts are
    one finding (the overlapping windows of one sentence), shown by its first phrase."""
    groups: dict[tuple[int, ...], list[str]] = defaultdict(list)
    for phrase, idx in spread.items():
        groups[tuple(idx)].append(phrase)
    findings = []
    for idx, group in sorted(groups.items(), key=lambda kv: (-len(kv[0]), kv[0])):
        first = min(group, key=lambda p: (_position(p, after[idx[0]]), p))  # where the spread sentence starts
        findings.append(
            {
                "phrase": first,
                "phrases": len(group),
                "prompts": len(idx),
                "examples": [{"prompt": prompts[i], "answer": after[i][:300]} for i in idx[:3]],
            }
        )
    return findings[:SHOWN]


def _position(phrase: str, text: str) -> int:
    """Where ``phrase`` (one of `phrases(text)`) starts in ``text``: its word index, or its character index."""
    if _CJK_RUN.fullmatch(phrase):
        return text.find(phrase)
    words, wanted = _WORD.findall(_CJK_RUN.sub(" ", text.lower())), phrase.split()
    return next((i for i in range(len(words)) if words[i : i + len(wanted)] == wanted), len(words))


class RetentionScorer(Scorer):
    """What the fine-tune changed on general prompts unrelated to the training data (see the module docstring)."""

    name = "retention"
    description = "the fine-tuned model's answers to general prompts against the base model's own"
    eval_set = "general prompts (retention)"
    sample_unit = "general prompts"
    figures = ("same-answer", "self-rouge-l", "no-leak")
    primary = "self-rouge-l"
    judged = ()  # a run is not chosen by how little it changed
    percent = True
    length_setting = "retention_max_new_tokens"
    run_detail = "leakage"

    def headline_lines(self, detail, comparison):
        """What the fine-tune cost on the general prompts, then what it spread into answers to them, in words,
        most widespread first."""
        same, self_rouge, clean = (comparison.get(f) for f in self.figures)
        lines = []
        if same and self_rouge and clean:
            lines.append(
                f"What it cost elsewhere: on general prompts unrelated to the training data, "
                f"{100 - same['after']:.0f}% of the answers changed (ROUGE-L against the base model's answer "
                f"{self_rouge['after']:.1f} of 100) and {100 - clean['after']:.0f}% carry a phrase the fine-tune "
                "spread across prompts."
            )
        for f in ((detail or {}).get("after") or [])[:3]:
            example = f["examples"][0]
            lines.append(
                f'Leakage: the fine-tuned model put "{f["phrase"]}" into its answers to {f["prompts"]} unrelated '
                f'prompts (e.g. "{example["prompt"][:80]}"), words the base model never used there.'
            )
        return lines

    def eval_samples(self, held_out, settings):
        """The prompts of ``settings.retention`` (any dataset file ftbench reads; its answers are ignored), or
        none when it is None."""
        from dataclasses import replace

        from ftbench.data.formats import ASSISTANT
        from ftbench.data.loader import load_samples

        source = getattr(settings, "retention", None)
        if not source:
            return []
        return [replace(s, turns=s.turns[:-1] + [(ASSISTANT, "")]) for s in load_samples(source)]

    def compare(self, before, after):
        from ftbench import __version__
        from ftbench.metrics.registry import get_metric
        from ftbench.metrics.uncertainty import paired_difference

        prompts = [str(r.get("prompt", "")) for r in before]  # as the user asked them (`compare_scorer`)
        base, tuned = [str(r.get("predict", "")) for r in before], [str(r.get("predict", "")) for r in after]
        same = [x.strip() == y.strip() for x, y in zip(base, tuned)]
        metric = get_metric("rouge-l")
        rouge = metric.per_sample(tuned, base)["rouge-l"] if base else []
        spread = spread_phrases(prompts, base, tuned)
        leaked = {i for idx in spread.values() for i in idx}
        values = {
            "same-answer": [100.0 if s else 0.0 for s in same],
            # identical answers are unchanged even where ROUGE has nothing to count (two empty answers)
            "self-rouge-l": [100.0 if s else float(r) for s, r in zip(same, rouge)],
            "no-leak": [0.0 if i in leaked else 100.0 for i in range(len(base))],
        }
        figures = {}
        for figure, xs in values.items():
            paired = paired_difference(xs, [100.0] * len(xs)) if xs else {"ci95": None, "stderr": None}
            after_value = sum(xs) / len(xs) if xs else 100.0
            figures[figure] = {
                "before": 100.0,
                "after": after_value,
                "delta": after_value - 100.0,
                "before_ci95": None,
                "after_ci95": None,
                "delta_ci95": paired["ci95"],
                "delta_stderr": paired["stderr"],
                "wins": 0,
                "losses": sum(x < 100.0 for x in xs),
                "ties": sum(x == 100.0 for x in xs),
            }
        rouge_signature = metric.signatures()["rouge-l"]
        signatures = {
            "same-answer": format_signature("retention-same-answer", strip="ends", ftbench=__version__),
            "self-rouge-l": f"{rouge_signature}|ref:base-answer",
            "no-leak": format_signature(
                "retention-no-leak", words=WORDS, cjk_chars=CJK_CHARS, min_prompts=MIN_PROMPTS, ftbench=__version__
            ),
        }
        rows = [
            {
                "i": i,
                "scorer": self.name,
                "primary": self.primary,
                "prompt": before[i].get("prompt", ""),
                "reference": "",
                "before": base[i],
                "after": tuned[i],
                "scores_before": {f: 100.0 for f in values},
                "scores_after": {f: values[f][i] for f in values},
                "status": "unchanged" if same[i] else "regressed" if i in leaked else "changed",
            }
            for i in range(len(base))
        ]
        return Comparison(
            self.name,
            len(base),
            figures,
            signatures,
            {"scorer": self.name, "n": len(base), "leakage": None},
            {"scorer": self.name, "n": len(base), "leakage": leakage(prompts, tuned, spread)},
            rows,
        )

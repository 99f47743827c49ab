"""Before/after comparison of two prediction sets over the same samples: every figure's delta with a paired
bootstrap CI, wins/losses/ties, McNemar's test for accuracies, and a per-sample table (improved / regressed /
unchanged). Used by `train-and-compare` and `ftbench compare`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

SIMILARITY_FIGURES = ("bleu-4", "rouge-1", "rouge-2", "rouge-l")
GSM8K_FIGURES = ("strict-match", "flexible-extract", "strict-parsable")
PRIMARY = {"similarity": "rouge-l", "gsm8k": "strict-match"}  # decides improved/regressed per sample


# the last user message inside common chat templates (ChatML/Qwen, Llama 3, Mistral/Llama 2)
_USER_TURN = re.compile(r"(?:<\|im_start\|>user\n|<\|start_header_id\|>user<\|end_header_id\|>\n\n|\[INST\])"
                        r"(?P<text>(?:(?!<\|im_start\|>user\n|<\|start_header_id\|>user).)*?)"
                        r"(?:<\|im_end\|>|<\|eot_id\|>|\[/INST\])(?!.*(?:<\|im_start\|>user|"
                        r"<\|start_header_id\|>user|\[INST\]))", re.S)


def user_text(prompt: str) -> str:
    """What the user asked, for people to read: the last user message of a chat-template prompt (the prompt
    itself when no known template is recognised)."""
    m = _USER_TURN.search(prompt)
    return m.group("text").strip() if m else prompt


def read_prediction_rows(path: str) -> list[dict]:
    """Prediction rows (prompt/predict/label) of a generated_predictions.jsonl; a bad row raises with file:line."""
    from ftbench.data.reader import read_records
    from ftbench.metrics.predictions import read_predictions

    pf = read_predictions(path)
    prompts = {r.index: r.value.get("prompt", "") for r in read_records(path, []) if isinstance(r.value, dict)}
    return [{"prompt": prompts.get(i, ""), "predict": pred, "label": label}
            for i, pred, label in zip(pf.indices, pf.predictions, pf.references)]


def mcnemar(before: list[bool], after: list[bool]) -> dict:
    """McNemar's exact test on paired correctness: b = wrong→right, c = right→wrong; two-sided binomial p."""
    b = sum(1 for x, y in zip(before, after) if not x and y)
    c = sum(1 for x, y in zip(before, after) if x and not y)
    n = b + c
    if n == 0:
        p = 1.0
    else:
        k = min(b, c)
        p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)
    return {"wrong_to_right": b, "right_to_wrong": c, "p_value": p,
            "method": "McNemar exact (two-sided binomial on discordant pairs)"}


@dataclass
class TaskComparison:
    """One task's before/after figures, deltas and per-sample rows."""

    task: str
    n: int
    figures: dict  # figure -> {before, after, delta, ci95, stderr, wins, losses, ties, [mcnemar]}
    signatures: dict
    before: dict  # ScoreResult.to_json() of each side
    after: dict
    rows: list  # per-sample rows for the report

    def to_json(self, with_rows: bool = False) -> dict:
        out = {"task": self.task, "n": self.n, "figures": self.figures, "signatures": self.signatures,
               "before": self.before, "after": self.after}
        if with_rows:
            out["rows"] = self.rows
        return out


def compare_task(task: str, before: list[dict], after: list[dict]) -> TaskComparison:
    """Score both prediction lists (LLaMA-Factory rows: prompt/predict/label) and compare them sample by sample.

    Rows are paired by position; their prompts and labels must agree, or the comparison is meaningless."""
    from ftbench.api.errors import InputError
    from ftbench.metrics.scoring import score_pairs
    from ftbench.metrics.uncertainty import paired_difference

    if len(before) != len(after):
        raise InputError(f"cannot compare {len(before)} predictions with {len(after)}: they must cover the same "
                         "samples")
    for i, (x, y) in enumerate(zip(before, after)):
        if x.get("label") != y.get("label") or x.get("prompt") != y.get("prompt"):
            raise InputError(f"row {i}: the two prediction files differ in prompt or label: they are not over the "
                             "same samples")
    labels = [r.get("label", "") for r in before]
    scored = {side: score_pairs([r.get("predict", "") for r in rows], labels, task)
              for side, rows in (("before", before), ("after", after))}
    sb, sa = scored["before"], scored["after"]
    for result in (sb, sa):  # lm-eval names GSM8K figures "exact_match,strict-match"; reports say "strict-match"
        for table in (result.metrics, result.stderr, result.ci95, result.signatures, result.samples):
            for key in [k for k in table if k.startswith("exact_match,")]:
                table[key.split(",", 1)[1]] = table.pop(key)
    if task == "gsm8k":
        for result in (sb, sa):
            _add_parsable(result)
    figures = {}
    for fig in sb.metrics:
        xb, xa = sb.samples.get(fig), sa.samples.get(fig)
        entry = {"before": sb.metrics[fig], "after": sa.metrics[fig], "delta": sa.metrics[fig] - sb.metrics[fig],
                 "before_ci95": sb.ci95.get(fig), "after_ci95": sa.ci95.get(fig)}
        if xb is not None and xa is not None:
            paired = paired_difference(xa, xb)
            entry.update(delta_ci95=paired["ci95"], delta_stderr=paired["stderr"],
                         wins=sum(1 for p, q in zip(xb, xa) if q > p), losses=sum(1 for p, q in zip(xb, xa) if q < p),
                         ties=sum(1 for p, q in zip(xb, xa) if q == p))
            if task == "gsm8k":
                entry["mcnemar"] = mcnemar([bool(v) for v in xb], [bool(v) for v in xa])
        figures[fig] = entry
    rows = _rows(task, before, after, sb, sa)
    return TaskComparison(task, len(before), figures, sb.signatures, sb.to_json(), sa.to_json(), rows)


def _add_parsable(result) -> None:
    """`strict-parsable`: the share of answers in which strict-match finds a '#### <number>' at all. It shows a
    model learning GSM8K's answer format even while its arithmetic is still wrong (not an lm-eval figure)."""
    from ftbench.metrics.uncertainty import mean_intervals, mean_stderr

    values = [0.0 if s == "[invalid]" else 1.0 for s in result.samples["strict"]]
    result.metrics["strict-parsable"] = sum(values) / len(values) if values else float("nan")
    result.samples["strict-parsable"] = values
    result.stderr["strict-parsable"] = mean_stderr(values)
    result.ci95["strict-parsable"] = mean_intervals({"x": values}, len(values))["x"] if values else None
    result.signatures["strict-parsable"] = "strict-parsable|regex:#### (\\-?[0-9\\.\\,]+)|match:first|agg:mean|ftbench"


def _rows(task: str, before: list[dict], after: list[dict], sb, sa) -> list[dict]:
    primary = PRIMARY.get(task)
    rows = []
    for i, (x, y) in enumerate(zip(before, after)):
        scores_b = {f: sb.samples[f][i] for f in sb.metrics if f in sb.samples}
        scores_a = {f: sa.samples[f][i] for f in sa.metrics if f in sa.samples}
        if task == "gsm8k":
            for side, s in (("before", scores_b), ("after", scores_a)):
                src = sb if side == "before" else sa
                s["strict"], s["flexible"] = src.samples["strict"][i], src.samples["flexible"][i]
        b, a = scores_b.get(primary, 0), scores_a.get(primary, 0)
        if task == "gsm8k" and a == b:  # same strict verdict: let flexible-extract break the tie
            b, a = scores_b.get("flexible-extract", 0), scores_a.get("flexible-extract", 0)
        status = "improved" if a > b else "regressed" if a < b else "unchanged"
        rows.append({"i": i, "task": task, "prompt": user_text(x.get("prompt", "")), "reference": x.get("label", ""),
                     "before": x.get("predict", ""), "after": y.get("predict", ""), "scores_before": scores_b,
                     "scores_after": scores_a, "status": status})
    return rows

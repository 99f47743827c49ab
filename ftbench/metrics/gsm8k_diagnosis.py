"""Why strict-match and flexible-extract disagree on GSM8K: one cause per disagreeing sample, with examples.

strict-match reads the number right after the first ``#### ``; flexible-extract takes the *last*
number-looking run anywhere in the output. A fine-tuned model that keeps writing after its answer (a new
"Question:", a check, a unit conversion) makes flexible-extract read a later number, so flexible can score
far below strict. Each sample where exactly one of the two is right gets the first cause that applies,
in the order of CAUSES.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Sequence

from ftbench.metrics.gsm8k import INVALID, STRICT_PATTERN, normalise

CAUSES: dict[str, str] = {
    "no-marker": "no '####' in the output: strict-match finds nothing, flexible-extract takes the last number",
    "unreadable-marker": "'####' is not followed by a space and a plain number ('####72', '#### $72', "
    "'#### **72**'), so strict-match finds nothing",
    "punctuation-as-number": "the wrong extraction has no digit: flexible-extract's regex also matches runs "
    "such as '...', ',,' or '$.', and the last match was one of them",
    "number-format": "the right number written differently ('1000.00' or '$1,000.00' for 1000): "
    "exact match compares strings, not values",
    "text-after-answer": "the model kept writing after '#### N' (e.g. a new 'Question:'), "
    "and flexible-extract took the last number from that text",
    "several-markers": "several '####' answers: strict-match takes the first, flexible-extract the last number",
    "wrong-number": "the two extractions found different numbers; the wrong one is not a formatting variant",
}

_STRICT = re.compile(STRICT_PATTERN)
_MAX_EXAMPLES = 3


def as_number(text: str) -> Decimal | None:
    """The value of an extracted answer after exact_match's normalisation, or None if it is not a number."""
    try:
        value = Decimal(normalise(text).strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def classify(
    prediction: str, strict: str, flexible: str, strict_correct: bool, flexible_correct: bool, target: str
) -> str | None:
    """The cause of a strict/flexible disagreement on one sample (None when both agree on correctness)."""
    if strict_correct == flexible_correct:
        return None
    wrong = flexible if strict_correct else strict
    if "####" not in prediction:
        return "no-marker"
    if strict == INVALID:
        return "unreadable-marker"
    if wrong != INVALID and not any(c.isdigit() for c in wrong):
        return "punctuation-as-number"
    wrong_value, target_value = as_number(wrong), as_number(target)
    if wrong_value is not None and wrong_value == target_value:
        return "number-format"
    after_first_marker = prediction[prediction.index("####") + 4 :]
    if "Question:" in after_first_marker:
        return "text-after-answer"
    if prediction.count("####") > 1:
        return "several-markers"
    answer = _STRICT.search(prediction)
    if answer is not None and any(c.isdigit() for c in prediction[answer.end() :]):
        return "text-after-answer"
    return "wrong-number"


def excerpt(prediction: str, focus: str, width: int = 70) -> str:
    """A one-line window of the output around the last occurrence of ``focus`` (or its end)."""
    at = prediction.rfind(focus) if focus and focus != INVALID else -1
    if at < 0:
        at = max(0, len(prediction) - width)
    start, end = max(0, at - width), min(len(prediction), at + len(focus) + width)
    text = prediction[start:end].replace("\r", "\\r").replace("\n", "\\n")
    return ("…" if start > 0 else "") + text + ("…" if end < len(prediction) else "")


def explain_disagreements(
    predictions: Sequence[str],
    strict: Sequence[str],
    flexible: Sequence[str],
    strict_correct: Sequence[float],
    flexible_correct: Sequence[float],
    targets: Sequence[str],
    lines: Sequence[int | None] | None = None,
) -> tuple[list[str | None], dict]:
    """Per-sample causes and a summary: counts per cause and direction, examples, [invalid] counts."""
    causes: list[str | None] = []
    summary: dict[str, dict] = {}
    strict_only = flexible_only = 0
    format_both: dict = {
        "count": 0,
        "explanation": "both extractions wrong, but one is the right number written "
        "differently (e.g. '#### $1,000.00' for 1000: strict-match cannot read '$', flexible-"
        "extract keeps '.00')",
        "examples": [],
    }
    for i, (pred, s, f, s_ok, f_ok, target) in enumerate(
        zip(predictions, strict, flexible, strict_correct, flexible_correct, targets)
    ):
        cause = classify(pred, s, f, bool(s_ok), bool(f_ok), target)
        causes.append(cause)
        if cause is None:
            if (
                not s_ok
                and not f_ok
                and as_number(target) is not None
                and as_number(target) in (as_number(s), as_number(f))
            ):
                format_both["count"] += 1
                if len(format_both["examples"]) < _MAX_EXAMPLES:
                    format_both["examples"].append(_example(i, lines, s, f, target, pred, f))
            continue
        entry = summary.setdefault(
            cause, {"count": 0, "strict_only": 0, "flexible_only": 0, "explanation": CAUSES[cause], "examples": []}
        )
        entry["count"] += 1
        if s_ok:
            strict_only += 1
            entry["strict_only"] += 1
        else:
            flexible_only += 1
            entry["flexible_only"] += 1
        if len(entry["examples"]) < _MAX_EXAMPLES:
            entry["examples"].append(_example(i, lines, s, f, target, pred, f if s_ok else s))
    ordered = {name: summary[name] for name in sorted(summary, key=lambda k: (-summary[k]["count"], k))}
    return causes, {
        "disagreements": strict_only + flexible_only,
        "strict_only_correct": strict_only,
        "flexible_only_correct": flexible_only,
        "invalid": {
            "strict-match": sum(1 for s in strict if s == INVALID),
            "flexible-extract": sum(1 for f in flexible if f == INVALID),
        },
        "causes": ordered,
        "both_wrong_number_format": format_both,
    }


def _example(i: int, lines, strict: str, flexible: str, target: str, prediction: str, focus: str) -> dict:
    return {
        "index": i,
        "line": lines[i] if lines is not None else None,
        "strict": strict,
        "flexible": flexible,
        "target": normalise(target).strip(),
        "excerpt": excerpt(prediction, focus),
    }

"""Say why a hand-written JSON text does not parse: exact line:column, a stable code and a hint naming the fix.

`diagnose_json` runs only after a fast parser has rejected the text, so clarity beats speed there: it takes
the standard `json` parser's error position as the anchor, classifies the characters around it (the mistakes
themselves are catalogued in `jsonrepairs`), repairs them in a working copy and parses again, so one run lists
every problem. (`decode_text`, re-exported here, lives in `ftbench.data.encoding`.)
"""

from __future__ import annotations

import json

from ftbench.api.findings import Finding
from ftbench.data.encoding import decode_text  # noqa: F401  (part of this module's API)
from ftbench.data.jsonlimits import too_deep, too_long_number
from ftbench.data.jsonrepairs import (
    GROUPED,
    HINTS,
    STRING_OR_CONSTANT,
    WS,
    Diagnosis,
    braces_for_list,
    control_character,
    extra_data,
    generic,
    invalid_escape,
    lexical,
    next_nonspace,
    no_delimiter,
    no_value,
    open_containers,
    prev_nonspace,
    truncated,
    unterminated_at_end,
)

# A broken text costs at most WORK_FACTOR times its length (plus a floor for small texts) in re-parsing and
# copying: linear in its size, however many repairs it needs (docs/performance.md).
WORK_FACTOR = 8
WORK_FLOOR = 32 * 2**20


class _Context:
    """The original text and the repairs made to its working copy, to report positions in the original."""

    def __init__(self, text: str, first_line: int, record: int | None):
        self.text, self.first_line, self.record = text, first_line, record
        self.what = "the file" if record is None else "the line"
        self._edits: list[tuple[int, int, int]] = []  # (start, old length, new length), in application order

    def apply(self, work: str, edits: list[tuple[int, int, str]]) -> str:
        """Apply edits right to left, so each one's positions are still valid when it is applied."""
        for start, end, new in sorted(edits, reverse=True):
            self._edits.append((start, end - start, len(new)))
            work = work[:start] + new + work[end:]
        return work

    def line_col(self, pos: int) -> tuple[int, int]:
        """File line and 1-based character column, in the original text, of a working-copy position."""
        for start, old_len, new_len in reversed(self._edits):
            if pos >= start + new_len:
                pos += old_len - new_len
            elif pos > start:
                pos = start + min(pos - start, max(old_len - 1, 0))
        return self.first_line + self.text.count("\n", 0, pos), pos - self.text.rfind("\n", 0, pos)

    def where(self, pos: int) -> str:
        """`line:column` of a working-copy position, for messages."""
        return "%d:%d" % self.line_col(pos)


class _ConstantFound(Exception):
    """Raised from json's parse_constant hook: Python's json accepts NaN and Infinity, JSON does not."""

    @staticmethod
    def hook(name: str):
        """parse_constant hook that turns NaN / Infinity into an error."""
        raise _ConstantFound(name)


def _discard(pairs):
    """object_pairs_hook that keeps nothing: probing where a text stops parsing needs no objects (a 50 MB file's
    records would take gigabytes)."""
    return None


def _first_problem(work: str) -> tuple[str, int] | None:
    """The json module's (message, position) for the first problem in `work`, or None if it is valid JSON."""
    try:
        json.loads(work, parse_constant=_ConstantFound.hook, object_pairs_hook=_discard)
    except _ConstantFound:
        # everything before the constant parsed, so this string-aware scan is in step with the parser
        first = next((m for m in STRING_OR_CONSTANT.finditer(work) if m.group(1)), None)
        return "constant", first.start() if first else 0
    except json.JSONDecodeError as err:
        return err.msg, err.pos
    except RecursionError:
        return "too deep", 0
    except ValueError as err:  # e.g. a 5000-digit number
        return str(err) or type(err).__name__, 0
    return None


def diagnose_json(
    text: str, file: str, *, first_line: int = 1, record: int | None = None, max_findings: int = 50
) -> tuple[str | None, list[Finding]]:
    """Find every syntax problem in a JSON text (a whole file, or one JSONL line that is line `first_line`).

    Returns (repaired text, findings). The repaired text parses with json.loads and keeps every newline, so
    records stay on their lines; it is None when a problem could not be repaired or `max_findings` was hit.
    """
    ctx = _Context(text, first_line, record)
    work, findings = text, []
    merged: dict[tuple[str, int], list[str]] = {}  # (code, line) -> details of the repeats folded into it
    budget = WORK_FACTOR * len(text) + WORK_FLOOR  # characters parsed and copied, over all repairs
    position = 0  # where the last problem was found
    for _ in range(max(max_findings, 1) * 20):  # bound the repairs: a grouped finding can take many
        budget -= len(work)  # each round parses up to the problem and copies the text once
        if budget < 0:
            line, column = ctx.line_col(position)
            findings.append(
                Finding(
                    "too-many-findings",
                    f"stopped after {len(findings)} problem(s) with "
                    f"{sum(map(len, merged.values())) + len(findings)} repairs: a large text with "
                    "many problems is diagnosed in bounded time, so the records were not checked",
                    "warning",
                    "Fix these (often one script wrote them all) and run validate again.",
                    file,
                    line,
                    column,
                    record,
                )
            )
            return None, _finish(findings, merged)
        problem = _first_problem(work)
        if problem is None:
            return work, _finish(findings, merged)  # no findings: json accepts what the caller's parser refused
        diagnosis = _classify(work, *problem, ctx)
        position = diagnosis.pos
        line, column = ctx.line_col(diagnosis.pos)
        if diagnosis.code in GROUPED and (diagnosis.code, line) in merged:
            merged[(diagnosis.code, line)].append(diagnosis.detail)
        elif len(findings) == max_findings:
            findings.append(
                Finding(
                    "too-many-findings",
                    f"stopped after {max_findings} problems",
                    "warning",
                    "Fix these and run validate again.",
                    file,
                    line,
                    column,
                    record,
                )
            )
            return None, _finish(findings, merged)
        else:
            merged[(diagnosis.code, line)] = []
            hint = diagnosis.hint or HINTS[diagnosis.code]
            findings.append(Finding(diagnosis.code, diagnosis.message, "error", hint, file, line, column, record))
        if diagnosis.edits is None:
            return None, _finish(findings, merged)
        work = ctx.apply(work, diagnosis.edits)
    return None, _finish(findings, merged)


def _finish(findings: list[Finding], merged: dict[tuple[str, int], list[str]]) -> list[Finding]:
    """Add "(and N more on this line)" to the findings that stand for several repeats."""
    for finding in findings:
        repeats = merged.get((finding.code, finding.line or 0))
        if repeats:
            shown = " ".join(dict.fromkeys(d for d in repeats if d))
            finding.message += f" (and {len(repeats)} more on this line{': ' + shown if shown else ''})"
    return findings


def _classify(work: str, msg: str, pos: int, ctx) -> Diagnosis:
    """Decide what the problem at `pos` is, from the parser's message and the characters around it."""
    if msg == "too deep":
        return too_deep(work) or generic("values nested too deep", 0)
    if msg.startswith("Exceeds the limit"):  # Python's int conversion limit: json gives no position
        return too_long_number(work) or generic(msg, 0)
    if msg.startswith("Invalid control character"):
        return control_character(work, pos, ctx)
    if msg.startswith("Invalid \\"):  # the \uXXXX variant points just after the backslash
        return invalid_escape(work, pos if work[pos] == "\\" else pos - 1)
    if msg == "constant":
        return lexical(work, pos, True) or generic(msg, pos)
    if msg.startswith("Unterminated string"):
        return unterminated_at_end(work, pos, ctx)
    if msg.startswith("Illegal trailing comma"):  # Python 3.13+ says so itself, pointing at the comma
        return Diagnosis("trailing-comma", pos, "a comma after the last item", [(pos, pos + 1, " ")])
    if not work.strip(WS):
        return Diagnosis("empty-json", 0, f"{ctx.what} holds no JSON value", None)
    if not next_nonspace(work, pos):
        return truncated(work, ctx)
    value_expected = msg.startswith(("Expecting value", "Expecting property name"))
    # Python literals and the like only where a value belongs: after a string they are text (unescaped quote)
    found = lexical(work, pos, value_expected)
    if found:
        return found
    if msg.startswith("Extra data"):
        return extra_data(work, pos, ctx)
    prev = prev_nonspace(work, pos)
    before = work[prev] if prev >= 0 else " "  # not "": '' is "in" every string
    if work[pos] in "{[" and before == "{" and msg.startswith("Expecting property name"):
        return braces_for_list(work, pos, prev, ctx)  # { {...}, {...} }: a list written with braces
    if work[pos] == "{" and before in ',"0123456789el]}':  # an object where a key or ',' belongs: '}' forgotten?
        stack = open_containers(work, pos)[0]
        if stack and work[stack[-1]] == "{":
            at, fix = (prev, "}") if before == "," else (prev + 1, "},")
            return Diagnosis(
                "unclosed-bracket",
                at,
                f"the object opened at {ctx.where(stack[-1])} is not closed "
                f"before the next object at {ctx.where(pos)}: a '}}' is missing",
                [(at, at, fix)],
            )
    if value_expected:
        return no_value(work, msg, pos, prev) or generic(msg, pos)
    if msg.startswith(("Expecting ',' delimiter", "Expecting ':' delimiter")):
        return no_delimiter(work, msg, pos, prev, ctx)
    return generic(msg, pos)

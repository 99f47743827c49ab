"""Getting records out of a model's reply: fenced or bare JSON, a list or one object, prose around it.

Models wrap JSON in ```json fences, add a sentence before it, return `{"records": [...]}` or a bare list, and
sometimes stop mid-array. Only a JSON parser ever sees the text (never `eval`/`ast.literal_eval`: a reply is
untrusted input); from a truncated array the complete records before the cut are kept.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_FENCE = re.compile(r"```[ \t]*[A-Za-z0-9_-]*[ \t]*\r?\n(.*?)(?:```|\Z)", re.S)  # an unclosed fence runs to the end
_MAX_STARTS = 50  # candidate `[`/`{` positions tried in prose: bounds the work on a long non-JSON reply
WRAPPER_KEYS = ("records", "data", "items", "examples", "samples", "variants", "results")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


@dataclass
class ParsedReply:
    """The candidate records of one reply (not yet validated), or why there are none."""

    records: list[Any]
    problem: str | None = None  # "no JSON found", ... when records is empty
    truncated: bool = False  # records were salvaged from a cut-off array

    @property
    def usable(self) -> bool:
        return bool(self.records)


def parse_reply(text: str) -> ParsedReply:
    """The records in a reply: the first JSON value found in a fence or in the text, unwrapped to a list."""
    if not isinstance(text, str) or not text.strip():
        return ParsedReply([], "the reply is empty")
    for block in [m.group(1) for m in _FENCE.finditer(text)] + [text]:
        parsed = _scan(block)
        if parsed is not None:
            return parsed
    return ParsedReply([], "no JSON array or object in the reply")


def _scan(text: str) -> ParsedReply | None:
    """The first JSON object, or array holding an object, in ``text``; from an array cut off before its `]`,
    the complete elements (a reply that hit the token limit still paid for them)."""
    try:
        return _as_records(_DECODER.decode(text.strip()))
    except (ValueError, RecursionError):
        pass
    for n, m in enumerate(re.finditer(r"[\[{]", text)):
        if n >= _MAX_STARTS:
            break
        try:
            value, _ = _DECODER.raw_decode(text, m.start())
        except (ValueError, RecursionError):
            salvaged = _salvage_array(text, m.start()) if m.group() == "[" else []
            if salvaged:
                return ParsedReply(salvaged, truncated=True)
            continue
        if isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, dict) for v in value)):
            return _as_records(value)  # a "[1]" citation in prose is not the answer: keep looking
    return None


def _as_records(value: Any) -> ParsedReply:
    if isinstance(value, dict):
        for key in WRAPPER_KEYS:  # {"records": [...]}: the shape the default prompt asks for
            if isinstance(value.get(key), list) and len(value) <= 2:
                return _as_records(value[key])
        return ParsedReply([value])
    if isinstance(value, list):
        if not any(isinstance(v, dict) for v in value):  # [] or [1, 2]: nothing that could be a record
            return ParsedReply([], "the reply's JSON list holds no objects")
        return ParsedReply(list(value))
    return ParsedReply([], f"the reply's JSON is {type(value).__name__}, not records")


def _salvage_array(text: str, start: int) -> list[Any]:
    """The complete elements of the array at ``start`` that is cut off before its `]` (objects only)."""
    pos, out = start + 1, []
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        try:
            value, pos = _DECODER.raw_decode(text, pos)
        except (ValueError, RecursionError):
            break
        if not isinstance(value, dict):
            return []
        out.append(value)
    return out

"""Limits on what a JSON text may hold, found where a parser stops without saying where: nesting deeper than
MAX_NESTING (Python's json overflows its stack near 1,000) and numbers longer than Python converts."""

from __future__ import annotations

import re

from ftbench.data.jsonrepairs import SCAN, Diagnosis

MAX_NESTING = 500  # arrays/objects inside each other; Python's json stops near 1,000 (its stack), orjson at 1,024
MAX_DIGITS = 4300  # Python's int conversion limit (sys.get_int_max_str_digits)
LONG_NUMBER = re.compile(r'"(?:[^"\\]|\\.)*"|(-?\d{%d,}(?:\.\d+)?(?:[eE][-+]?\d+)?)' % (MAX_DIGITS + 1), re.S)


def too_deep(work: str) -> Diagnosis | None:
    """Where nesting first passes MAX_NESTING levels (strings skipped), found in one linear scan."""
    depth = 0
    for match in SCAN.finditer(work):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return Diagnosis(
                    "nesting-too-deep",
                    match.start(),
                    f"arrays/objects nested more than {MAX_NESTING} levels deep from here: too deep to read",
                    None,
                )
        elif token in "]}":
            depth -= 1
    return None


def too_long_number(work: str) -> Diagnosis | None:
    """A number with more digits than Python converts (its json raises without a position): where, and a
    repair (0) so the records are still checked."""
    for match in LONG_NUMBER.finditer(work):
        if match.group(1):
            digits = len(match.group(1).lstrip("-"))
            return Diagnosis(
                "number-too-long",
                match.start(1),
                f"a number {digits:,} characters long: more than the {MAX_DIGITS:,} digits a JSON reader converts",
                [(match.start(1), match.end(1), "0")],
            )
    return None

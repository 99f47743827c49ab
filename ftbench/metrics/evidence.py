"""What a change with a 95% interval says, in words: better, worse, unchanged on every sample, or no detectable
change, and for an unclear one what would make it surer. The one rule behind every verdict ftbench prints (the
run report's headline and cards, the console summary, the sweep's verdicts): a change is called only when its
interval excludes 0, and "no detectable change" is never worded as "no effect".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

BETTER, WORSE, UNCHANGED, UNCLEAR, UNKNOWN = "better", "worse", "unchanged", "unclear", "unknown"


@dataclass(frozen=True)
class Evidence:
    """A change in words: ``kind`` (better, worse, unchanged, unclear, unknown), a sentence, and for an unclear
    change what would make it surer."""

    kind: str
    words: str
    surer: str = ""

    @property
    def clear(self) -> bool:
        """Whether the interval excludes 0, so the direction is evidence, not noise."""
        return self.kind in (BETTER, WORSE)


def signed(value: float) -> str:
    return f"{value:+.2f}"


def change_evidence(
    delta: float,
    ci: tuple[float, float] | list[float] | None,
    n: int,
    *,
    unit: str = "samples",
    higher_is_better: bool = True,
    fmt: Callable[[float], str] = signed,
    seeds: int = 1,
) -> Evidence:
    """``delta`` (after − before, or any paired difference) with its 95% interval ``ci`` over ``n`` ``unit``
    (and ``seeds`` trainings, when the interval resamples several)."""
    base_unit = unit
    if seeds > 1:
        unit = f"{unit} × {seeds} training seeds"
    if ci is None or any(v is None or not math.isfinite(v) for v in ci) or not math.isfinite(delta):
        return Evidence(UNKNOWN, f"{fmt(delta)} on {n} {unit}: too few to put an interval on it")
    lo, hi = ci
    interval = f"95% CI {fmt(lo)}…{fmt(hi)}"
    if lo == hi == 0 and delta == 0:
        return Evidence(
            UNCHANGED,
            f"unchanged: the same score on all {n} {unit}",
            f"{n} {unit} cannot show a small change either way; more would",
        )
    if lo > 0 or hi < 0:
        up = lo > 0
        kind = BETTER if up == higher_is_better else WORSE
        return Evidence(kind, f"{kind}: {fmt(delta)}, {interval} excludes 0 ({n} {unit})")
    # an end exactly at 0 (one win and no loss: [0, +0.03]) "touches" 0; "spans" would read as a contradiction
    relation = "touches 0" if 0 in (lo, hi) else "spans 0"
    words = f"no detectable change on {n} {unit}: {fmt(delta)}, {interval} {relation}"
    surer = samples_needed(delta, (lo, hi), n, base_unit)
    return Evidence(UNCLEAR, words, surer + ("; more seeds narrow the training-noise part" if seeds > 1 else ""))


def samples_needed(delta: float, ci: tuple[float, float], n: int, unit: str) -> str:
    """How many ``unit`` a change of ``delta``'s size would need for its interval to exclude 0: an interval's
    half-width shrinks as 1/√n, so about n·(half-width/|delta|)² (a rough guide: it assumes the spread stays)."""
    half = (ci[1] - ci[0]) / 2
    if delta == 0 or half <= 0:
        return f"no sign of a change either way on {n} {unit}; more {unit} would narrow the interval"
    need = math.ceil(n * (half / abs(delta)) ** 2)
    return f"a change this size would need about {need:,} {unit} to show (now {n}): more held-out data would tell"


EDGE_SHARE = 0.25  # "on the edge": the interval's end nearest 0 lies within this share of its width of 0


def on_the_edge(ci: tuple[float, float] | list[float] | None) -> bool:
    """Whether an interval only just includes or excludes 0 (its end nearest 0 within a quarter of its width of
    0): one more training seed could move the verdict, so `--seeds auto` adds one there."""
    if not ci or any(v is None or not math.isfinite(v) for v in ci):
        return False
    lo, hi = ci
    width = hi - lo
    return width > 0 and min(abs(lo), abs(hi)) <= EDGE_SHARE * width

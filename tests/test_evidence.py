"""The one rule that turns a change and its 95% interval into words (`metrics.evidence`), on cases whose answer
is known: a change is called only when the interval excludes 0, a zero-width interval on identical scores is
"unchanged" (never "spans 0"), and an unclear change says how many samples would show one of its size."""

from __future__ import annotations

import math

import pytest

from ftbench.metrics.evidence import change_evidence, samples_needed


@pytest.mark.parametrize(
    "delta, ci, kind",
    [
        (0.15, (-0.03, 0.42), "unclear"),  # the BLEU-4 card: green by sign, yet the CI spans 0
        (12.0, (5.0, 19.0), "better"),
        (-3.0, (-5.0, -1.0), "worse"),
        (0.0, (0.0, 0.0), "unchanged"),
        (0.0, (-0.1, 0.1), "unclear"),
        (0.01, (0.0, 0.03), "unclear"),  # one win, no loss: the interval touches 0
        (1.0, None, "unknown"),
        (1.0, (float("nan"), 1.0), "unknown"),
    ],
)
def test_the_kind_follows_the_interval_not_the_sign(delta, ci, kind):
    evidence = change_evidence(delta, ci, 8)
    assert evidence.kind == kind
    assert evidence.clear == (kind in ("better", "worse"))
    if kind == "unclear":
        assert "no detectable change on 8 samples" in evidence.words
        assert ("touches 0" if 0 in ci else "spans 0") in evidence.words
    if kind == "unchanged":
        assert "spans 0" not in evidence.words and "all 8 samples" in evidence.words


def test_lower_is_better_swaps_the_words():
    assert change_evidence(-2.0, (-3.0, -1.0), 10, higher_is_better=False).kind == "better"


def test_samples_needed_scales_as_one_over_root_n():
    """Half-width 0.225 on 8 samples for a change of 0.15: the interval would shrink below 0.15 at
    8·(0.225/0.15)² = 18 samples."""
    text = samples_needed(0.15, (-0.075, 0.375), 8, "held-out samples")
    assert f"about {math.ceil(8 * (0.225 / 0.15) ** 2)} held-out samples" in text and "(now 8)" in text
    assert "no sign of a change" in samples_needed(0.0, (-1.0, 1.0), 8, "samples")

"""Length of the longest common subsequence of two token lists, bit-parallel.

rouge-chinese fills an (n+1)x(m+1) dict in pure Python for every ROUGE-L; the bit-parallel recurrence of
Allison-Dix / Hyyrö (2004) processes one token of the longer list per step with a handful of big-int
operations over a bitmask as wide as the shorter list. Both return the same integer, so every ROUGE-L
computed from it is bit-for-bit the reference's.
"""

from __future__ import annotations

from typing import Hashable, Sequence


def lcs_length(a: Sequence[Hashable], b: Sequence[Hashable]) -> int:
    """The LCS length of ``a`` and ``b`` (tokens compared with ``==``/hash, as dict keys)."""
    if len(a) < len(b):
        a, b = b, a  # the bitmask is as wide as the shorter sequence
    if not b:
        return 0
    positions: dict = {}  # token -> bitmask of its positions in b
    bit = 1
    for token in b:
        positions[token] = positions.get(token, 0) | bit
        bit <<= 1
    full = bit - 1
    v = full  # a 1 bit is a column where the LCS has not grown yet
    get = positions.get
    for token in a:
        match = get(token)
        if match:  # a token absent from b leaves v unchanged
            u = v & match
            v = ((v + u) | (v - u)) & full
    return len(b) - v.bit_count()

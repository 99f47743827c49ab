"""Draft tokens for greedy decoding, looked up in the row's own text (prompt-lookup decoding).

Answers repeat their prompt and themselves: a GSM8K solution restates the question's numbers and names, and a
small model's long answer often loops. When the row's last n tokens (n = 3, then 2, then 1) occurred earlier in
its prompt or answer, the tokens that followed them then are proposed as the next ones. `greedy.greedy_decode`
feeds them with the row's newest token in one forward pass and keeps the longest run the model itself would have
chosen (each draft equal to the argmax before it), so the answer is greedy decoding's; a wrong guess costs only
the extra rows of that pass. Looking up is a dictionary read per row and step: each n-gram maps to where it
last ended.
"""

from __future__ import annotations

NGRAMS = (3, 2, 1)  # the longest match is tried first: it predicts best


class Lookup:
    """One row's tokens and, for each n-gram in them, the position after its latest earlier occurrence."""

    def __init__(self, tokens: list[int]):
        self.tokens: list[int] = []
        self.ends: dict[tuple, int] = {}
        self.extend(tokens)

    def extend(self, tokens: list[int]) -> None:
        """Append ``tokens``; index every n-gram that now has a successor (the final ones wait for theirs)."""
        for token in tokens:
            end = len(self.tokens)  # the n-grams ending here are followed by ``token``
            for n in NGRAMS:
                if end >= n:
                    self.ends[tuple(self.tokens[end - n : end])] = end
            self.tokens.append(token)

    def match(self) -> tuple[int, int]:
        """(n, end): the longest n-gram the row ends with that occurred earlier, and the position after its latest
        earlier occurrence; (0, 0) when none did."""
        for n in NGRAMS:
            if len(self.tokens) >= n:
                end = self.ends.get(tuple(self.tokens[-n:]))
                if end is not None:
                    return n, end
        return 0, 0

    def draft(self, count: int) -> list[int]:
        """Up to ``count`` tokens that followed the latest earlier occurrence of the row's final n-gram."""
        n, end = self.match()
        return self.tokens[end : end + count] if n and count > 0 else []

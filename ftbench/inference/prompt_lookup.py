"""Draft tokens for greedy decoding, looked up in the row's own text and in the other rows' answers
(prompt-lookup decoding).

Answers repeat their prompt and themselves: a GSM8K solution restates the question's numbers and names, and a
small model's long answer often loops. When the row's last n tokens (n = 3, then 2, then 1) occurred earlier in
its prompt or answer, the tokens that followed them then are proposed as the next ones. Answers to one eval set
also repeat each other ("The answer is", "I'm SmolLM, a"): when another row's answer holds a longer match than
the row's own text, its continuation is proposed instead (`SharedAnswers`). `greedy.greedy_decode` feeds the
drafts with the row's newest token in one forward pass and keeps the longest run the model itself would have
chosen (each draft equal to the argmax before it), so the answer is greedy decoding's; a wrong guess costs only
the extra rows of that pass. Looking up is a dictionary read per row and step: each n-gram maps to where it
last ended.
"""

from __future__ import annotations

NGRAMS = (3, 2, 1)  # the longest match is tried first: it predicts best
SHARED_LIMIT = 500_000  # n-grams `SharedAnswers` indexes before it starts afresh (~100 MB of tuples)


class SharedAnswers:
    """The n-grams of every row's answer so far, each mapped to the `Lookup` holding its latest occurrence and
    the position after it: one table for all the rows of a `greedy_decode` call. On GSM8K answers at batch 16,
    taking another row's continuation where it matches longer than the row's own text saves 5% of the steps
    (docs/performance.md, "Seventh pass")."""

    def __init__(self, limit: int = SHARED_LIMIT):
        self.ends: dict[tuple, tuple[Lookup, int]] = {}
        self.limit = limit

    def add(self, ngram: tuple, lookup: "Lookup", end: int) -> None:
        if len(self.ends) >= self.limit and ngram not in self.ends:
            self.ends.clear()  # bounded memory on long eval sets; recent answers refill it
        self.ends[ngram] = (lookup, end)


class Lookup:
    """One row's tokens and, for each n-gram in them, the position after its latest earlier occurrence; with a
    `SharedAnswers` table, the n-grams of the row's answer (what is appended after the prompt) go there too."""

    def __init__(self, tokens: list[int], shared: SharedAnswers | None = None):
        self.tokens: list[int] = []
        self.ends: dict[tuple, int] = {}
        self.shared, self.prompt_length = shared, len(tokens)
        self.extend(tokens)

    def extend(self, tokens: list[int]) -> None:
        """Append ``tokens``; index every n-gram that now has a successor (the final ones wait for theirs)."""
        for token in tokens:
            end = len(self.tokens)  # the n-grams ending here are followed by ``token``
            for n in NGRAMS:
                if end >= n:
                    ngram = tuple(self.tokens[end - n : end])
                    self.ends[ngram] = end
                    if self.shared is not None and end > self.prompt_length:
                        self.shared.add(ngram, self, end)
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
        """Up to ``count`` tokens that followed the latest earlier occurrence of the row's final n-gram: in another
        row's answer where that matches more tokens than the row's own text, else in the row's own text."""
        if count <= 0:
            return []
        n, end = self.match()
        for longer in NGRAMS if self.shared is not None else ():
            if longer <= n or len(self.tokens) < longer:
                break
            hit = self.shared.ends.get(tuple(self.tokens[-longer:]))
            if hit is not None and hit[0] is not self:
                other, other_end = hit
                return other.tokens[other_end : other_end + count]
        return self.tokens[end : end + count] if n else []

"""jieba word segmentation exactly as LLaMA-Factory calls it (`jieba.cut(text)`: accurate mode, HMM on),
with a cache per block.

`jieba.cut` splits the text on `jieba.re_han_default` into blocks and segments each block on its own
(dictionary DAG + HMM for Han/alphanumeric runs, single characters or whitespace runs otherwise). The
words of a text are therefore the concatenation of the words of its blocks, and `jieba.lcut(block)` gives
a block's words. Caching per block changes nothing in the output but skips most of the work: English
words, numbers and clauses that repeat across predictions and labels are segmented once.
"""

from __future__ import annotations

import logging

_MAX_CACHED_BLOCKS = 200_000  # ~50 MB of short strings; the cache is simply dropped when full


class JiebaSegmenter:
    """Segments text with jieba's default tokenizer, caching the words of each block."""

    def __init__(self) -> None:
        import jieba

        jieba.setLogLevel(logging.CRITICAL)  # as LLaMA-Factory does: no "Building prefix dict" chatter
        jieba.initialize()
        self._lcut = jieba.lcut
        # the block pattern jieba.cut uses; without it (another jieba) fall back to whole-text cuts
        self._block_pattern = getattr(jieba, "re_han_default", None)
        self._cache: dict[str, list[str]] = {}
        self.version = getattr(jieba, "__version__", "unknown")

    def cut(self, text: str) -> list[str]:
        """The words `list(jieba.cut(text))` returns."""
        if self._block_pattern is None:
            return self._lcut(text)
        cache = self._cache
        if len(cache) > _MAX_CACHED_BLOCKS:
            cache.clear()
        words: list[str] = []
        for block in self._block_pattern.split(text):
            if not block:
                continue
            block_words = cache.get(block)
            if block_words is None:
                block_words = cache[block] = self._lcut(block)
            words.extend(block_words)
        return words


_SEGMENTER: JiebaSegmenter | None = None


def segmenter() -> JiebaSegmenter:
    """The process-wide segmenter (jieba's dictionary is loaded once, and inherited by forked workers)."""
    global _SEGMENTER
    if _SEGMENTER is None:
        _SEGMENTER = JiebaSegmenter()
    return _SEGMENTER

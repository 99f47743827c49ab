"""Near-duplicate detection with MinHash LSH, vectorised in numpy so a million records take seconds.

* Texts are lowercased and whitespace-collapsed, then cut into character n-grams ("shingles", n=5): works
  for Chinese and English alike. A text shorter than n is one shingle. A batch of texts becomes one array of
  code points, so hashing every shingle is a handful of array operations, not a Python loop.
* One-permutation hashing: each shingle is hashed once into one of ``num_perm`` bins, which keep their
  smallest hash: O(shingles), not O(shingles x num_perm) like classic MinHash (datasketch). Empty bins of
  short texts are filled by densification. Values are 16 bits: unrelated minima agree by chance 1/65536 of
  the time, far below the sampling error, so 128 x uint16 (256 MB per million texts) beats 64 x uint32.
* LSH: band hashes (uint64) are sorted per band; each text in a bucket is paired with the bucket's earliest
  text (a star, not a clique), verified by the estimated Jaccard, and verified pairs are merged into clusters.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

BATCH_TEXTS = 512  # texts hashed together: small enough that the temporary arrays stay in the CPU cache
PAGE_ROWS = 65536  # signatures are written into pages this tall, so growing never copies what is stored
_PROBE_STEPS = 3  # bins an empty bin tries before copying its right neighbour (see _Hashing._densify)
_VERIFY_CHUNK = 32768  # candidate pairs compared at once: bounds the memory of the gathered signatures


def normalize_text(text: str) -> str:
    """The text the signatures are computed from: lowercase, runs of whitespace as one space, NUL as space."""
    return " ".join(text.replace("\x00", " ").lower().split())


def char_shingles(text: str, ngram: int = 5) -> set[str]:
    """The set of character n-grams of the normalised text (the set whose Jaccard MinHash estimates)."""
    norm = normalize_text(text)
    if len(norm) < ngram:
        return {norm}
    return {norm[i : i + ngram] for i in range(len(norm) - ngram + 1)}


@lru_cache(maxsize=16)
def lsh_params(threshold: float, num_perm: int, false_negative_weight: float = 0.9) -> tuple[int, int]:
    """(bands, rows) minimising the weighted areas of false positives below and false negatives above threshold:
    datasketch's optimiser, weighted towards recall because every candidate is verified against the estimated
    Jaccard afterwards, so a false positive only costs a comparison while a miss is lost for good."""
    below, above = np.linspace(0.0, threshold, 501), np.linspace(threshold, 1.0, 501)
    best, best_error = (1, num_perm), math.inf
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            fp = np.trapezoid(1 - (1 - below**rows) ** bands, below)
            fn = np.trapezoid((1 - above**rows) ** bands, above)
            error = (1 - false_negative_weight) * fp + false_negative_weight * fn
            if error < best_error:
                best, best_error = (bands, rows), error
    return best


@lru_cache(maxsize=1)
def _lower_space_table() -> np.ndarray:
    """Code point -> lowercase code point, every whitespace character -> plain space. Covers the Basic
    Multilingual Plane; the rare cased letters beyond it (Deseret, Osage...) are kept as they are."""
    table = np.arange(0x110000, dtype=np.uint32)
    for code in range(0x10000):
        ch = chr(code)
        low = " " if ch.isspace() else ch.lower()
        if low != ch:
            table[code] = ord(low[0])  # 'İ' lowercases to two characters: keep the first
    return table


def _fmix32(h: np.ndarray) -> None:
    """MurmurHash3's finaliser, in place: turns a linear combination of code points into well-mixed bits."""
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)


class _Hashing:
    """The seeded constants that make signatures of two indexes comparable and runs reproducible."""

    def __init__(self, num_perm: int, ngram: int, seed: int):
        rng = np.random.default_rng(seed)
        self.num_perm, self.ngram = num_perm, ngram
        self.multiplier = np.uint32(rng.integers(2**31, 2**32, dtype=np.uint64) | 1)
        self.offset = np.uint32(rng.integers(0, 2**32, dtype=np.uint64))
        self.band_multipliers = rng.integers(1, 2**64 - 1, size=num_perm, dtype=np.uint64) | np.uint64(1)
        # densification: for each bin, a random order of the other bins in which to look for a filled one
        ranks = rng.random((num_perm, num_perm)) + np.eye(num_perm)  # a bin never probes itself
        self.probe_order = np.ascontiguousarray(np.argsort(ranks, axis=1)[:, :_PROBE_STEPS].T)  # [step][bin]
        self.bin_shift = np.uint32(32 - num_perm.bit_length() + 1) if num_perm & (num_perm - 1) == 0 else None

    def signatures(self, texts: list[str]) -> np.ndarray:
        """(len(texts), num_perm) uint16 MinHash signatures of a batch of texts."""
        n, k = self.ngram, self.num_perm
        units, text_starts, text_ends = self._code_units(texts)
        # rolling polynomial hash of every window of n code units (Horner, in place, wrapping mod 2**32)
        windows = len(units) - n + 1
        h = units[0:windows] + self.offset  # a fresh array; the seeded offset makes hashes differ per seed
        for j in range(1, n):
            h *= self.multiplier
            h += units[j : j + windows]
        _fmix32(h)
        np.minimum(h, 0xFFFFFFFE, out=h)  # so 0xFFFFFFFF always means "no value": every text fills a bin
        # windows reaching into the NULs after a text are not shingles: give them the "no value" hash.
        # A text shorter than n keeps its first window (text + NUL padding) as its one shingle.
        first_bad = np.maximum(text_starts + 1, text_ends - n + 1)
        bad_end = np.minimum(text_ends + n, windows)
        h[_ranges(first_bad, bad_end)] = 0xFFFFFFFF
        # top bits pick the bin; the bin keeps its smallest hash, whose low 16 bits are the stored value
        bins = (
            h >> self.bin_shift
            if self.bin_shift is not None  # else "fast range" on the top 16 bits
            else ((h >> np.uint32(16)) * np.uint32(k)) >> np.uint32(16)
        )
        bins += np.repeat(np.arange(0, len(texts) * k, k, dtype=np.uint32), text_ends + n - text_starts)[:windows]
        lowest = np.full(len(texts) * k, 0xFFFFFFFF, dtype=np.uint32)
        np.minimum.at(lowest, bins, h)  # indices are grouped by text, so this stays cache-friendly
        lowest = lowest.reshape(len(texts), k)
        sig = lowest.astype(np.uint16)
        self._densify(sig, lowest == 0xFFFFFFFF)
        return sig

    def _code_units(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Normalised code points (uint32) of all texts, each followed by ngram NULs; and each text's start/end."""
        n, sep = self.ngram, "\x00" * self.ngram
        joined = sep.join(texts) + sep
        if joined.isascii():  # bytes are code points, and latin-1 encoding is a plain copy
            raw = np.frombuffer(joined.encode("latin-1"), dtype=np.uint8)
        else:  # numpy stores str as UTF-32: 3-4x faster than str.encode("utf-32")
            raw = np.array(joined).reshape(1).view(np.uint32)
        units = np.take(_lower_space_table(), raw)
        zero, space = units == 0, units == 32
        # drop a space after a space or a NUL (runs, leading spaces) ...
        drop = np.concatenate([space[:1], space[1:] & (space[:-1] | zero[:-1])])
        if drop.any():
            units, zero = units[~drop], zero[~drop]
            space = units == 32
        # ... then the single space left before a NUL (trailing)
        drop = np.concatenate([space[:-1] & zero[1:], [False]])
        if drop.any():
            units, zero = units[~drop], zero[~drop]
        zero_at = np.flatnonzero(zero)
        if len(zero_at) != n * len(texts):  # a text contains NUL, which would split it: make it a space
            return self._code_units([t.replace("\x00", " ") for t in texts])
        text_ends = zero_at[::n]
        text_starts = np.concatenate([[0], text_ends[:-1] + n])
        return units, text_starts, text_ends

    def _densify(self, sig: np.ndarray, empty: np.ndarray) -> None:
        """Fill empty bins, the same way for every text with the same filled bins (so estimates stay fair).

        Empty bin j first tries a few bins in a fixed random order for j ("optimal densification", Shrivastava
        2017), which fills nearly every empty bin of a normal-length text; a bin still empty after that (short
        texts, few filled bins) copies the next filled bin to its right, wrapping round (rotation, Shrivastava
        & Li 2014). Two ways to compute the same result: per empty bin, or whole-matrix for many empty bins.
        """
        k, flat, filled = self.num_perm, sig.reshape(-1), ~empty
        where = np.flatnonzero(empty)  # flat (text * num_perm + bin) positions still to fill, ascending
        if 4 * len(where) > len(flat):  # mostly short texts: contiguous passes beat gathers over most bins
            value = np.take(flat, _right_filled(filled))
            for cols in self.probe_order[::-1]:  # the last assignment wins, so go from the last probe back
                value = np.where(np.take(filled, cols, axis=1), np.take(sig, cols, axis=1), value)
            np.copyto(sig, value, where=empty)
            return
        for cols in self.probe_order:
            bins = where % k
            source = np.take(cols, bins) + (where - bins)
            flat[where] = np.take(flat, source)  # written even on a miss: a later step overwrites it
            where = where[~np.take(filled, source)]  # (take on a 2-D array reads it flat)
            if not len(where):
                return
        text = where // k  # rotation for the few texts left: only their rows, not the whole batch
        rows = _sorted_unique(text)
        right = _right_filled(filled[rows])[np.searchsorted(rows, text), where - text * k]
        flat[where] = flat[text * k + right % k]

    def band_hashes(self, sig: np.ndarray, band: int, rows: int) -> np.ndarray:
        """uint64 hash of one band (rows consecutive signature values) for every text."""
        block = np.ascontiguousarray(sig[:, band * rows : (band + 1) * rows])  # 2 bytes a value, not 8
        h = block[:, 0] * self.band_multipliers[band * rows]
        for j in range(1, rows):
            h += block[:, j] * self.band_multipliers[band * rows + j]  # wraps mod 2**64
        return h


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, e) for each (s, e) pair (empty where e <= s), without a Python loop."""
    lengths = np.maximum(ends - starts, 0)
    total = int(lengths.sum())
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return np.arange(total) + offsets


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique for int arrays: sort + mask is 20-80x faster than numpy 2.4's hash-based unique."""
    values = np.sort(values)
    return values[np.diff(values, prepend=values[:1] - 1) != 0]


def _right_filled(filled: np.ndarray) -> np.ndarray:
    """For a (texts, bins) mask, the flat position of the first filled bin at or after each bin of its row,
    wrapping round to the row's start. Every row must have a filled bin."""
    rows, k = filled.shape
    position = np.arange(rows * k, dtype=np.int32).reshape(rows, k)
    after = np.where(filled, position, np.int32(rows * k)).reshape(-1)
    after = np.minimum.accumulate(after[::-1])[::-1].reshape(rows, k)
    return np.where(after <= position[:, -1:], after, after[:, :1])


def _earliest_in_same_bucket(hx: np.ndarray, hy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids in y, earliest id in x with the same band hash) for every y whose hash occurs in x."""
    order = np.argsort(hx)
    hx = hx[order]
    starts = np.flatnonzero(np.concatenate([[True], hx[1:] != hx[:-1]]))
    bucket_hash, earliest = hx[starts], np.minimum.reduceat(order, starts)
    at = np.minimum(np.searchsorted(bucket_hash, hy), len(bucket_hash) - 1)
    y_ids = np.flatnonzero(bucket_hash[at] == hy)
    return y_ids, earliest[at[y_ids]]


def _union_find_roots(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, root of each node) for the graph with edges a-b; a root is its component's smallest id.
    Vectorised hook-and-compress: a few numpy passes instead of a Python loop per edge."""
    nodes = _sorted_unique(np.concatenate([a, b]))
    a, b = np.searchsorted(nodes, a), np.searchsorted(nodes, b)
    label = np.arange(len(nodes))
    while True:
        la, lb = label[a], label[b]
        if np.array_equal(la, lb):
            return nodes, nodes[label]
        low = np.minimum(la, lb)
        np.minimum.at(label, la, low)  # hook each root under the smaller root it touches
        np.minimum.at(label, lb, low)
        while True:  # pointer jumping until every node points at its root
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped


class NearDuplicateIndex:
    """Accumulates MinHash signatures of texts in batches and finds near-duplicate pairs/clusters.

    ``pairs()`` reports each later member of a cluster against the cluster's earliest member;
    ``cross_pairs(other)`` compares two indexes built with the same parameters (train vs test).
    ``num_perm``, ``bands``, ``rows``, ``ngram`` and ``threshold`` say how near-duplicates were found.
    """

    def __init__(
        self,
        threshold: float = 0.8,
        num_perm: int = 128,
        ngram: int = 5,
        seed: int = 1,
        bands: int | None = None,
        rows: int | None = None,
    ):
        if not (0.0 < threshold < 1.0 and 2 <= num_perm <= 1024 and ngram >= 1):
            raise ValueError(
                f"need 0 < threshold < 1, 2 <= num_perm <= 1024 and ngram >= 1; got threshold "
                f"{threshold}, num_perm {num_perm}, ngram {ngram}"
            )
        self.threshold, self.num_perm, self.ngram, self.seed = threshold, num_perm, ngram, seed
        if bands is None or rows is None:
            bands, rows = lsh_params(threshold, num_perm)
        if bands * rows > num_perm:
            raise ValueError(f"{bands} bands x {rows} rows need more than {num_perm} hash values")
        self.bands, self.rows = bands, rows
        # a pair is a near-duplicate when at least this many of the num_perm values agree
        self.min_matches = math.ceil(threshold * num_perm - 1e-9)
        self._hashing = _Hashing(num_perm, ngram, seed)
        self._pending: list[str] = []
        self._chunks: list[np.ndarray] = []  # pages of PAGE_ROWS signatures, or one consolidated array
        self._page_start, self._count = 0, 0  # id of the last chunk's first row; texts hashed into chunks

    @classmethod
    def from_signatures(
        cls,
        signatures: np.ndarray,
        threshold: float = 0.8,
        ngram: int = 5,
        seed: int = 1,
        bands: int | None = None,
        rows: int | None = None,
    ) -> NearDuplicateIndex:
        """An index over signatures computed elsewhere (say by worker processes) with the same ngram and seed."""
        index = cls(threshold, signatures.shape[1], ngram, seed, bands, rows)
        index._chunks, index._count = [np.ascontiguousarray(signatures, dtype=np.uint16)], len(signatures)
        return index

    def __len__(self) -> int:
        return self._count + len(self._pending)

    def add(self, text: str) -> int:
        """Queue one text; returns its id (0, 1, ...). Hashing happens in batches."""
        pending = self._pending
        pending.append(text)
        if len(pending) == BATCH_TEXTS:
            self._flush()
            return self._count - 1
        return self._count + len(pending) - 1

    def add_many(self, texts: list[str]) -> range:
        """Add texts in order; returns their ids."""
        first, texts, done = len(self), list(texts), 0
        while done < len(texts):  # fill the pending batch exactly as add() would, a slice at a time
            take = BATCH_TEXTS - len(self._pending)
            self._pending.extend(texts[done : done + take])
            done += take
            if len(self._pending) == BATCH_TEXTS:
                self._flush()
        return range(first, len(self))

    def _flush(self) -> None:
        """Hash the pending texts and write their signatures into the pages."""
        if not self._pending:
            return
        sig, self._pending = self._hashing.signatures(self._pending), []
        while len(sig):
            if not self._chunks or self._count == self._page_start + len(self._chunks[-1]):
                # np.empty: the OS only commits the rows actually written
                self._chunks.append(np.empty((PAGE_ROWS, self.num_perm), dtype=np.uint16))
                self._page_start = self._count
            page, at = self._chunks[-1], self._count - self._page_start
            part = sig[: len(page) - at]
            page[at : at + len(part)] = part
            self._count += len(part)
            sig = sig[len(part) :]

    @property
    def signatures(self) -> np.ndarray:
        """(len(self), num_perm) uint16 signatures of every text added so far."""
        self._flush()
        if len(self._chunks) == 1 and len(self._chunks[0]) == self._count:
            return self._chunks[0]
        total = np.empty((self._count, self.num_perm), dtype=np.uint16)
        pages, self._chunks, done = self._chunks[::-1], [total], 0
        while pages:  # each page is freed once copied: the peak is one copy plus a page, not two copies
            page = pages.pop()
            part = min(len(page), self._count - done)
            total[done : done + part] = page[:part]
            done += part
        self._page_start = 0
        return total

    def similarity(self, i: int, j: int) -> float:
        """Estimated Jaccard similarity of texts i and j (the fraction of agreeing signature values)."""
        sig = self.signatures
        return float(np.count_nonzero(sig[i] == sig[j])) / self.num_perm

    def _matches(self, sig_a: np.ndarray, a: np.ndarray, sig_b: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Number of agreeing signature values for each pair (sig_a[a[i]], sig_b[b[i]])."""
        out = np.empty(len(a), dtype=np.int32)
        for s in range(0, len(a), _VERIFY_CHUNK):
            e = s + _VERIFY_CHUNK
            out[s:e] = np.count_nonzero(sig_a[a[s:e]] == sig_b[b[s:e]], axis=1)
        return out

    def _star_candidates(self, sig: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unique (earliest id in bucket, other id in bucket) pairs over all bands."""
        keys = []
        for band in range(self.bands):
            h = self._hashing.band_hashes(sig, band, self.rows)
            order = np.argsort(h)  # unstable is ~4x faster; the earliest id is found by a reduction below
            h = h[order]
            starts = np.flatnonzero(np.diff(h, prepend=h[:1] - 1))  # where each bucket starts in sorted order
            if len(starts) == len(h):  # every text alone in its bucket
                continue
            earliest = np.repeat(np.minimum.reduceat(order, starts), np.diff(starts, append=len(h)))
            member = order != earliest
            keys.append(earliest[member].astype(np.int64) * len(sig) + order[member])
        keys = _sorted_unique(np.concatenate(keys)) if keys else np.empty(0, np.int64)
        return keys // max(len(sig), 1), keys % max(len(sig), 1)

    def pair_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """pairs() as numpy arrays (earliest ids, later ids, estimated Jaccard), sorted by later id."""
        sig = self.signatures
        a, b = self._star_candidates(sig)
        keep = self._matches(sig, a, sig, b) >= self.min_matches
        if not keep.any():
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
        nodes, roots = _union_find_roots(a[keep], b[keep])
        later = nodes != roots
        first, then = roots[later], nodes[later]
        return first, then, self._matches(sig, first, sig, then) / self.num_perm

    def pairs(self) -> list[tuple[int, int, float]]:
        """(earliest id, later id, estimated Jaccard): every later member of a near-duplicate cluster once.

        A cluster is linked by pairs whose estimated Jaccard is >= threshold; in a chain (A~B, B~C) the
        reported similarity of C to A can be lower than the threshold.
        """
        first, then, sim = self.pair_arrays()
        return list(zip(first.tolist(), then.tolist(), sim.tolist()))

    def cross_pairs(self, other: NearDuplicateIndex) -> list[tuple[int, int, float]]:
        """(id in self, id in other, estimated Jaccard) for each self text with a near copy in other.

        One row per self id (its most similar match found, ties to the smaller other id), sorted by self id.
        """
        params = [(ix.num_perm, ix.ngram, ix.seed, ix.bands, ix.rows) for ix in (self, other)]
        if params[0] != params[1]:
            raise ValueError(f"indexes differ in (num_perm, ngram, seed, bands, rows): {params[0]} vs {params[1]}")
        mine, theirs = self.signatures, other.signatures
        if not len(mine) or not len(theirs):
            return []
        a_parts, b_parts = [], []
        for band in range(self.bands):
            h_mine = self._hashing.band_hashes(mine, band, self.rows)
            h_theirs = self._hashing.band_hashes(theirs, band, self.rows)
            for h_x, h_y, y_is_mine in ((h_mine, h_theirs, False), (h_theirs, h_mine, True)):
                y_ids, x_ids = _earliest_in_same_bucket(h_x, h_y)
                a_parts.append(y_ids if y_is_mine else x_ids)
                b_parts.append(x_ids if y_is_mine else y_ids)
        keys = _sorted_unique(np.concatenate(a_parts).astype(np.int64) * len(theirs) + np.concatenate(b_parts))
        a, b = keys // len(theirs), keys % len(theirs)
        matches = self._matches(mine, a, theirs, b)
        keep = matches >= self.min_matches
        a, b, matches = a[keep], b[keep], matches[keep]
        best = np.lexsort((b, -matches, a))  # per self id: most matches first, then the smaller other id
        a, b, matches = a[best], b[best], matches[best]
        first = np.flatnonzero(np.diff(a, prepend=-1))  # the first row of each self id
        return list(zip(a[first].tolist(), b[first].tolist(), (matches[first] / self.num_perm).tolist()))

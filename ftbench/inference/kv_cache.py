"""A KV cache for continuous batching: grows in place, drops rows, trims unused columns, takes in new rows.

transformers' `DynamicCache` appends each new token with `torch.cat`, copying the whole cache at every step
(a quarter of the CPU time of greedy decoding with SmolLM2-135M at batch 16). Here each layer keeps its keys and
values in a buffer with room for `SPARE` more tokens, so a step writes one column in place, and the attention
reads a view of the filled part. The model sees an ordinary `DynamicCache` (same `update`/`get_seq_length`).

This module imports transformers: `ftbench.inference.greedy` imports it inside a function, never at start-up.
"""

from __future__ import annotations

from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

SPARE = 128  # columns allocated ahead, so the buffer is copied once per 128 steps rather than at every step


class GrowingLayer(DynamicLayer):
    """One layer's keys and values, ``[batch, heads, length, head_dim]`` views of buffers with spare columns and
    room for the most rows the batch has had: rows that end and rows that join are written in place, so a step
    that ends a few rows or a prefill that adds a few copies those rows, not the whole cache."""

    def lazy_initialization(self, key_states, value_states) -> None:
        super().lazy_initialization(key_states, value_states)
        self.length, self.rows = 0, key_states.shape[0]
        self.key_buffer = self.value_buffer = None

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        new = key_states.shape[-2]
        if self.key_buffer is None or self.length + new > self.key_buffer.shape[-2]:
            self._reallocate(self.length + new + SPARE, key_states, value_states)
        self.key_buffer[: self.rows, :, self.length : self.length + new] = key_states
        self.value_buffer[: self.rows, :, self.length : self.length + new] = value_states
        self._set_length(self.length + new)
        return self.keys, self.values

    def _reallocate(self, capacity: int, key_states, value_states) -> None:
        """Fresh buffers of ``capacity`` columns and as many rows as before (shaped like the states being added)
        holding what is cached."""
        rows = max(self.rows, self.key_buffer.shape[0] if self.key_buffer is not None else 0)
        keys = key_states.new_zeros((rows, key_states.shape[1], capacity, key_states.shape[-1]))
        values = value_states.new_zeros((rows, value_states.shape[1], capacity, value_states.shape[-1]))
        if self.length:
            keys[: self.rows, :, : self.length], values[: self.rows, :, : self.length] = self.keys, self.values
        self.key_buffer, self.value_buffer = keys, values

    def _set_length(self, length: int) -> None:
        self.length = length
        self.keys = self.key_buffer[: self.rows, :, :length]
        self.values = self.value_buffer[: self.rows, :, :length]

    def batch_select_indices(self, indices) -> None:
        """Keep the rows ``indices``, in that order: a row already at its place stays, the others are copied
        there (`greedy._Batch.keep` moves rows from the end into the places of rows that ended)."""
        import torch

        index = indices.tolist() if hasattr(indices, "tolist") else list(indices)
        moves = [(to, source) for to, source in enumerate(index) if to != source]
        if moves:
            to, source = (torch.tensor(x, device=self.key_buffer.device) for x in zip(*moves))
            for buffer in (self.key_buffer, self.value_buffer):
                buffer[to] = buffer[source]  # the right side is read first: any order of moves is safe
        self.rows = len(index)
        self._set_length(self.length)

    def trim_left(self, columns: int) -> None:
        """Forget the first ``columns`` columns (padding in every remaining row)."""
        self.key_buffer = self.key_buffer[:, :, columns:]
        self.value_buffer = self.value_buffer[:, :, columns:]
        self._set_length(self.length - columns)

    def gather_columns(self, index) -> None:
        """Keep, for each row, the columns ``index[row]`` (in that order): ``index`` is ``[batch, columns]``."""
        rows, heads, _, dim = self.keys.shape
        expanded = index[:, None, :, None].expand(rows, heads, index.shape[1], dim)

        def gathered(states, buffer):
            fresh = states.new_zeros((buffer.shape[0], heads, index.shape[1] + SPARE, dim))
            fresh[:rows, :, : index.shape[1]] = states.gather(2, expanded)
            return fresh

        self.key_buffer = gathered(self.keys, self.key_buffer)
        self.value_buffer = gathered(self.values, self.value_buffer)
        self._set_length(index.shape[1])

    def join(self, other: "GrowingLayer") -> None:
        """Append ``other``'s rows; both are right-aligned to the longer length, the gap on the left zero (the
        attention mask hides it; zeros, not garbage, because a masked weight of 0 times NaN is still NaN). In
        place when the buffer has the rows and ``other`` is no longer; else in fresh buffers."""
        width, rows, added = max(self.length, other.length), self.rows, other.rows
        if width == self.length and rows + added <= self.key_buffer.shape[0]:
            gap = width - other.length
            for buffer, theirs in ((self.key_buffer, other.keys), (self.value_buffer, other.values)):
                buffer[rows : rows + added, :, :gap] = 0
                buffer[rows : rows + added, :, gap:width] = theirs
            self.rows = rows + added
            self._set_length(width)
            return

        def stacked(mine, theirs):
            buffer = mine.new_zeros((rows + added, mine.shape[1], width + SPARE, mine.shape[-1]))
            buffer[:rows, :, width - mine.shape[-2] : width] = mine
            buffer[rows:, :, width - theirs.shape[-2] : width] = theirs
            return buffer

        self.key_buffer, self.value_buffer = stacked(self.keys, other.keys), stacked(self.values, other.values)
        self.rows = rows + added
        self._set_length(width)


class GrowingCache(DynamicCache):
    """A `DynamicCache` whose layers are `GrowingLayer`s."""

    def __init__(self):
        super().__init__()
        self.layer_class_to_replicate = GrowingLayer

    def trim_left(self, columns: int) -> None:
        for layer in self.layers:
            layer.trim_left(columns)

    def gather_columns(self, index) -> None:
        for layer in self.layers:
            layer.gather_columns(index)

    def join(self, other: "GrowingCache") -> None:
        for mine, theirs in zip(self.layers, other.layers):
            mine.join(theirs)


MIN_SHARED = 8  # a shorter common beginning is not worth a forward pass of its own


def shared_prefix_length(sequences, minimum: int = MIN_SHARED) -> int:
    """How many leading tokens every sequence shares (a chat template's system prompt, an eval's few-shot
    examples), leaving each at least one token of its own; 0 below ``minimum`` or for fewer than two."""
    if len(sequences) < 2:
        return 0
    first, limit = sequences[0], min(len(s) for s in sequences) - 1
    length = 0
    while length < limit and all(s[length] == first[length] for s in sequences):
        length += 1
    return length if length >= minimum else 0


class SharedPrefix:
    """The keys and values of a beginning that many prompts share, computed once at batch 1: prompts that start
    with it are then run from `cache` on, their own tokens only (at positions ``length`` on). Causal attention
    makes a token's keys and values depend only on what precedes it, so they are what the whole prompt's forward
    pass computes there."""

    def __init__(self, model, ids):
        import torch

        self.ids, self.length = list(ids), len(ids)
        cache = GrowingCache()
        device = next(model.parameters()).device
        model(input_ids=torch.tensor([self.ids], device=device), use_cache=True, **forward_kwargs(model, cache, 1))
        self.states = [(layer.keys, layer.values) for layer in cache.layers]

    def cache(self, rows: int) -> GrowingCache:
        """A cache holding the shared beginning in each of ``rows`` rows."""
        cache = GrowingCache()
        for index, (keys, values) in enumerate(self.states):
            cache.update(keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1), index)
        return cache


def forward_kwargs(model, cache, logits_to_keep=None) -> dict:
    """``cache`` under the name this transformers' forward takes (`cache`, `past_key_values` before), and
    ``logits_to_keep`` (a count of last positions, or a position mask) where the model accepts it: the output
    layer then runs only where logits are read (a prefill needs the last position's, as in `generate`)."""
    from ftbench.inference.models import forward_takes

    keep = (
        {"logits_to_keep": logits_to_keep}
        if logits_to_keep is not None and forward_takes(model, "logits_to_keep")
        else {}
    )
    return {"cache" if forward_takes(model, "cache") else "past_key_values": cache, **keep}

"""SDPA attention for grouped-query models that never copies the key/value cache.

With grouped-query attention (SmolLM2: 9 query heads share 3 key/value heads; Qwen2.5: 7 or 8 share 1) and an
attention mask, transformers' SDPA path repeats every cached key and value once per sharing head (`repeat_kv`)
before each call, except for a single new token. A greedy step that verifies draft tokens feeds several, and
that copy cost it more than the attention itself. Here the query heads that share a key/value head are stacked
along the query axis instead (what transformers does for one token, `pack_gqa`, for any number of tokens):
the same products, with the cache read once in place. A decoding step's few queries (one token or a few drafts
per row) on CPU are two batched matrix products rather than SDPA's flash kernel, which tiles for many queries.

`load_model_for_generation` loads SDPA models with this implementation; anything it does not cover (no mask,
dropout, a per-head or additive mask) goes to transformers' own SDPA function unchanged.
"""

from __future__ import annotations

import weakref

ATTENTION = "ftbench_grouped_sdpa"
FEW_QUERIES = 64  # stacked queries per key/value head up to which two matrix products beat SDPA's CPU kernel


def grouped_sdpa(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """transformers' attention-function signature: ``query [batch, heads, q, dim]``, ``key``/``value``
    ``[batch, kv_heads, length, dim]``; returns ``([batch, q, heads, dim], None)``."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    groups = getattr(module, "num_key_value_groups", 1)
    batch, heads, length, dim = query.shape
    per_head_or_none = attention_mask is None or attention_mask.dim() != 4 or attention_mask.shape[1] != 1
    if dropout or per_head_or_none or attention_mask.dtype != torch.bool or (groups == 1 and length > 1):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling)
    # query heads h*groups .. h*groups+groups-1 share key/value head h (transformers' repeat_kv order)
    stacked = query.reshape(batch, heads // groups, groups * length, dim)
    if groups * length <= FEW_QUERIES and query.device.type == "cpu":
        bias = _stacked_bias(attention_mask, groups, query.dtype)
        out = _few_queries(stacked, key, value, bias, dim**-0.5 if scaling is None else scaling)
    else:
        mask = attention_mask.expand(batch, 1, length, -1).repeat(1, 1, groups, 1)
        out = torch.nn.functional.scaled_dot_product_attention(stacked, key, value, attn_mask=mask, scale=scaling)
    return out.reshape(batch, heads, length, dim).transpose(1, 2).contiguous(), None


def _few_queries(query, key, value, bias, scale: float):
    """Attention as two batched matrix products, for a decoding step's few queries on CPU: SDPA's flash kernel
    tiles for many queries: one token per row over a 400-column cache took it 1.02 ms a layer against 0.85 ms
    here (16 rows, SmolLM2's 3 key/value heads; outputs within 4e-7)."""
    import torch

    scores = torch.matmul(query, key.transpose(-1, -2)).mul_(scale).add_(bias)
    return torch.matmul(scores.softmax(-1), value)


_bias: tuple = (None, None, None)  # (weak reference to the last mask, its key, its bias)


def _stacked_bias(mask, groups: int, dtype):
    """The bool mask ``[batch, 1, length, columns]`` as an additive bias stacked like the queries (``[batch, 1,
    groups * length, columns]``): 0 where a query sees a column, else the dtype's lowest value, which adding to
    any score gives exactly, so the softmax is bit for bit that of scores filled with it (not -inf: a row with
    nothing to attend to stays finite). Every layer of a forward pass gets the same mask tensor, so the bias is
    built once per pass, not once per layer as before (16 rows fed 2 tokens, 30 layers: 41-42 -> 35 ms of
    attention a step, 2-core EPYC, 2026-12-07). transformers builds a new mask for every pass; a 4-D mask that a
    caller passes in and then changes in place between passes would be served the old bias."""
    import torch

    global _bias
    reference, key, bias = _bias
    if reference is None or reference() is not mask or key != (groups, dtype):
        stacked = mask.repeat(1, 1, groups, 1)
        bias = torch.zeros(stacked.shape, dtype=dtype, device=mask.device).masked_fill_(
            ~stacked, torch.finfo(dtype).min
        )
        _bias = (weakref.ref(mask), (groups, dtype), bias)
    return bias


def register() -> str:
    """Register `grouped_sdpa` with transformers (its masks built as SDPA's) and return its name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(ATTENTION, grouped_sdpa)
    ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION, sdpa_mask)
    return ATTENTION

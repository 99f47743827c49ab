"""SDPA attention for grouped-query models that never copies the key/value cache.

With grouped-query attention (SmolLM2: 9 query heads share 3 key/value heads; Qwen2.5: 7 or 8 share 1) and an
attention mask, transformers' SDPA path repeats every cached key and value once per sharing head (`repeat_kv`)
before each call, except for a single new token. A greedy step that verifies draft tokens feeds several, and
that copy cost it more than the attention itself. Here the query heads that share a key/value head are stacked
along the query axis instead (what transformers does for one token, `pack_gqa`, for any number of tokens):
the same products, with the cache read once in place.

`load_model_for_generation` loads SDPA models with this implementation; anything it does not cover (no mask,
dropout, a per-head mask, a single token) goes to transformers' own SDPA function unchanged.
"""

from __future__ import annotations

ATTENTION = "ftbench_grouped_sdpa"


def grouped_sdpa(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """transformers' attention-function signature: ``query [batch, heads, q, dim]``, ``key``/``value``
    ``[batch, kv_heads, length, dim]``; returns ``([batch, q, heads, dim], None)``."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    groups = getattr(module, "num_key_value_groups", 1)
    batch, heads, length, dim = query.shape
    if (
        groups == 1
        or length == 1
        or dropout
        or attention_mask is None
        or attention_mask.dim() != 4
        or attention_mask.shape[1] != 1
    ):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling)
    # query heads h*groups .. h*groups+groups-1 share key/value head h (transformers' repeat_kv order)
    stacked = query.reshape(batch, heads // groups, groups * length, dim)
    mask = attention_mask.expand(batch, 1, length, -1).repeat(1, 1, groups, 1)
    out = torch.nn.functional.scaled_dot_product_attention(stacked, key, value, attn_mask=mask, scale=scaling)
    return out.reshape(batch, heads, length, dim).transpose(1, 2).contiguous(), None


def register() -> str:
    """Register `grouped_sdpa` with transformers (its masks built as SDPA's) and return its name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(ATTENTION, grouped_sdpa)
    ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION, sdpa_mask)
    return ATTENTION

"""A decoding step through a Llama-style decoder without transformers' per-call machinery: the same modules and
functions in the same order, so the same logits, bit for bit, in less time.

transformers' forward pass wraps every layer, attention and model call in generic machinery (output recording,
gradient-checkpointing layers, an attention-function lookup, keyword plumbing, output dataclasses). For
SmolLM2-135M at 16 rows that is 5-7 ms of a 100-170 ms greedy step on a 2-core EPYC (docs/performance.md,
"Seventh pass"), paid at every one of the ~450 steps of 48 GSM8K answers. `plain_forward` runs the model's own
submodules (embedding, norms, projections, MLP, output layer; a LoRA layer is a submodule like any other), its
module's `apply_rotary_pos_emb`, transformers' `create_causal_mask` and ftbench's `attention.grouped_sdpa`, as
the model's forward does; `tests/test_plain_decoder.py` checks the logits and cache equal the model's own.

Only layer classes whose forward is known to be exactly this are taken (`PLAIN_LAYERS`: Llama and Qwen2, full
attention), with the grouped attention set; anything else (sliding windows, Qwen3's query/key norms, Gemma's
scaled embeddings, another transformers' keywords), or a model with forward hooks on the modules it does not
call, runs the model's forward.
"""

from __future__ import annotations

import inspect
import sys

# decoder layer class -> its attention class: forwards that compute exactly what `plain_forward` does
PLAIN_LAYERS = {
    ("transformers.models.llama.modeling_llama", "LlamaDecoderLayer"): "LlamaAttention",
    ("transformers.models.qwen2.modeling_qwen2", "Qwen2DecoderLayer"): "Qwen2Attention",
}


def plain_forward(model):
    """A function ``(input_ids, attention_mask, position_ids, cache, keep) -> logits`` (of the last ``keep``
    positions) computing what ``model(...).logits`` would, or None when `model` is not one it covers."""
    from ftbench.inference.attention import ATTENTION

    base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    decoder, head = getattr(base, "model", None), getattr(base, "lm_head", None)
    layers = getattr(decoder, "layers", None)
    config = getattr(decoder, "config", None)
    if not layers or head is None or base.training or getattr(config, "_attn_implementation", None) != ATTENTION:
        return None
    kinds = {(type(layer).__module__, type(layer).__name__) for layer in layers}
    attentions = {type(layer.self_attn).__name__ for layer in layers}
    if len(kinds) != 1 or attentions != {PLAIN_LAYERS.get(next(iter(kinds)))}:
        return None
    if any(kind != "full_attention" for kind in getattr(config, "layer_types", None) or []):
        return None
    skipped = [model, base, decoder, *layers, *(layer.self_attn for layer in layers)]  # called as functions here
    if any(m._forward_hooks or m._forward_pre_hooks for m in skipped):
        return None  # someone watches those calls (a profiler, a test counting passes): let them happen
    module = sys.modules[type(layers[0]).__module__]
    mask_of = getattr(module, "create_causal_mask", None)
    if mask_of is None or "cache" not in inspect.signature(mask_of).parameters:
        return None  # another transformers: its own keywords, left to its own forward
    rotate = module.apply_rotary_pos_emb

    def forward(input_ids, attention_mask, position_ids, cache, keep: int):
        from ftbench.inference.attention import grouped_sdpa

        hidden = decoder.embed_tokens(input_ids)
        mask = mask_of(
            config=config, inputs_embeds=hidden, attention_mask=attention_mask, cache=cache, position_ids=position_ids
        )
        cos, sin = decoder.rotary_emb(hidden, position_ids)
        shape = hidden.shape[:-1]
        for layer in layers[: config.num_hidden_layers]:
            attention = layer.self_attn
            states = layer.input_layernorm(hidden)
            heads = (*shape, -1, attention.head_dim)
            query = attention.q_proj(states).view(heads).transpose(1, 2)
            key = attention.k_proj(states).view(heads).transpose(1, 2)
            value = attention.v_proj(states).view(heads).transpose(1, 2)
            query, key = rotate(query, key, cos, sin)
            key, value = cache.update(key, value, attention.layer_idx)
            out, _ = grouped_sdpa(attention, query, key, value, mask, scaling=attention.scaling)
            hidden = hidden + attention.o_proj(out.reshape(*shape, -1).contiguous())
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        return head(decoder.norm(hidden)[:, -keep:])

    return forward

"""A decoding step without transformers' per-call machinery (`inference.plain_decoder`): the same logits and
cache as the model's own forward, bit for bit, for each layer class it takes; the model's forward for the rest."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(kind: str):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

    from ftbench.inference import attention
    from ftbench.inference.tiny import MODEL_SHAPE

    sizes = dict(MODEL_SHAPE, num_hidden_layers=3, vocab_size=300)  # the tiny model's shape, a layer more
    config_class, model_class = {
        "llama": (LlamaConfig, LlamaForCausalLM),
        "qwen2": (Qwen2Config, Qwen2ForCausalLM),
        "qwen3": (Qwen3Config, Qwen3ForCausalLM),
    }[kind]
    torch.manual_seed(0)
    model = model_class(config_class(**sizes)).eval()
    model.set_attn_implementation(attention.register())
    return model


def _cache_after_prefill(model, ids, mask):
    from ftbench.inference.kv_cache import GrowingCache, forward_kwargs

    cache = GrowingCache()
    model(input_ids=ids, attention_mask=mask, use_cache=True, **forward_kwargs(model, cache, 1))
    return cache


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_the_plain_step_equals_the_models_forward(kind):
    """Rows left-padded to one width, then steps feeding 1 and 3 tokens a row with a refused draft's column
    masked: the logits and the cached keys and values equal the model's own forward pass's, bit for bit."""
    import torch

    from ftbench.inference.kv_cache import forward_kwargs
    from ftbench.inference.plain_decoder import plain_forward

    model = _model(kind)
    forward = plain_forward(model)
    assert forward is not None
    ids = torch.randint(5, 300, (3, 9))
    mask = torch.ones_like(ids)
    mask[0, :4] = mask[2, :1] = 0  # left padding
    with torch.inference_mode():
        theirs, ours = _cache_after_prefill(model, ids, mask), _cache_after_prefill(model, ids, mask)
        last = mask.cumsum(-1)[:, -1] - 1
        for fed in (1, 3, 2):
            new = torch.randint(5, 300, (3, fed))
            mask = torch.cat([mask, torch.ones_like(new)], dim=1)
            if fed == 2:
                mask[1, -4] = 0  # a refused draft of the 3-token step
            positions = last[:, None] + torch.arange(1, fed + 1)
            expected = model(
                input_ids=new,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                **forward_kwargs(model, theirs),
            ).logits[:, -fed:]
            got = forward(new, mask, positions, ours, fed)
            assert torch.equal(got, expected), (got - expected).abs().max()
            last = last + fed
        for mine, reference in zip(ours.layers, theirs.layers):
            assert torch.equal(mine.keys, reference.keys) and torch.equal(mine.values, reference.values)


def test_other_models_and_watched_ones_run_their_own_forward():
    """Qwen3 (query/key norms), a model being trained, one with transformers' SDPA rather than the grouped
    attention, and one whose calls a hook watches: no plain step."""
    from ftbench.inference.plain_decoder import plain_forward

    assert plain_forward(_model("qwen3")) is None
    training = _model("llama").train()
    assert plain_forward(training) is None
    sdpa = _model("llama")
    sdpa.set_attn_implementation("sdpa")
    assert plain_forward(sdpa) is None
    watched = _model("llama")
    watched.model.layers[1].register_forward_pre_hook(lambda *_: None)
    assert plain_forward(watched) is None

"""Greedy decoding with prompt-lookup drafts (`inference.prompt_lookup`, `greedy.greedy_decode`) and the
grouped-query SDPA it steps with (`inference.attention`): the same tokens as one token per step, in fewer
forward passes; the attention equals transformers' own."""

from __future__ import annotations

import os

import pytest

from ftbench.inference.prompt_lookup import Lookup

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_draft_is_what_followed_the_latest_earlier_match():
    lookup = Lookup([1, 2, 3, 9, 1, 2])
    assert lookup.draft(3) == [3, 9, 1]  # (1, 2) last seen at the start, followed by 3, 9, 1
    lookup.extend([3, 7, 1, 2, 3])
    assert lookup.draft(2) == [7, 1]  # the 3-gram (1, 2, 3) matches its latest occurrence, followed by 7
    assert Lookup([4, 5, 6]).draft(2) == [] and lookup.draft(0) == []


def test_another_answers_longer_match_gives_the_draft():
    """Rows of one batch share a table of their answers' n-grams (not their prompts'): a row whose own text
    matches only its last token takes the continuation of another answer that matches its last three."""
    from ftbench.inference.prompt_lookup import SharedAnswers

    answered = SharedAnswers()
    first, second = Lookup([50, 51], answered), Lookup([60, 8, 61], answered)
    first.extend([7, 8, 9, 10, 11])  # an answer: 7 8 9 -> 10 11
    assert first.draft(2) == []  # its own text never repeated its ending
    second.extend([8])
    assert second.draft(2) == [61, 8]  # (8,) matches its own prompt and the first answer alike: its own text
    second.extend([7, 8])
    assert second.draft(2) == [9, 10]  # (7, 8): 2 tokens matched in the first answer, 1 in its own text
    assert Lookup([7, 8, 9], answered).draft(2) == [10, 11]  # a prompt looks up answers, never indexes itself
    assert (7, 8, 9) in answered.ends and (50, 51) not in answered.ends and (60, 8, 61) not in answered.ends
    full = SharedAnswers(limit=3)
    Lookup([1], full).extend([2, 3, 4, 5])
    assert 0 < len(full.ends) <= 3  # a bounded table starts afresh rather than growing past its limit


@pytest.fixture(scope="module")
def smollm2(tiny_model):  # tiny_model sets the session's FTBENCH_CACHE
    pytest.importorskip("gguf")
    from ftbench.inference.models import resolve_model

    return resolve_model("smollm2")


def test_drafted_decoding_gives_the_same_tokens_in_fewer_passes(smollm2, monkeypatch):
    """SmolLM2 solving GSM8K problems in batches of 2 (room for drafts): it restates the problem's numbers and
    repeats itself, so many drafts are confirmed. Every answer equals one-token-per-step decoding's, in fewer
    forward passes, and refused drafts' columns get squeezed out of the cache."""
    import json

    from ftbench.inference.greedy import greedy_decode
    from ftbench.inference.kv_cache import GrowingCache
    from ftbench.inference.models import load_model_for_generation, load_tokenizer

    tokenizer, model = load_tokenizer(smollm2), load_model_for_generation(smollm2)
    with open(os.path.join(REPO, "datasets", "gsm8k", "test.jsonl"), encoding="utf-8") as fh:
        questions = [json.loads(line)["question"] for line in fh][:4]
    texts = [
        tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=False)
        for q in questions
    ]
    prompts = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    calls, squeezes = [], []
    gather = GrowingCache.gather_columns
    model.register_forward_pre_hook(lambda *_: calls.append(1))
    monkeypatch.setattr(GrowingCache, "gather_columns", lambda self, i: squeezes.append(1) or gather(self, i))
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")

    def decode(drafts: int) -> tuple[dict, int]:
        calls.clear()
        rows = greedy_decode(model, prompts, tokenizer.pad_token_id, 2, 160, lambda row: row[-1] == end, drafts)
        return dict(rows), len(calls)

    plain, plain_calls = decode(0)
    drafted, drafted_calls = decode(3)
    assert drafted == plain and sum(map(len, plain.values())) > 300
    assert drafted_calls < 0.8 * plain_calls, (drafted_calls, plain_calls)
    assert squeezes


@pytest.mark.parametrize("fed", [1, 3, 30])
def test_grouped_sdpa_equals_transformers_sdpa(fed):
    """One, several and many query tokens over a cache, with a padding-and-causal mask: the stacked-heads
    attention (two matrix products up to `FEW_QUERIES` stacked queries, SDPA past them) equals transformers'
    SDPA function (which repeats the keys and values per query head)."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from ftbench.inference.attention import grouped_sdpa

    class Layer(torch.nn.Module):
        num_key_value_groups = 3
        is_causal = True

    torch.manual_seed(0)
    batch, kv_heads, length, dim = 4, 2, 40, 16
    query = torch.randn(batch, kv_heads * 3, fed, dim)
    key, value = torch.randn(batch, kv_heads, length, dim), torch.randn(batch, kv_heads, length, dim)
    causal = torch.ones(fed, length, dtype=torch.bool).tril(length - fed)
    padding = torch.ones(batch, length, dtype=torch.bool)
    padding[1, :4] = padding[3, 2:5] = False  # left padding, and refused drafts' columns
    mask = (causal[None] & padding[:, None, :])[:, None]
    ours, _ = grouped_sdpa(Layer(), query, key, value, mask, scaling=0.25)
    theirs, _ = sdpa_attention_forward(Layer(), query, key, value, mask, scaling=0.25)
    assert ours.shape == theirs.shape == (batch, fed, kv_heads * 3, dim)
    assert torch.allclose(ours, theirs, atol=1e-6)
    # the next forward pass's mask, same shape, other columns: built anew, not the last pass's (kept per mask)
    for other in (mask.clone(), mask.roll(1, dims=0)):
        other[0, 0, :, 1] = False
        ours, _ = grouped_sdpa(Layer(), query, key, value, other, scaling=0.25)
        theirs, _ = sdpa_attention_forward(Layer(), query, key, value, other, scaling=0.25)
        assert torch.allclose(ours, theirs, atol=1e-6)

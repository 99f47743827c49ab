"""Greedy decoding of a left-padded batch in which finished rows stop costing compute.

`model.generate` keeps every row in the batch until the last one ends: in a batch of GSM8K solutions where most
answers take 80 tokens and one runs to 256, the finished rows are computed (and thrown away) for 176 more steps.
Here a row that has ended is dropped from the batch and from the KV cache (`DynamicCache.batch_select_indices`),
so each step costs only the rows still generating. The arithmetic per row is `generate`'s: the same forward pass,
positions from the attention mask, the argmax of the last logits; `tests/test_predict.py` checks the text equals
`generate`'s and is the same at batch 16 as at batch 1.
"""

from __future__ import annotations

from typing import Callable


# GenerationConfig fields with which generate() adds a logits processor even when greedy, and their neutral values
# (transformers' `_get_logits_processor`); any other value means generate() must decode, not a bare argmax
_NEUTRAL = {"guidance_scale": (None, 1, 1.0), "sequence_bias": (None,), "encoder_repetition_penalty": (None, 1.0),
            "repetition_penalty": (None, 1.0), "no_repeat_ngram_size": (None, 0), "encoder_no_repeat_ngram_size":
            (None, 0), "bad_words_ids": (None,), "min_length": (None, 0), "min_new_tokens": (None, 0),
            "forced_bos_token_id": (None,), "forced_eos_token_id": (None,), "exponential_decay_length_penalty": (None,),
            "suppress_tokens": (None,), "begin_suppress_tokens": (None,), "watermarking_config": (None,),
            "num_beams": (None, 1), "max_time": (None,), "stop_strings": (None,),
            "prompt_lookup_num_tokens": (None,), "assistant_early_exit": (None,)}


def is_plain_greedy(config) -> bool:
    """Whether ``generate(generation_config=config)`` is greedy argmax decoding with nothing that reshapes the
    logits (no repetition penalty, banned words, minimum length...), so `greedy_shrinking` gives the same tokens."""
    if getattr(config, "do_sample", False) or not getattr(config, "max_new_tokens", None):
        return False
    return all(getattr(config, name, None) in neutral for name, neutral in _NEUTRAL.items())


def greedy_shrinking(model, ids, mask, max_new_tokens: int, finished: Callable[[list[int]], bool]) -> list[list[int]]:
    """The new token ids of every row of ``ids`` (left-padded, with ``mask``), generated greedily until
    ``finished(row_ids)`` says the row has ended (its end-of-turn id or a stop string) or ``max_new_tokens``."""
    import torch
    from transformers import DynamicCache

    rows = ids.shape[0]
    answers: list[list[int]] = [[] for _ in range(rows)]
    if max_new_tokens <= 0:
        return answers
    cache = DynamicCache()
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache_kw = {_cache_argument(model): cache}
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                       **cache_kw).logits[:, -1, :]
        active = list(range(rows))  # answers[active[k]] is row k of the batch still being computed
        last = positions[:, -1]
        for step in range(max_new_tokens):
            tokens = logits.float().argmax(-1)
            keep = []
            for k, token in enumerate(tokens.tolist()):
                answers[active[k]].append(token)
                if not finished(answers[active[k]]):
                    keep.append(k)
            if not keep or step == max_new_tokens - 1:
                break
            if len(keep) < len(active):  # drop the rows that ended, from the batch and from the cache
                index = torch.tensor(keep, device=ids.device)
                cache.batch_select_indices(index)
                tokens, mask, last = tokens[index], mask[index], last[index]
                active = [active[k] for k in keep]
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
            last = last + 1
            logits = model(input_ids=tokens[:, None], attention_mask=mask, position_ids=last[:, None],
                           use_cache=True, **cache_kw).logits[:, -1, :]
    return answers


def _cache_argument(model) -> str:
    """The forward argument that takes the KV cache: `cache` in newer transformers, `past_key_values` before."""
    import inspect

    base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"

"""Greedy decoding with continuous batching: a finished row leaves the batch and the next prompt takes its slot.

`model.generate` keeps every row of a batch until the last one ends: in a batch of GSM8K solutions where most
answers take 80 tokens and one runs to 256, the finished rows are computed (and thrown away) for 176 more steps,
and the next batch waits for the slowest row of this one. Here a row that has ended is dropped from the batch and
from the KV cache at once, and the next prompt is prefilled and joins the running batch (its cache left-padded to
the batch's width, the padding masked out), so every step computes up to ``batch_size`` rows that are still
generating. The arithmetic per row is `generate`'s: the same forward pass, positions from the attention mask, the
argmax of the last logits; `tests/test_predict.py` checks the text equals `generate`'s at batch 1. The cache
grows in place rather than by `torch.cat` at every step (`kv_cache.GrowingCache`); as in `generate`, the prefill
computes the output layer for the last position only.

Only plain greedy decoding of attention-only models goes through here (`is_plain_greedy`, `attention_only`): a
config with a repetition penalty, banned words or sampling, or a hybrid model, is decoded by `generate()`.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Iterator, Sequence

# GenerationConfig fields with which generate() adds a logits processor even when greedy, and their neutral values
# (transformers' `_get_logits_processor`); any other value means generate() must decode, not a bare argmax
_NEUTRAL = {
    "guidance_scale": (None, 1, 1.0),
    "sequence_bias": (None,),
    "encoder_repetition_penalty": (None, 1.0),
    "repetition_penalty": (None, 1.0),
    "no_repeat_ngram_size": (None, 0),
    "encoder_no_repeat_ngram_size": (None, 0),
    "bad_words_ids": (None,),
    "min_length": (None, 0),
    "min_new_tokens": (None, 0),
    "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,),
    "exponential_decay_length_penalty": (None,),
    "suppress_tokens": (None,),
    "begin_suppress_tokens": (None,),
    "watermarking_config": (None,),
    "num_beams": (None, 1),
    "max_time": (None,),
    "stop_strings": (None,),
    "prompt_lookup_num_tokens": (None,),
    "assistant_early_exit": (None,),
}


def is_plain_greedy(config) -> bool:
    """Whether ``generate(generation_config=config)`` is greedy argmax decoding with nothing that reshapes the
    logits (no repetition penalty, banned words, minimum length...), so `greedy_decode` gives the same tokens."""
    if getattr(config, "do_sample", False) or not getattr(config, "max_new_tokens", None):
        return False
    return all(getattr(config, name, None) in neutral for name, neutral in _NEUTRAL.items())


def attention_only(model) -> bool:
    """Whether every layer of ``model`` keeps a plain key/value cache (full or sliding-window attention), which
    `greedy_decode` can grow, trim and join; hybrid models with recurrent or linear-attention layers keep other
    state, which only `generate()` manages."""
    base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    config = base.config.get_text_config() if hasattr(base.config, "get_text_config") else base.config
    return all(kind in ("full_attention", "sliding_attention") for kind in getattr(config, "layer_types", None) or [])


def greedy_decode(
    model,
    prompts: Sequence[Sequence[int]],
    pad_id: int,
    batch_size: int,
    max_new_tokens: int,
    finished: Callable[[list[int]], bool],
) -> Iterator[tuple[int, list[int]]]:
    """Yield ``(index into prompts, new token ids)`` as each row ends: ``finished(row_ids)`` (its end-of-turn id or
    a stop string) or ``max_new_tokens``. Prompts join in the given order, at most ``batch_size`` at a time."""
    import torch

    if max_new_tokens <= 0:
        yield from ((i, []) for i in range(len(prompts)))
        return
    waiting = deque(range(len(prompts)))
    answers: dict[int, list[int]] = {}
    batch: _Batch | None = None
    with torch.inference_mode():
        while waiting or batch is not None:
            free = batch_size - (batch.rows if batch is not None else 0)
            if waiting and free > 0:
                joining = [waiting.popleft() for _ in range(min(free, len(waiting)))]
                new = _Batch.prefill(model, [prompts[i] for i in joining], joining, pad_id)
                batch = new if batch is None else batch.join(new)
            tokens = batch.logits.float().argmax(-1)
            keep = []
            for k, token in enumerate(tokens.tolist()):
                row = answers.setdefault(batch.active[k], [])
                row.append(token)
                if finished(row) or len(row) >= max_new_tokens:
                    yield batch.active[k], answers.pop(batch.active[k])
                else:
                    keep.append(k)
            if not keep:
                batch = None
                continue
            batch.keep(keep, tokens)
            batch.step(model)


class _Batch:
    """The rows being generated: their KV cache, attention mask, last positions and next-token logits."""

    def __init__(self, model, cache, mask, last, logits, active: list[int]):
        self.cache, self.mask, self.last, self.logits, self.active = cache, mask, last, logits, active
        self.cache_kw = _forward_kwargs(model, cache)
        self.tokens = None

    @property
    def rows(self) -> int:
        return len(self.active)

    @classmethod
    def prefill(cls, model, prompts: Sequence[Sequence[int]], active: list[int], pad_id: int) -> "_Batch":
        """Run the prompts (left-padded among themselves) through the model once."""
        from ftbench.inference.kv_cache import GrowingCache

        ids, mask = left_padded(prompts, pad_id, next(model.parameters()).device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = GrowingCache()
        logits = model(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **_forward_kwargs(model, cache)
        ).logits[:, -1, :]
        return cls(model, cache, mask, positions[:, -1], logits, list(active))

    def join(self, other: "_Batch") -> "_Batch":
        """This batch with ``other``'s rows appended: the shorter cache and mask are left-padded (masked out)."""
        import torch

        width = max(self.mask.shape[1], other.mask.shape[1])
        self.cache.join(other.cache)
        self.mask = torch.cat([_left_pad(self.mask, width, 1), _left_pad(other.mask, width, 1)])
        self.last = torch.cat([self.last, other.last])
        self.logits = torch.cat([self.logits, other.logits])
        self.active += other.active
        return self

    def keep(self, rows: list[int], tokens) -> None:
        """Keep only ``rows`` (with their newest ``tokens``); drop the columns no remaining row uses."""
        import torch

        if len(rows) < self.rows:
            index = torch.tensor(rows, device=self.mask.device)
            self.cache.batch_select_indices(index)
            tokens, self.mask, self.last = tokens[index], self.mask[index], self.last[index]
            self.active = [self.active[k] for k in rows]
            unused = int(self.mask.any(0).int().argmax())  # leading columns that are padding in every row
            if unused:
                self.mask = self.mask[:, unused:]
                self.cache.trim_left(unused)
        self.tokens = tokens

    def step(self, model) -> None:
        """Feed every row its newest token: the next logits, one more cache column."""
        import torch

        self.mask = torch.cat([self.mask, self.mask.new_ones((self.rows, 1))], dim=1)
        self.last = self.last + 1
        self.logits = model(
            input_ids=self.tokens[:, None],
            attention_mask=self.mask,
            position_ids=self.last[:, None],
            use_cache=True,
            **self.cache_kw,
        ).logits[:, -1, :]


def left_padded(prompts: Sequence[Sequence[int]], pad_id: int, device):
    """(ids, attention mask) of the prompts left-padded to one width: every prompt ends at the last column, so
    the next token of every row is predicted from the same column."""
    import torch

    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        if prompt:
            ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            mask[row, width - len(prompt) :] = 1
    return ids.to(device), mask.to(device)


def _left_pad(tensor, width: int, dim: int):
    """``tensor`` zero-padded on the left along ``dim`` to ``width``."""
    import torch

    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


def _forward_kwargs(model, cache) -> dict:
    """The cache under the name this transformers' forward takes (`cache`, `past_key_values` before), and
    `logits_to_keep=1` where accepted: only the last position's logits are needed (as in `generate`), which
    spares the output layer over the whole prompt at prefill."""
    import inspect

    base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    accepted = inspect.signature(base.forward).parameters
    return {
        "cache" if "cache" in accepted else "past_key_values": cache,
        **({"logits_to_keep": 1} if "logits_to_keep" in accepted else {}),
    }

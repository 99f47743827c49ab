"""Greedy decoding with continuous batching: a finished row leaves the batch and the next prompt takes its slot.

`model.generate` keeps every row of a batch until the last one ends: in a batch of GSM8K solutions where most
answers take 80 tokens and one runs to 256, the finished rows are computed (and thrown away) for 176 more steps,
and the next batch waits for the slowest row of this one. Here a row that has ended is dropped from the batch and
from the KV cache at once, and the next prompt is prefilled and joins the running batch (its cache left-padded to
the batch's width, the padding masked out), so every step computes up to ``batch_size`` rows that are still
generating. The arithmetic per row is `generate`'s: the same forward pass, positions from the attention mask, the
argmax of the last logits; `tests/test_predict.py` checks the text equals `generate`'s at batch 1. The cache
grows in place rather than by `torch.cat` at every step (`kv_cache.GrowingCache`); as in `generate`, the prefill
computes the output layer for the last position only. A step with room under `DRAFT_FILL` fed tokens also feeds
each row a few draft tokens looked up in its own text or the other rows' answers (`prompt_lookup`) and keeps
those the argmax confirms; refused drafts' cache columns are masked, then squeezed out (`tests/test_speculative.py`:
the same tokens in fewer passes).

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


DRAFT_TOKENS = 3  # at most this many prompt-lookup drafts verified per row and step (0: one token per step)
# Drafts only fill a step up to this many fed tokens. At 16 fed tokens fp32 matrix products run far below a
# CPU's peak, so a few more cost little; past ~32 they cost almost in proportion. A draft returns 0.47 tokens on
# GSM8K answers: 32 fed tokens cost 1.16x the time of 16 on a 2-core Xeon (16 rows with one draft each: 15%
# faster over 48 answers), 1.4x on a 2-core EPYC (break-even); 64 cost 1.7-2.1x (docs/performance.md, "Third pass")
DRAFT_FILL = 32


def greedy_decode(
    model,
    prompts: Sequence[Sequence[int]],
    pad_id: int,
    batch_size: int,
    max_new_tokens: int | Sequence[int],
    finished: Callable[[list[int]], bool] | Sequence[Callable[[list[int]], bool]],
    draft_tokens: int = DRAFT_TOKENS,
    logprobs: dict[int, list[float]] | None = None,
) -> Iterator[tuple[int, list[int]]]:
    """Yield ``(index into prompts, new token ids)`` as each row ends: ``finished(row_ids)`` (its end-of-turn id or
    a stop string) or ``max_new_tokens``, each either one for all prompts or one per prompt (prompts of eval sets
    with different lengths and stop strings share one batch). Prompts join in the given order, at most
    ``batch_size`` at a time. Each step feeds every row its newest token and up to ``draft_tokens`` guesses looked
    up in its own text or the answers so far (`prompt_lookup`), and keeps the guesses the argmax confirms: the
    tokens are greedy decoding's. With a ``logprobs`` dict, each row's tokens' log-probabilities (the log-softmax
    of the logits that chose them) are put there under its index before the row is yielded."""
    import torch

    from ftbench.inference.kv_cache import SharedPrefix, shared_prefix_length
    from ftbench.inference.prompt_lookup import Lookup, SharedAnswers

    limits = [max_new_tokens] * len(prompts) if isinstance(max_new_tokens, int) else list(max_new_tokens)
    ends = [finished] * len(prompts) if callable(finished) else list(finished)
    yield from ((i, []) for i in range(len(prompts)) if limits[i] <= 0)
    waiting = deque(i for i in range(len(prompts)) if limits[i] > 0)
    answers: dict[int, list[int]] = {}
    lookups: dict[int, Lookup] = {}
    answered = SharedAnswers()  # every row's answer so far, where the others look up drafts too
    batch: _Batch | None = None
    with torch.inference_mode():
        shared = shared_prefix_length([prompts[i] for i in waiting])
        prefix = SharedPrefix(model, prompts[waiting[0]][:shared]) if shared else None
        while waiting or batch is not None:
            free = batch_size - (batch.rows if batch is not None else 0)
            if waiting and free > 0:
                joining = [waiting.popleft() for _ in range(min(free, len(waiting)))]
                lookups.update((i, Lookup(list(prompts[i]), answered)) for i in joining)
                for group in _similar_lengths(joining, [len(prompts[i]) - shared for i in joining]):
                    new = _Batch.prefill(model, [prompts[i] for i in group], group, pad_id, prefix)
                    batch = new if batch is None else batch.join(new)
            keep, accepted = [], []
            logits = batch.logits.float()
            chosen = logits.argmax(-1)
            if logprobs is not None:  # of each fed position's argmax: [rows, fed]
                chosen_logprobs = (logits.gather(-1, chosen[..., None])[..., 0] - logits.logsumexp(-1)).tolist()
            for k, predicted in enumerate(chosen.tolist()):
                i, drafts = batch.active[k], batch.drafts[k]
                confirmed = 0  # drafts equal to the argmax before them: what one token per step would give
                while confirmed < len(drafts) and drafts[confirmed] == predicted[confirmed]:
                    confirmed += 1
                row = answers.setdefault(i, [])
                for position, token in enumerate(predicted[: confirmed + 1]):
                    row.append(token)
                    if logprobs is not None:
                        logprobs.setdefault(i, []).append(chosen_logprobs[k][position])
                    if ends[i](row) or len(row) >= limits[i]:
                        break
                else:
                    keep.append(k)
                    accepted.append(confirmed)
                    lookups[i].extend(predicted[: confirmed + 1])
                    continue
                lookups.pop(i)
                yield i, answers.pop(i)
            if not keep:
                batch = None
                continue
            batch.keep(keep, accepted, [answers[batch.active[k]][-1] for k in keep])
            per_row = min(draft_tokens, DRAFT_FILL // batch.rows - 1)
            budget = [min(per_row, limits[i] - len(answers[i]) - 1) for i in batch.active]
            batch.step(model, [lookups[i].draft(b) for i, b in zip(batch.active, budget)])


PADDING_SHARE = 0.25  # a prefill's padding may add at most this share to the tokens it computes


def _similar_lengths(joining: list[int], lengths: list[int]) -> list[list[int]]:
    """The prompts joining a batch in groups of similar length (longest first), each prefilled on its own: one
    left-padded prefill of a 400-token GSM8K prompt with 40 short ones would compute 10x their tokens."""
    ranked = sorted(zip(joining, lengths), key=lambda pair: -pair[1])
    groups: list[list[int]] = []
    width = real = 0
    for index, length in ranked:
        if groups and (len(groups[-1]) + 1) * width <= (1 + PADDING_SHARE) * (real + length):
            groups[-1].append(index)
            real += length
        else:
            groups.append([index])
            width = real = length
    return groups


class _Batch:
    """The rows being generated: their KV cache, attention mask, last cached positions, the drafts fed in the last
    step and the logits at every position fed (``[rows, fed, vocab]``)."""

    def __init__(self, model, cache, mask, last, logits, active: list[int]):
        self.cache, self.mask, self.last, self.logits, self.active = cache, mask, last, logits, active
        from ftbench.inference.kv_cache import forward_kwargs
        from ftbench.inference.plain_decoder import plain_forward

        self.cache_kw = forward_kwargs(model, cache)
        self.forward = plain_forward(model)  # the same logits without transformers' per-call machinery, or None
        self.drafts: list[list[int]] = [[] for _ in active]
        self.stepped = [False] * len(active)  # whether the last step fed the row (not if it joined since)
        self.fed = 0  # columns the last step added
        self.tokens = None

    @property
    def rows(self) -> int:
        return len(self.active)

    @classmethod
    def prefill(cls, model, prompts: Sequence[Sequence[int]], active: list[int], pad_id: int, prefix=None) -> "_Batch":
        """Run the prompts (left-padded among themselves) through the model once; with a `kv_cache.SharedPrefix`
        they all begin with, only what follows it: each row's cache is then the prefix, padding (masked out),
        its own tokens."""
        import torch

        from ftbench.inference.kv_cache import GrowingCache, forward_kwargs

        shared = prefix.length if prefix is not None else 0
        ids, mask = left_padded([p[shared:] for p in prompts], pad_id, next(model.parameters()).device)
        cache = prefix.cache(len(prompts)) if prefix is not None else GrowingCache()
        mask = torch.cat([mask.new_ones((len(prompts), shared)), mask], dim=1)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions[:, shared:],
            use_cache=True,
            **forward_kwargs(model, cache, 1),
        ).logits[:, -1:, :]
        return cls(model, cache, mask, positions[:, -1], logits, list(active))

    def join(self, other: "_Batch") -> "_Batch":
        """This batch with ``other``'s rows appended: the shorter cache and mask are left-padded (masked out)."""
        import torch

        width = max(self.mask.shape[1], other.mask.shape[1])
        self.cache.join(other.cache)
        self.mask = torch.cat([_zero_padded(m, width, 1, left=True) for m in (self.mask, other.mask)])
        self.last = torch.cat([self.last, other.last])
        fed = max(self.logits.shape[1], other.logits.shape[1])
        self.logits = torch.cat([_zero_padded(x, fed, 1, left=False) for x in (self.logits, other.logits)])
        self.drafts += other.drafts
        self.stepped += other.stepped
        self.active += other.active
        return self

    def keep(self, rows: list[int], accepted: list[int], tokens: list[int]) -> None:
        """Keep only ``rows``, each with its ``accepted`` drafts (the rest of the last step's columns masked out
        for good) and its newest token; drop the columns no remaining row uses. The last rows kept take the
        places of rows that ended (`_places`), so only they are copied."""
        import torch

        advance = [0] * self.rows
        for row, confirmed in zip(rows, accepted):
            if self.stepped[row]:
                advance[row] = 1 + confirmed
                refused = self.mask.shape[1] - self.fed + advance[row]
                self.mask[row, refused : refused + len(self.drafts[row]) - confirmed] = 0
        self.last = self.last + torch.tensor(advance, device=self.last.device)
        newest = dict(zip(rows, tokens))
        if len(rows) < self.rows:
            rows = _places(rows)
            index = torch.tensor(rows, device=self.mask.device)
            self.cache.batch_select_indices(index)
            self.mask, self.last = self.mask[index], self.last[index]
            self.active = [self.active[k] for k in rows]
            unused = int(self.mask.any(0).int().argmax())  # leading columns that are padding in every row
            if unused:
                self.mask = self.mask[:, unused:]
                self.cache.trim_left(unused)
        self.tokens = [newest[k] for k in rows]
        self._compact()

    def _compact(self) -> None:
        """Squeeze out the columns of refused drafts once they are a quarter of the cache: each row's kept
        columns move right, in order (attention reads every column, masked or not)."""
        import torch

        width = self.mask.shape[1]
        used = self.mask.sum(1)
        if width < 64 or int(used.max()) * 4 > width * 3:
            return
        order = torch.argsort(self.mask, dim=1, stable=True)  # masked columns first, then kept ones in order
        new_width = int(used.max())
        index = order[:, width - new_width :]
        self.mask = self.mask.gather(1, index)
        self.cache.gather_columns(index)

    def step(self, model, drafts: list[list[int]]) -> None:
        """Feed every row its newest token and its drafts: the logits at each, as many more cache columns."""
        import torch

        fed = 1 + max(map(len, drafts))
        ids = torch.zeros((self.rows, fed), dtype=torch.long)
        new_mask = torch.zeros((self.rows, fed), dtype=self.mask.dtype)
        for k, (token, guess) in enumerate(zip(self.tokens, drafts)):
            ids[k, : 1 + len(guess)] = torch.tensor([token, *guess])
            new_mask[k, : 1 + len(guess)] = 1
        device = self.mask.device
        self.mask = torch.cat([self.mask, new_mask.to(device)], dim=1)
        positions = self.last[:, None] + torch.arange(1, fed + 1, device=device)
        self.drafts, self.fed, self.stepped = drafts, fed, [True] * self.rows
        if self.forward is not None:
            self.logits = self.forward(ids.to(device), self.mask, positions, self.cache, fed)
            return
        self.logits = model(
            input_ids=ids.to(device), attention_mask=self.mask, position_ids=positions, use_cache=True, **self.cache_kw
        ).logits[:, -fed:, :]


def _places(kept: list[int]) -> list[int]:
    """The kept rows (ascending) in their new order: each stays where it is if that place still exists, and the
    ones beyond fill, from the last, the places of rows that ended: ``[0, 2, 3, 5]`` -> ``[0, 5, 2, 3]``."""
    count, staying = len(kept), set(kept)
    movers = [k for k in kept if k >= count]
    return [k if k in staying else movers.pop() for k in range(count)]


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


def _zero_padded(tensor, width: int, dim: int, *, left: bool):
    """``tensor`` zero-padded along ``dim`` to ``width``, on the left (masks: rows stay right-aligned) or the
    right (logits: a joining row fed one token, its extra positions never read since it has no drafts)."""
    import torch

    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    zeros = tensor.new_zeros(shape)
    return torch.cat([zeros, tensor] if left else [tensor, zeros], dim=dim)

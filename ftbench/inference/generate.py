"""Batched generation that gives the same text at batch 16 as at batch 1.

- Greedy by default. The generation config is built here from explicit values; nothing is inherited from the
  model's `generation_config.json` (a base model's `repetition_penalty: 1.05` or `temperature: 0.7` would make
  results depend on which checkpoint was loaded). Sampling is opt-in with a temperature / top-p and a seed.
- Left padding with an attention mask; transformers derives position ids from the mask, so a padded sequence
  sees the same positions as when alone.
- Prompts are grouped by length inside a window of consecutive inputs, so batches hold similar lengths (little
  padding) while finished rows can still be written in input order soon after (see `windows`).
- Each sequence stops at any end-of-turn id (tokenizer eos, `<|im_end|>`, the model's eos ids) or at a stop
  string, whose text is cut off.

torch/transformers are imported inside functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping, Sequence

from ftbench.api.errors import UsageError
from ftbench.inference.greedy import attention_only, greedy_decode, is_plain_greedy, left_padded

END_OF_TURN_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>")
# model generation_config fields that change greedy or sampled output; reported when the model sets them and
# ftbench does not use them
_SAMPLING_FIELDS = (
    "do_sample",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "typical_p",
    "repetition_penalty",
    "no_repeat_ngram_size",
    "length_penalty",
    "num_beams",
)


@dataclass(frozen=True)
class GenerationParams:
    """What to generate: greedy unless a temperature (> 0) or top-p (< 1) is given."""

    max_new_tokens: int = 512
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int = 0
    stop: tuple[str, ...] = ()

    @property
    def do_sample(self) -> bool:
        return bool(
            (self.temperature is not None and self.temperature > 0) or (self.top_p is not None and self.top_p < 1.0)
        )


@dataclass
class EffectiveConfig:
    """The generation settings actually used, for the output metadata (so two runs can be compared)."""

    values: dict
    ignored_model_defaults: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**self.values, "ignored_model_defaults": self.ignored_model_defaults}


def end_of_turn_ids(tokenizer, model=None) -> list[int]:
    """Every id that ends an answer: the tokenizer's eos, known end-of-turn tokens present in the vocabulary, and
    the model's generation_config eos ids (Qwen2.5-Instruct lists both <|im_end|> and <|endoftext|>)."""
    ids: list[int] = []
    if getattr(tokenizer, "eos_token_id", None) is not None:
        ids.append(tokenizer.eos_token_id)
    vocab = tokenizer.get_vocab()
    ids.extend(vocab[t] for t in END_OF_TURN_TOKENS if t in vocab)
    gen = getattr(_base_model(model), "generation_config", None) if model is not None else None
    eos = getattr(gen, "eos_token_id", None)
    ids.extend(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
    return sorted(set(ids))


def _base_model(model):
    """The transformers model under a peft wrapper (generate() and generation_config live there)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def windows(
    order: Sequence[int], lengths: Mapping[int, int] | Sequence[int], batch_size: int, window: int
) -> Iterator[list[list[int]]]:
    """Split ``order`` (input indices, in input order) into windows of ``window`` consecutive indices; inside each,
    sort by prompt length (longest first, so an out-of-memory error shows up at once) and cut into batches.

    Sorting the whole input would minimise padding, but the first input could then finish last and nothing could be
    written in order until the very end; a window bounds both the padding and the work a crash can lose.
    """
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: (-lengths[i], i))
        yield [chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size)]


class _StopStrings:
    """A stopping criterion: a row is done once the text of its newest tokens contains a stop string."""

    def __init__(self, tokenizer, stops: tuple[str, ...], prompt_len: int):
        self.tokenizer, self.stops, self.prompt_len = tokenizer, stops, prompt_len
        # a token is at least one byte, so a stop string of n bytes lies within its last n + 1 tokens (plus one
        # token of slack for a partial UTF-8 character at the start)
        self.tail = max(len(s.encode("utf-8")) for s in stops) + 2

    def has_stop(self, new_ids: list[int]) -> bool:
        """Whether the text of a row's newest tokens contains a stop string."""
        text = self.tokenizer.decode(new_ids[-self.tail :], skip_special_tokens=True)
        return any(s in text for s in self.stops)

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        done = [self.has_stop(row) for row in input_ids[:, self.prompt_len :].tolist()]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class Generator:
    """Generates answers for tokenized prompts in batches; see the module docstring for the guarantees."""

    def __init__(self, model, tokenizer, params: GenerationParams, stop_ids: list[int] | None = None, config=None):
        """``stop_ids``: the ids that end an answer, when a named template says which (default: every
        end-of-turn id the tokenizer and model know, `end_of_turn_ids`). ``config``: a complete GenerationConfig
        to decode with instead of ftbench's explicit one (lm-eval's convention inherits the model's
        generation_config.json); then its eos ids end an answer and its max_new_tokens rules."""
        self.model, self.tokenizer, self.params = model, tokenizer, params
        if config is not None:
            eos = config.eos_token_id
            self.eos_ids = list(eos) if isinstance(eos, (list, tuple)) else [eos] if eos is not None else []
        else:
            self.eos_ids = list(stop_ids) if stop_ids else end_of_turn_ids(tokenizer, model)
        self._eos_set = set(self.eos_ids)
        self._stops = _StopStrings(tokenizer, params.stop, 0) if params.stop else None
        pad = config.pad_token_id if config is not None else tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.eos_ids[0]
        self.config = config if config is not None else self._generation_config()
        # plain greedy decoding runs through greedy.greedy_decode (finished rows leave, the next prompts join)
        self.decodes_greedily = is_plain_greedy(self.config) and attention_only(model)
        self.completion_tokens = 0  # new tokens kept, counting the end-of-turn token as servers do

    def _generation_config(self):
        """A complete GenerationConfig: every field that shapes the output is set, so `generate()` fills nothing in
        from the model's own generation config."""
        from transformers import GenerationConfig

        p = self.params
        values = dict(GenerationConfig._get_default_generation_params())  # transformers' neutral defaults
        values.update(
            max_new_tokens=p.max_new_tokens,
            do_sample=p.do_sample,
            num_beams=1,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id,
            bos_token_id=None,
            return_dict_in_generate=False,
            output_scores=False,
            use_cache=True,
        )
        values.pop("max_length", None)  # max_new_tokens rules
        # sampling knobs stay unset when greedy (transformers warns about them otherwise); the model's own values
        # cannot leak in because generate_batch swaps the model's generation_config for this one
        values.update(temperature=None, top_p=None, top_k=None)
        if p.do_sample:
            values.update(
                temperature=p.temperature if p.temperature is not None else 1.0,
                top_p=p.top_p if p.top_p is not None else 1.0,
                top_k=p.top_k or 0,
            )
        return GenerationConfig(**values)

    def effective_config(self) -> EffectiveConfig:
        """What is used (greedy or sampling, limits, stop ids/strings) and what the model's config asked for that
        was ignored."""
        p = self.params
        values = {
            "do_sample": p.do_sample,
            "max_new_tokens": p.max_new_tokens,
            "eos_token_id": self.eos_ids,
            "pad_token_id": self.pad_id,
            "stop": list(p.stop),
            "repetition_penalty": 1.0,
            "num_beams": 1,
        }
        if p.do_sample:
            values.update(
                temperature=self.config.temperature, top_p=self.config.top_p, top_k=self.config.top_k, seed=p.seed
            )
        model_gen = getattr(_base_model(self.model), "generation_config", None)
        used = {**self.config.to_dict(), **values}
        # under greedy decoding temperature/top-p/top-k do nothing, so only the knobs that would change it count
        relevant = (
            _SAMPLING_FIELDS
            if p.do_sample
            else ("do_sample", "repetition_penalty", "no_repeat_ngram_size", "num_beams", "length_penalty")
        )
        ignored = {}
        for name in relevant:
            value = getattr(model_gen, name, None) if model_gen is not None else None
            if value is not None and value != used.get(name):
                ignored[name] = value
        return EffectiveConfig(values, ignored)

    def generate_batch(self, prompts: Sequence[Sequence[int]]) -> list[str]:
        """The answers to one batch of tokenized prompts, in the same order."""
        import torch
        from transformers import StoppingCriteriaList

        if self.decodes_greedily:
            rows = dict(
                greedy_decode(  # no drafts: a fixed batch (lm-eval's) keeps one token per step, as generate()
                    self.model, prompts, self.pad_id, len(prompts), self.config.max_new_tokens, self.ended, 0
                )
            )
            return [self.answer(rows[k]) for k in range(len(prompts))]
        ids, mask = left_padded(prompts, self.pad_id, next(self.model.parameters()).device)
        width = ids.shape[1]
        stopping = (
            StoppingCriteriaList([_StopStrings(self.tokenizer, self.params.stop, width)]) if self.params.stop else None
        )
        base = _base_model(self.model)
        saved, base.generation_config = base.generation_config, self.config  # belt and braces: nothing to inherit
        try:
            with torch.inference_mode():
                out = self.model.generate(
                    input_ids=ids, attention_mask=mask, generation_config=self.config, stopping_criteria=stopping
                )
        finally:
            base.generation_config = saved
        return [self.answer(row) for row in out[:, width:].tolist()]

    def ended(self, new_ids: list[int]) -> bool:
        """Whether a row has ended: an end-of-turn id, or a stop string in its newest tokens' text."""
        if new_ids[-1] in self._eos_set:
            return True
        return self._stops is not None and self._stops.has_stop(new_ids)

    def _end(self, new_ids: list[int]) -> int:
        """Where a row's answer ends: its first end-of-turn id, else its length."""
        return next((i for i, t in enumerate(new_ids) if t in self._eos_set), len(new_ids))

    def answer(self, new_ids: list[int]) -> str:
        """Decoded new tokens up to the first end-of-turn id, cut at the first stop string."""
        end = self._end(new_ids)
        self.completion_tokens += min(end + 1, len(new_ids))
        text = self.tokenizer.decode(new_ids[:end], skip_special_tokens=True)
        cuts = [text.find(s) for s in self.params.stop if s in text]
        return text[: min(cuts)] if cuts else text

    def answer_nll(self, new_ids: list[int], logprobs: list[float], text: str) -> tuple[float, int] | None:
        """(summed negative log-likelihood in nats, token count) of an answer's tokens, from the log-probabilities
        they were chosen with: what `likelihood.answer_nll` computes for ``text`` after its prompt (up to float
        rounding), when the tokens before the end-of-turn id are exactly what ``text`` tokenizes to on its own
        (no stop string cut it, the tokenizer would not split it otherwise); else None."""
        end = self._end(new_ids)
        if self.tokenizer(text, add_special_tokens=False)["input_ids"] != new_ids[:end]:
            return None
        return -math.fsum(logprobs[:end]), end

    def run(
        self,
        prompts: Sequence[Sequence[int]],
        batch_size: int,
        order: Iterable[int] | None = None,
        window: int | None = None,
        keep_batches: bool = False,
    ) -> Iterator[list[tuple[int, str]]]:
        """Generate for the prompts at ``order`` (default: all), yielding lists of (index, answer) as they end.

        Prompts are taken window by window (``window`` consecutive indices, default 8 batches), longest first
        inside a window; callers that write in input order buffer the few results that arrive early. Plain greedy
        decoding batches continuously (a finished row's slot takes the next prompt, `greedy.greedy_decode`) unless
        ``keep_batches``, which decodes fixed batches of ``batch_size`` (lm-eval's batches, for its exact numerics).
        """
        import torch

        order = list(range(len(prompts))) if order is None else list(order)
        window = window or batch_size * 8
        if self.params.do_sample:
            torch.manual_seed(self.params.seed)
        lengths = {i: len(prompts[i]) for i in order}
        if self.decodes_greedily and not keep_batches:
            queue = [i for batches in windows(order, lengths, batch_size, window) for batch in batches for i in batch]
            for k, text, _ in decode_continuously([(self, prompts[i]) for i in queue], batch_size):
                yield [(queue[k], text)]
            return
        for batches in windows(order, lengths, batch_size, window):
            for batch in batches:
                yield list(zip(batch, self._generate_fitting([prompts[i] for i in batch])))

    def _generate_fitting(self, prompts: Sequence[Sequence[int]]) -> list[str]:
        """`generate_batch`, halving the batch when the accelerator runs out of memory (the answers do not depend on
        how a window is split into batches, so this only costs time)."""
        import torch

        try:
            return self.generate_batch(prompts)
        except torch.OutOfMemoryError:
            _ready_to_halve(len(prompts), max(map(len, prompts)))
            half = len(prompts) // 2
            return self._generate_fitting(prompts[:half]) + self._generate_fitting(prompts[half:])


def decode_continuously(
    queue: Sequence[tuple[Generator, Sequence[int]]],
    batch_size: int,
    score: bool | Sequence[bool] = False,
) -> Iterator[tuple[int, str, tuple[float, int] | None]]:
    """(position in ``queue``, answer, its NLL) as each row ends, for prompts decoded greedily in one continuous
    batch (`greedy.greedy_decode`), each with its own `Generator` of the same model: its length, end-of-turn ids
    and stop strings (the eval sets of a run, one batch). The NLL (`Generator.answer_nll`) only with ``score``
    (for all prompts, or one flag per prompt), else None. When the accelerator runs out of memory, the unfinished
    prompts start again at half the batch size (an answer does not depend on its batch, so this only costs time)."""
    import torch

    generators = [g for g, _ in queue]
    model, pad_id = generators[0].model, generators[0].pad_id
    if any(g.model is not model or g.pad_id != pad_id or not g.decodes_greedily for g in generators):
        raise ValueError("decode_continuously: every prompt's Generator must decode the same model greedily")
    scored = [score] * len(queue) if isinstance(score, bool) else list(score)
    done: set[int] = set()
    logprobs: dict[int, list[float]] | None = {} if any(scored) else None
    try:
        for k, row in greedy_decode(
            model,
            [ids for _, ids in queue],
            pad_id,
            batch_size,
            [g.config.max_new_tokens for g in generators],
            [g.ended for g in generators],
            logprobs=logprobs,
        ):
            done.add(k)
            text = generators[k].answer(row)
            chosen = logprobs.pop(k, []) if logprobs is not None else []
            nll = generators[k].answer_nll(row, chosen, text) if scored[k] else None
            yield k, text, nll
    except torch.OutOfMemoryError:
        left = [k for k in range(len(queue)) if k not in done]
        _ready_to_halve(batch_size, max(len(queue[k][1]) for k in left))
        for j, text, nll in decode_continuously([queue[k] for k in left], batch_size // 2, [scored[k] for k in left]):
            yield left[j], text, nll


def _ready_to_halve(rows: int, longest: int) -> None:
    """After the accelerator ran out of memory on ``rows`` rows: at one row, a usage error saying what to lower;
    otherwise the cache is released for a retry at half the rows."""
    import torch

    if rows == 1:
        raise UsageError(
            f"out of accelerator memory on a single prompt of up to {longest} tokens: lower --max-new-tokens, "
            "pass --cutoff-len, or use a smaller --dtype"
        ) from None
    if torch.cuda.is_available():
        torch.cuda.empty_cache()

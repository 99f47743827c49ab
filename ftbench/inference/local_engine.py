"""`--engine local`: generation in this process with `ftbench.inference.generate.Generator` (batched, greedy by
default, the same text at batch 16 as at batch 1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

from ftbench.api.generation import EngineOptions, GenerationEngine, Prompt, PromptSet


@dataclass(frozen=True)
class LocalOptions(EngineOptions):
    """Where and how the model runs here (None: the best available device, its dtype, torch's thread count)."""

    device: str | None = None
    dtype: str | None = None
    threads: int | None = None


class LocalEngine(GenerationEngine):
    """The model (+ LoRA adapter) loaded here, on the best available device."""

    name = "local"
    description = "in-process batched generation (transformers + peft)"
    options_type = LocalOptions

    def __init__(
        self, model: str, adapter: str | None, options: LocalOptions, *, template=None, loaded: tuple | None = None
    ):
        super().__init__(model, adapter, options, template=template, loaded=loaded)
        from ftbench.inference.models import load_model_for_generation, load_tokenizer

        if options.threads:
            import torch

            torch.set_num_threads(options.threads)
        if loaded is None:
            self.tokenizer = load_tokenizer(model)
            self.model = load_model_for_generation(model, adapter=adapter, device=options.device, dtype=options.dtype)
        else:
            self.model, self.tokenizer = loaded
        self._generators: dict = {}  # params -> Generator (one per generation length in train-and-compare)

    @classmethod
    def for_checkpoint(cls, model, adapter, options, *, scratch_dir, template=None, device=None):
        """The checkpoint merged into a fresh copy of the base weights: generation then costs what the base
        model's does (no LoRA layers at every step)."""
        from ftbench.inference.models import load_model_for_generation, load_tokenizer

        loaded = (
            load_model_for_generation(
                model, adapter=adapter, device=device or options.device, dtype=options.dtype, merge=True
            ),
            load_tokenizer(model),
        )
        return cls(model, None, options, template=template, loaded=loaded)

    @classmethod
    def for_evaluation(cls, model, adapter, options, *, template=None):
        """Loaded as lm-eval's HF model loads it: the pad token its `configure_pad_token` picks (the tokenizer's,
        else unk, else eos), embeddings resized to the tokenizer before the adapter is applied, unmerged."""
        from ftbench.inference.models import apply_adapter, load_model_for_generation, load_tokenizer

        tokenizer = load_tokenizer(model)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token_id = (
                tokenizer.unk_token_id if tokenizer.unk_token_id is not None else tokenizer.eos_token_id
            )
        lm = load_model_for_generation(model, device=options.device, dtype=options.dtype)
        if adapter:
            if lm.config.get_text_config().vocab_size != len(tokenizer):
                lm.resize_token_embeddings(len(tokenizer))
            lm = apply_adapter(lm, adapter)
            lm.eval()
        return cls(model, None, options, template=template, loaded=(lm, tokenizer))

    def _generator(self, params):
        from ftbench.inference.generate import Generator

        if params not in self._generators:
            stop_ids = self.template.stop_ids(self.tokenizer) if self.template is not None else None
            self._generators[params] = Generator(self.model, self.tokenizer, params, stop_ids=stop_ids)
        return self._generators[params]

    def generate(
        self, prompts: Mapping[int, Prompt], order: Sequence[int], batch_size: int, params
    ) -> Iterator[list[tuple[int, str]]]:
        for _, results in self.generate_sets([PromptSet(prompts, order, params)], batch_size):
            yield results

    def generate_sets(self, sets, batch_size):
        """Sets decoded by plain greedy decoding share one continuous batch (`generate.decode_continuously`), the
        sets with the longest answers first: their long rows start at once, the short sets' rows fill the
        slots around them, and no set's tail runs a nearly empty batch alone. An answer does not depend on its
        batch, so each is what the set alone gives. A set's ``scores`` are filled from the log-probabilities its
        tokens were chosen with. Other settings (sampling) go set by set through `Generator.run`."""
        generators = [self._generator(s.params) for s in sets]
        distinct = list({id(g): g for g in generators}.values())
        counted = sum(g.completion_tokens for g in distinct)
        for number, results in self._decoded(sets, generators, batch_size):
            now = sum(g.completion_tokens for g in distinct)
            self.usage["prompt_tokens"] += sum(len(sets[number].prompts[i].ids) for i, _ in results)
            self.usage["completion_tokens"] += now - counted
            counted = now
            yield number, results

    def _decoded(self, sets, generators, batch_size) -> Iterator[tuple[int, list[tuple[int, str]]]]:
        """(set number, results) of `generate_sets`, before the tokens are counted."""
        from ftbench.inference.generate import decode_continuously, windows

        if not all(g.decodes_greedily for g in generators):
            for number, (prompt_set, generator) in enumerate(zip(sets, generators)):
                ids = {i: prompt_set.prompts[i].ids for i in prompt_set.order}
                for results in generator.run(ids, batch_size, order=prompt_set.order):
                    yield number, results
            return
        queue: list[tuple[int, int]] = []  # (set number, prompt index)
        for number in sorted(range(len(sets)), key=lambda n: -generators[n].config.max_new_tokens):
            order, prompts = list(sets[number].order), sets[number].prompts
            lengths = {i: len(prompts[i].ids) for i in order}
            for batches in windows(order, lengths, batch_size, batch_size * 8):  # as `Generator.run` orders a set
                queue += [(number, i) for batch in batches for i in batch]
        score = [sets[n].scores is not None for n, _ in queue]  # only the sets that want their likelihoods
        decoded = decode_continuously([(generators[n], sets[n].prompts[i].ids) for n, i in queue], batch_size, score)
        for k, text, nll in decoded:
            number, i = queue[k]
            scores = sets[number].scores
            if nll is not None and scores is not None and self._reads_as_rendered(sets[number].prompts[i]):
                scores[i] = nll
            yield number, [(i, text)]

    def _reads_as_rendered(self, prompt) -> bool:
        """Whether the prompt's text tokenizes on its own to the ids the model read (a scorer given the text
        would then see the same prompt)."""
        return self.tokenizer(prompt.text, add_special_tokens=False)["input_ids"] == list(prompt.ids)

    def in_process_model(self):
        return self.model

    def describe(self, params) -> dict:
        parameter = next(self.model.parameters())
        return {
            "engine": self.name,
            **self._generator(params).effective_config().to_dict(),
            "device": str(parameter.device),
            "dtype": str(parameter.dtype).replace("torch.", ""),
        }

"""`--engine local`: generation in this process with `ftbench.inference.generate.Generator` (batched, greedy by
default, the same text at batch 16 as at batch 1)."""

from __future__ import annotations

from typing import Iterator, Mapping, Sequence

from ftbench.api.generation import EngineOptions, GenerationEngine, Prompt


class LocalEngine(GenerationEngine):
    """The model (+ LoRA adapter) loaded here, on the best available device."""

    name = "local"
    description = "in-process batched generation (transformers + peft)"

    def __init__(self, model: str, adapter: str | None, params, options: EngineOptions, *,
                 loaded: tuple | None = None):
        super().__init__()
        from ftbench.inference.models import load_model_for_generation, load_tokenizer

        if options.threads:
            import torch

            torch.set_num_threads(options.threads)
        if loaded is None:
            self.tokenizer = load_tokenizer(model)
            self.model = load_model_for_generation(model, adapter=adapter, device=options.device,
                                                   dtype=options.dtype)
        else:
            self.model, self.tokenizer = loaded
        self.template = options.template
        self.params, self.generator = params, self._generator(params)

    def _generator(self, params):
        from ftbench.inference.generate import Generator

        stop_ids = self.template.stop_ids(self.tokenizer) if self.template is not None else None
        return Generator(self.model, self.tokenizer, params, stop_ids=stop_ids)

    def generate(self, prompts: Mapping[int, Prompt], order: Sequence[int], batch_size: int
                 ) -> Iterator[list[tuple[int, str]]]:
        ids = {i: prompts[i].ids for i in order}
        before = self.generator.completion_tokens
        for results in self.generator.run(ids, batch_size, order=order):
            self.usage["prompt_tokens"] += sum(len(ids[i]) for i, _ in results)
            self.usage["completion_tokens"] += self.generator.completion_tokens - before
            before = self.generator.completion_tokens
            yield results

    def use_params(self, params) -> None:
        self.params, self.generator = params, self._generator(params)

    def describe(self) -> dict:
        parameter = next(self.model.parameters())
        return {"engine": self.name, **self.generator.effective_config().to_dict(), "device": str(parameter.device),
                "dtype": str(parameter.dtype).replace("torch.", "")}

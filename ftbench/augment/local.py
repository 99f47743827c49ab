"""`--provider local`: the augmentation prompts answered by a local model (and LoRA adapter) through
`ftbench.inference.generate`'s batched generator, prompts rendered with the model's chat template by `ftbench.inference.chat`.

torch/transformers are imported when the model is loaded, never at import time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from ftbench.data.formats import ASSISTANT, USER, Sample


@dataclass(frozen=True)
class LocalSettings:
    """Which model to load and how to generate with it."""

    model: str
    adapter: str | None = None
    max_new_tokens: int = 512
    temperature: float | None = None  # None or 0: greedy
    seed: int = 0
    batch_size: int = 8
    device: str | None = None
    dtype: str | None = None


class LocalModel:
    """A loaded model answering chat prompts in batches: `complete_many(prompts)` -> (index, text, usage)."""

    def __init__(self, settings: LocalSettings):
        from ftbench.inference.generate import GenerationParams, Generator
        from ftbench.inference.models import load_model_for_generation, load_tokenizer

        self.settings = settings
        self.tokenizer = load_tokenizer(settings.model)
        model = load_model_for_generation(settings.model, adapter=settings.adapter, device=settings.device,
                                          dtype=settings.dtype)
        params = GenerationParams(max_new_tokens=settings.max_new_tokens, temperature=settings.temperature or None,
                                  seed=settings.seed)
        self.generator = Generator(model, self.tokenizer, params)

    def _prompt_ids(self, prompt: str) -> list[int]:
        """The prompt as one user turn with the generation prompt, tokenized as `predict` does it."""
        from ftbench.inference.chat import prompt_text_and_ids

        sample = Sample([(USER, prompt), (ASSISTANT, "")], "", "", "<augment prompt>", 0, None)
        return prompt_text_and_ids(self.tokenizer, sample)[1]

    def complete_many(self, prompts: list[str]) -> Iterator[tuple[int, str, dict]]:
        """Answers in batches (not necessarily in order); usage counts prompt and generated tokens."""
        ids = [self._prompt_ids(p) for p in prompts]
        for batch in self.generator.run(ids, self.settings.batch_size):
            for i, text in batch:
                completion = len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0
                yield i, text, {"prompt_tokens": len(ids[i]), "completion_tokens": completion,
                                "total_tokens": len(ids[i]) + completion}

"""`--provider local` and `--provider vllm`: the augmentation prompts answered by a model on this machine through
a generation engine of `ftbench.inference.engines` (`local`: the batched transformers generator; `vllm`: offline
vLLM on GPUs), prompts rendered with the model's chat template by `ftbench.inference.chat`.

torch/transformers (and vllm) are imported when the model is loaded, never at import time.
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
    engine: str = "local"  # or "vllm"


class LocalModel:
    """A loaded model answering chat prompts in batches: `complete_many(prompts)` -> (index, text, usage)."""

    def __init__(self, settings: LocalSettings):
        from ftbench.inference.engines import engine_options
        from ftbench.inference.generate import GenerationParams

        self.settings = settings
        self.params = GenerationParams(
            max_new_tokens=settings.max_new_tokens, temperature=settings.temperature or None, seed=settings.seed
        )
        placement = {k: v for k, v in (("device", settings.device), ("dtype", settings.dtype)) if v is not None}
        cls, options = engine_options(settings.engine, placement)
        self.engine = cls(settings.model, settings.adapter, options)
        self.tokenizer = self.engine.tokenizer

    def complete_many(self, prompts: list[str]) -> Iterator[tuple[int, str, dict]]:
        """Answers in batches (not necessarily in order); usage counts prompt and generated tokens."""
        from ftbench.inference.engines import render_prompts

        samples = [Sample([(USER, p), (ASSISTANT, "")], "", "", "<augment prompt>", 0, None) for p in prompts]
        rendered = render_prompts(self.tokenizer, samples, range(len(samples)))
        for batch in self.engine.generate(rendered, range(len(samples)), self.settings.batch_size, self.params):
            for i, text in batch:
                completion = len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0
                yield (
                    i,
                    text,
                    {
                        "prompt_tokens": len(rendered[i].ids),
                        "completion_tokens": completion,
                        "total_tokens": len(rendered[i].ids) + completion,
                    },
                )

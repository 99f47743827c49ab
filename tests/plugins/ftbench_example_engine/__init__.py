"""An example generation engine plug-in (docs/architecture.md, "Where to add"): installed as a distribution with an
entry point in the `ftbench.engines` group, it is `--engine example` for `ftbench predict`, `eval` and
`train-and-compare`.

It runs no model: every answer is the last words of its prompt, one word per new token allowed, cut at the stop
strings. Deterministic, so a test can say exactly what each command must write.
"""

from __future__ import annotations

from dataclasses import dataclass

from ftbench.api.errors import UsageError
from ftbench.api.generation import EngineOptions, GenerationEngine


@dataclass(frozen=True)
class ExampleOptions(EngineOptions):
    """The example's options: none on the command line (so --base-url and the like are refused), one field here
    to show where an engine's own options and their checks go."""

    words: int | None = None  # at most this many words per answer (None: max_new_tokens)

    def __post_init__(self):
        if self.words is not None and self.words < 1:
            raise UsageError(f"words {self.words}: must be at least 1")


class ExampleEngine(GenerationEngine):
    """Echoes the end of each prompt (an example plug-in)."""

    name = "example"
    description = "echoes the end of each prompt (the example engine plug-in)"
    options_type = ExampleOptions

    def __init__(self, model, adapter, options, *, template=None, loaded=None):
        super().__init__(model, adapter, options, template=template, loaded=loaded)
        from ftbench.inference.models import load_tokenizer

        self.tokenizer = loaded[1] if loaded else load_tokenizer(model)  # it renders the prompts ftbench sends

    def generate(self, prompts, order, batch_size, params):
        for i in order:
            n = min(params.max_new_tokens, self.options.words or params.max_new_tokens)
            answer = " ".join(prompts[i].text.split()[-n:])
            cuts = [answer.find(s) for s in params.stop if s and s in answer]
            self.usage["prompt_tokens"] += len(prompts[i].ids)
            yield [(i, answer[: min(cuts)] if cuts else answer)]

    def describe(self, params):
        return {"engine": self.name, "max_new_tokens": params.max_new_tokens, "stop": list(params.stop)}

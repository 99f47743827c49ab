"""Exact token counts with the user's tokenizer (only when --tokenizer is given: it imports transformers)."""

from __future__ import annotations

from ftbench.api.errors import UsageError
from ftbench.data.formats import Sample


class TokenCounter:
    """Counts the tokens of whole samples as the model sees them: rendered with the tokenizer's chat template
    when it has one, else the turns joined by newlines."""

    def __init__(self, name_or_path: str):
        from ftbench.inference.models import load_tokenizer

        try:
            self.tokenizer = load_tokenizer(name_or_path)
        except Exception as e:  # hub errors, missing files: one line for the user
            raise UsageError(f"cannot load tokenizer {name_or_path!r}: {str(e).splitlines()[0]}") from e
        self.name = name_or_path

    def count(self, samples: list[Sample]) -> list[int]:
        import copy

        from ftbench.data.formats import replace_surrogates
        from ftbench.inference.chat import render_conversation

        texts = [render_conversation(self.tokenizer, replace_surrogates(copy.copy(s))) for s in samples]
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

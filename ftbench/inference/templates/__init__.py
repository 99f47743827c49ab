"""Named chat templates (`template: qwen` in a config, `--template` on the command line), as LLaMA-Factory defines
them. Without a name, prompts are rendered with the tokenizer's own chat template (`ftbench.inference.chat`).

Templates are registered by name: the built-ins of `catalog.py`, and others through the `ftbench.templates`
entry-point group (a `ChatTemplate` object) or `TEMPLATES.register(name, template)`.
"""

from __future__ import annotations

from ftbench.api.registry import Registry
from ftbench.inference.templates.catalog import BUILT_IN
from ftbench.inference.templates.template import BOS, EOS, ChatTemplate, SpecialToken

TEMPLATES: Registry[ChatTemplate] = Registry(
    "template",
    entry_point_group="ftbench.templates",
    builtins=BUILT_IN,
    listing="ftbench templates",
    describe=lambda t: t.description,
)


def get_template(
    name: str | None, default_system: str | None = None, enable_thinking: bool | None = True
) -> ChatTemplate | None:
    """The template called ``name`` with a config's ``default_system``/``enable_thinking`` applied; None for no
    name (the tokenizer's own chat template is used). An unknown name is a UsageError listing the known ones."""
    if not name:
        return None
    template = TEMPLATES.load(name)
    if not isinstance(template, ChatTemplate):
        raise TypeError(f"template {name!r} is a {type(template).__name__}, not a ChatTemplate")
    return template.configured(default_system, enable_thinking)


__all__ = ["BOS", "EOS", "ChatTemplate", "SpecialToken", "TEMPLATES", "get_template"]

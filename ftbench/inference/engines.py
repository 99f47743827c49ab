"""Generation engines by name (`--engine local|openai|vllm`, plug-ins), their options, and the one way every
command renders prompts for them: `render_prompts` gives each engine the same `Prompt`s
(`ftbench.inference.chat`), so a server sees byte for byte the prompt the local engine tokenizes.

Built-ins are imported only when chosen (vLLM only with `--engine vllm`); packages add engines through the
`ftbench.engines` entry-point group.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ftbench.api.errors import UsageError
from ftbench.api.generation import DEFAULT_ENGINE, ForeignOption, GenerationEngine, Prompt, option_flag
from ftbench.api.registry import Registry

ENGINES: Registry[type[GenerationEngine]] = Registry(
    "engine",
    base=GenerationEngine,
    entry_point_group="ftbench.engines",
    builtins={
        "local": "ftbench.inference.local_engine:LocalEngine",
        "openai": "ftbench.inference.openai_engine:OpenAIEngine",
        "vllm": "ftbench.inference.vllm_engine:VllmEngine",
    },
)


def engine_options(name: str | None, given: Mapping[str, Any] | None = None) -> tuple[type[GenerationEngine], Any]:
    """The engine class called ``name`` (default local) and its options made from ``given`` (option name ->
    value, only what the user gave). An option the engine does not take is one line naming the engines that take
    it ("--base-url is for --engine openai"), so a forgotten --engine is caught."""
    name = name or DEFAULT_ENGINE
    cls = ENGINES.load(name)
    try:
        return cls, cls.options_from(dict(given or {}))
    except ForeignOption as e:
        owners = [n for n in ENGINES.names() if n != name and e.option in _option_names(n)]
        if not owners:
            raise
        raise UsageError(f"{option_flag(e.option)} is for --engine {' or '.join(owners)}") from None


def _option_names(name: str) -> frozenset[str]:
    try:
        return ENGINES.load(name).option_names()
    except UsageError:  # a plug-in that does not load owns nothing here
        return frozenset()


def render_prompts(
    tokenizer,
    samples,
    indices: Iterable[int],
    cutoff_len: int | None = None,
    with_messages: bool = False,
    template=None,
    max_prompt_tokens: int | None = None,
    cut: list[int] | None = None,
) -> Mapping[int, Prompt]:
    """index -> Prompt for ``samples[i]``: the text and ids `inference.chat` renders (the same as training's),
    and the messages without the final answer when a chat endpoint needs them.

    A prompt longer than ``max_prompt_tokens`` (default: the model's context, `chat.context_length`) keeps its
    last tokens, as ``cutoff_len`` does, and its index goes to ``cut``: a 200,000-character prompt would
    otherwise ask the model for tens of gigabytes of attention before failing."""
    from ftbench.inference.chat import context_length, prompt_text_and_ids, to_messages

    limit = max_prompt_tokens or context_length(tokenizer)
    prompts = {}
    for i in indices:
        text, ids = prompt_text_and_ids(tokenizer, samples[i], cutoff_len, template)
        if limit and len(ids) > limit:
            text, ids = prompt_text_and_ids(tokenizer, samples[i], limit, template)
            if cut is not None:
                cut.append(i)
        prompts[i] = Prompt(text, ids, to_messages(samples[i])[:-1] if with_messages else None)
    return prompts

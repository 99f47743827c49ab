"""The generation-engine interface: what produces answers for rendered prompts, in this process (`local`), on an
OpenAI-compatible server (`openai`), in offline vLLM (`vllm`), or by an installed plug-in.

Every engine gets the same `Prompt`s, rendered once by `ftbench.inference.chat` with the model's tokenizer (text,
token ids and the messages they came from), and yields (index, answer) pairs; the caller writes them through
`ftbench.data.predictions`, so output is resumable whatever the engine. Engines are chosen by name through
`ftbench.inference.engines.ENGINES` (`ftbench.engines` entry points). Nothing here imports anything heavy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Iterator, Mapping, Sequence

from ftbench.api.errors import UsageError

DEFAULT_ENGINE = "local"


@dataclass(frozen=True)
class Prompt:
    """One rendered prompt: the text the model sees, its token ids (tokenized as training does) and, for chat
    endpoints, the messages it was rendered from (without the final answer)."""

    text: str
    ids: list[int]
    messages: list[dict] | None = None


@dataclass(frozen=True)
class PromptSet:
    """Prompts to answer with one set of generation settings (`GenerationParams`): ``order`` is which of
    ``prompts`` (by index), in the order they are wanted. ``scores``, if given, is filled by an engine that can
    (a model decoding greedily in this process): index -> (summed negative log-likelihood in nats of the answer's
    tokens after its prompt, their count), for answers whose prompt and text tokenize on their own to exactly the
    tokens the model read and chose, so the figure is what scoring that text by likelihood gives."""

    prompts: Mapping[int, Prompt]
    order: Sequence[int]
    params: Any
    scores: dict | None = None


@dataclass(frozen=True)
class EngineOptions:
    """How to reach or run an engine: each engine has its own frozen subclass (its ``options_type``), whose field
    names are the command line's option names (``base_url`` is ``--base-url``) and whose ``__post_init__`` checks
    them; an option another engine owns is refused by `GenerationEngine.options_from`."""


class GenerationEngine(ABC):
    """Answers for rendered prompts. Subclasses set ``name``, ``options_type``, a ``tokenizer`` (the model's, which
    renders the prompts) and implement `generate`.

    Every engine is created the same way, ``cls(model, adapter, options, template=..., loaded=...)`` (what
    `ftbench.inference.engines.ENGINES` does); generation settings (`GenerationParams`) come with each `generate`
    call, as lm-eval passes gen_kwargs per request, so one engine serves eval sets of different lengths. How an
    engine takes a trained checkpoint is its own business (`for_checkpoint`).

    ``usage`` counts prompt_tokens and completion_tokens over the engine's life (a server's own counts when it
    reports them). `resume_key` is what must match for a prediction file to be extended by this engine;
    `describe` is what goes into its sidecar.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options_type: ClassVar[type] = EngineOptions
    wants_messages: bool = False  # True: the prompts must carry their messages (a chat endpoint)

    def __init__(
        self, model: str, adapter: str | None, options: Any, *, template: Any = None, loaded: tuple | None = None
    ) -> None:
        """``model`` (+ ``adapter``) with this engine's ``options``; ``template``: a named `ChatTemplate` the
        prompts are rendered with (local/vllm stop at its end-of-turn ids); ``loaded``: (model, tokenizer) already
        in memory, for engines that can use them."""
        self.usage: Counter = Counter()
        self.tokenizer: Any = None
        self.template: Any = template
        self.options = options

    # --- options --------------------------------------------------------------------------------------------
    @classmethod
    def option_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in fields(cls.options_type))

    @classmethod
    def options_from(cls, given: Mapping[str, Any]):
        """This engine's options from the values the user gave (command-line option names, without dashes);
        `ForeignOption` for a value that is not one of its options; the options type checks the rest."""
        for key in given:
            if key not in cls.option_names():
                raise ForeignOption(key, cls.name)
        return cls.options_type(**given)

    # --- how workflows open an engine -----------------------------------------------------------------------
    @classmethod
    def for_checkpoint(
        cls,
        model: str,
        adapter: str | None,
        options: Any,
        *,
        scratch_dir: str,
        template: Any = None,
        device: str | None = None,
    ) -> "GenerationEngine":
        """The engine evaluating ``model`` with a trained ``adapter`` (train-and-compare's before and after
        sides; ``adapter`` None for the base model). ``scratch_dir``: a folder of the run this engine may fill
        (the run folder's merged/, for a merged model); ``device``: where this process evaluates, for engines
        that place a model.
        Default: the adapter as the constructor takes it."""
        return cls(model, adapter, options, template=template)

    @classmethod
    def for_evaluation(
        cls, model: str, adapter: str | None, options: Any, *, template: Any = None
    ) -> "GenerationEngine":
        """The engine `ftbench eval` generates with. Default: the constructor's; an engine running a model in
        this process loads it as lm-eval's HF model does, so the figures match lm-eval's."""
        return cls(model, adapter, options, template=template)

    # --- generation -----------------------------------------------------------------------------------------
    @abstractmethod
    def generate(
        self, prompts: Mapping[int, Prompt], order: Sequence[int], batch_size: int, params: Any
    ) -> Iterator[list[tuple[int, str]]]:
        """Answers for the prompts at ``order``, generated with ``params`` (`GenerationParams`); each yielded
        list is durable-worthy (written and flushed by the caller). Results may come out of order; every index
        comes exactly once."""

    def generate_sets(
        self, sets: Sequence["PromptSet"], batch_size: int
    ) -> Iterator[tuple[int, list[tuple[int, str]]]]:
        """Answers for several prompt sets, each with its own ``params`` (a run's eval sets: lengths and stop
        strings differ): ``(set number, result list)`` as they come, every set's indices exactly once.
        Default: one set after another through `generate`; an engine that can batch prompts of different settings
        together overrides it (the local engine: one continuous batch, so a short set fills a long one's tail)."""
        for number, prompt_set in enumerate(sets):
            for results in self.generate(prompt_set.prompts, prompt_set.order, batch_size, prompt_set.params):
                yield number, results

    def in_process_model(self) -> Any:
        """The transformers model this engine generates with in this process, or None (a server, vLLM).
        `ftbench eval` decodes such a model exactly as lm-eval's HF model does (its generation_config, its
        batches); other engines get the same prompts through `generate`."""
        return None

    @classmethod
    def resume_key(cls, options: Any) -> str:
        """Recorded in a prediction file's sidecar: engines whose answers may differ do not extend each other's
        files."""
        return cls.name

    def describe(self, params: Any) -> dict[str, Any]:
        """The effective generation settings with ``params``, for the prediction file's sidecar."""
        return {"engine": self.name}

    def close(self) -> None:
        """Release what the engine holds (threads, GPU memory)."""


class ForeignOption(UsageError):
    """An option given to an engine that does not take it (``option``: its name, e.g. ``base_url``)."""

    def __init__(self, option: str, engine: str):
        super().__init__(f"{option_flag(option)} is not an option of --engine {engine}")
        self.option, self.engine = option, engine


def option_flag(name: str) -> str:
    """The command line's spelling of an engine option: ``base_url`` -> ``--base-url``."""
    return "--" + name.replace("_", "-")

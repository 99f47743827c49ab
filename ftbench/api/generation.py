"""The generation-engine interface: what produces answers for rendered prompts, in this process (`local`), on an
OpenAI-compatible server (`openai`) or in offline vLLM (`vllm`).

Every engine gets the same `Prompt`s, rendered once by `ftbench.inference.chat` with the model's tokenizer (text,
token ids and the messages they came from), and yields (index, answer) pairs; the caller writes them through
`ftbench.data.predictions`, so output is resumable whatever the engine. Engines are chosen by name through
`ftbench.inference.engines.ENGINES` (`ftbench.engines` entry points). Nothing here imports anything heavy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Mapping, Sequence

DEFAULT_ENGINE = "local"


@dataclass(frozen=True)
class Prompt:
    """One rendered prompt: the text the model sees, its token ids (tokenized as training does) and, for chat
    endpoints, the messages it was rendered from (without the final answer)."""

    text: str
    ids: list[int]
    messages: list[dict] | None = None


@dataclass(frozen=True)
class EngineOptions:
    """How to reach or run an engine (the command line's --engine options); each engine reads its own."""

    base_url: str | None = None  # openai: the server, e.g. http://127.0.0.1:8000/v1
    served_model: str | None = None  # openai: the model name at the server (default: the model's resolved path)
    served_model_after: str | None = None  # openai, train-and-compare: the fine-tuned model's name at the server
    api: str = "completions"  # openai: "completions" (the prompt ftbench renders) or "chat" (the messages)
    concurrency: int = 4  # openai: requests in flight
    api_key_env: str = "OPENAI_API_KEY"  # openai: the environment variable holding the key
    timeout: float = 600.0  # openai: seconds per reply
    max_retries: int = 5  # openai: retries of a request (429/5xx/timeouts/refused connections)
    backoff: float = 1.0  # openai: first retry waits up to this long, doubling
    tensor_parallel_size: int = 1  # vllm
    data_parallel_size: int = 1  # vllm
    gpu_memory_utilization: float | None = None  # vllm
    device: str | None = None  # local
    dtype: str | None = None  # local, vllm
    threads: int | None = None  # local
    template: Any = None  # every engine: a named `ChatTemplate` (prompts, labels, local/vllm stop ids) or None


class GenerationEngine(ABC):
    """Answers for rendered prompts. Subclasses set ``name``, a ``tokenizer`` (the model's, which renders the
    prompts) and implement `generate`.

    ``usage`` counts prompt_tokens and completion_tokens over the engine's life (a server's own counts when it
    reports them). `resume_key` is what must match for a prediction file to be extended by this engine;
    `describe` is what goes into its sidecar.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    wants_messages: bool = False  # True: the prompts must carry their messages (a chat endpoint)

    def __init__(self) -> None:
        self.usage: Counter = Counter()
        self.tokenizer: Any = None
        self.template: Any = None  # EngineOptions.template: how prompts and labels are rendered

    @abstractmethod
    def generate(self, prompts: Mapping[int, Prompt], order: Sequence[int], batch_size: int
                 ) -> Iterator[list[tuple[int, str]]]:
        """Answers for the prompts at ``order``; each yielded list is durable-worthy (written and flushed by the
        caller). Results may come out of order; every index comes exactly once."""

    @classmethod
    def use_params(self, params) -> None:
        """Generate with other settings (`GenerationParams`) from now on, keeping the loaded model."""
        self.params = params

    @classmethod
    def resume_key(cls, options: EngineOptions) -> str:
        """Recorded in a prediction file's sidecar: engines whose answers may differ do not extend each other's
        files."""
        return cls.name

    def describe(self) -> dict[str, Any]:
        """The effective generation settings, for the prediction file's sidecar."""
        return {"engine": self.name}

    def close(self) -> None:
        """Release what the engine holds (threads, GPU memory)."""

"""`--engine vllm`: offline vLLM in this process (`vllm.LLM`), for GPUs.

The prompts are the token ids ftbench renders (`TokensPrompt`), so vLLM sees exactly what the local engine
generates from; greedy is `temperature=0`; every end-of-turn id the local engine stops at is a `stop_token_ids`
entry; a LoRA adapter goes in as a `LoRARequest` (vLLM's `enable_lora`, `max_lora_rank` from the adapter's rank).
`tensor_parallel_size` and `data_parallel_size` are passed to `LLM(...)` as given (see docs/scaling.md for what
vLLM does with each, and for serving with `vllm serve` + `--engine openai` instead).

vllm is imported only when this engine is chosen; where it is not installed that is one line, exit 2. Written
against vLLM's documented `LLM`/`SamplingParams`/`LoRARequest` API; this project's CI has no GPU and never runs it
(the argument mapping is unit-tested).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

from ftbench.api.errors import UsageError
from ftbench.api.generation import EngineOptions, GenerationEngine, Prompt

_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's allowed max_lora_rank values
LORA_NAME = "ftbench-adapter"


def import_vllm():
    """The vllm module, or one line saying what is needed."""
    try:
        import vllm
    except ImportError:
        raise UsageError(
            "--engine vllm needs the vllm package (pip install vllm, on Linux with an NVIDIA GPU); or "
            "run `vllm serve` anywhere and use --engine openai --base-url (docs/scaling.md)"
        ) from None
    return vllm


def lora_rank(adapter: str) -> int:
    """The adapter's LoRA rank, rounded up to a max_lora_rank vLLM accepts."""
    with open(os.path.join(adapter, "adapter_config.json"), encoding="utf-8") as fh:
        rank = int(json.load(fh).get("r") or 8)
    return next((r for r in _LORA_RANKS if r >= rank), rank)


@dataclass(frozen=True)
class VllmOptions(EngineOptions):
    """How vLLM spreads the model over GPUs, and its memory share and dtype (None: vLLM's defaults)."""

    tensor_parallel_size: int = 1  # GPUs per model replica
    data_parallel_size: int = 1  # model replicas
    gpu_memory_utilization: float | None = None
    dtype: str | None = None
    seed: int = 0  # vLLM's engine seed (each request's sampling seed is its own)

    def __post_init__(self):
        if self.tensor_parallel_size < 1 or self.data_parallel_size < 1:
            raise UsageError("--tensor-parallel-size/--data-parallel-size: must be at least 1")
        if self.gpu_memory_utilization is not None and not 0 < self.gpu_memory_utilization <= 1:
            raise UsageError(f"gpu_memory_utilization {self.gpu_memory_utilization}: must be in (0, 1]")


def llm_kwargs(path: str, adapter: str | None, options: VllmOptions) -> dict:
    """The keyword arguments of `vllm.LLM(...)`."""
    kwargs = {
        "model": path,
        "tokenizer": path,
        "tensor_parallel_size": options.tensor_parallel_size,
        "dtype": options.dtype or "auto",
        "seed": options.seed,
    }
    if options.data_parallel_size > 1:
        kwargs["data_parallel_size"] = options.data_parallel_size
    if options.gpu_memory_utilization:
        kwargs["gpu_memory_utilization"] = options.gpu_memory_utilization
    if adapter:
        kwargs.update(enable_lora=True, max_lora_rank=lora_rank(adapter), max_loras=1)
    return kwargs


def sampling_kwargs(params, stop_ids: Sequence[int]) -> dict:
    """The keyword arguments of `vllm.SamplingParams(...)`: greedy unless sampling, the local engine's stops."""
    kwargs = {
        "n": 1,
        "max_tokens": params.max_new_tokens,
        "stop_token_ids": list(stop_ids),
        "skip_special_tokens": True,
    }
    if params.stop:
        kwargs["stop"] = list(params.stop)  # vLLM cuts the text before it (include_stop_str_in_output=False)
    if params.do_sample:
        kwargs.update(temperature=params.temperature if params.temperature is not None else 1.0, seed=params.seed)
        if params.top_p is not None:
            kwargs["top_p"] = params.top_p
        if params.top_k:
            kwargs["top_k"] = params.top_k
    else:
        kwargs["temperature"] = 0.0
    return kwargs


class VllmEngine(GenerationEngine):
    """`vllm.LLM` over the model (+ `LoRARequest` for the adapter); see the module docstring."""

    name = "vllm"
    description = "offline vLLM (GPU): tensor/data parallel, LoRA requests"
    options_type = VllmOptions

    def __init__(
        self, model: str, adapter: str | None, options: VllmOptions, *, template=None, loaded: tuple | None = None
    ):
        super().__init__(model, adapter, options, template=template, loaded=loaded)
        vllm = import_vllm()
        from ftbench.inference.generate import end_of_turn_ids
        from ftbench.inference.models import load_tokenizer, resolve_model

        path = resolve_model(model)
        self.adapter = adapter
        self.tokenizer = load_tokenizer(model)
        self.stop_ids = (
            self.template.stop_ids(self.tokenizer) if self.template is not None else end_of_turn_ids(self.tokenizer)
        )
        self.kwargs = llm_kwargs(path, adapter, options)
        self.llm = vllm.LLM(**self.kwargs)
        self.lora = None
        if adapter:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest(LORA_NAME, 1, os.path.abspath(adapter))

    def generate(
        self, prompts: Mapping[int, Prompt], order: Sequence[int], batch_size: int, params
    ) -> Iterator[list[tuple[int, str]]]:
        """vLLM schedules its own batches; ftbench hands it windows of prompts so rows reach the disk as they go."""
        import vllm
        from vllm.inputs import TokensPrompt

        sampling = vllm.SamplingParams(**sampling_kwargs(params, self.stop_ids))
        order = list(order)
        window = max(256, batch_size * 16)
        for start in range(0, len(order), window):
            chunk = order[start : start + window]
            outputs = self.llm.generate(
                [TokensPrompt(prompt_token_ids=prompts[i].ids) for i in chunk],
                sampling,
                lora_request=self.lora,
                use_tqdm=False,
            )
            for i, out in zip(chunk, outputs):
                self.usage["prompt_tokens"] += len(prompts[i].ids)
                self.usage["completion_tokens"] += len(out.outputs[0].token_ids)
            yield [(i, out.outputs[0].text) for i, out in zip(chunk, outputs)]

    def describe(self, params) -> dict:
        return {
            "engine": self.name,
            "llm": {k: v for k, v in self.kwargs.items() if k not in ("model", "tokenizer")},
            "sampling": sampling_kwargs(params, self.stop_ids),
        }

"""`--engine openai`: answers from any OpenAI-compatible server (vLLM's `vllm serve`, SGLang, `transformers serve`,
LLaMA-Factory's `llamafactory-cli api`, llama.cpp's `llama-server`) at `--base-url`.

* By default `POST /completions` with the prompt text ftbench renders (`inference.chat`, the same text the local
  engine tokenizes), so the server applies no chat template of its own; `--api chat` sends the messages to
  `POST /chat/completions` instead (the server's template then decides the prompt).
* Greedy is `temperature: 0` (vLLM, SGLang and `transformers serve` all decode greedily then). Stop strings are
  sent as `stop` and also cut on this side: some servers (`transformers serve`) keep the stop string in the text.
* `concurrency` requests in flight, each through the project's one HTTP client (`ftbench.net.http`): retries
  with backoff and `Retry-After`, API key only from the environment and never shown. A request that still fails
  stops the run; the rows written so far stay, and the same command resumes.
* Token counts are the server's `usage`.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Iterator, Mapping, Sequence

from ftbench.api.errors import UsageError
from ftbench.api.generation import EngineOptions, GenerationEngine, Prompt

APIS = ("completions", "chat")


def served_model_name(model: str, served: str | None) -> str:
    """The name to ask the server for: ``served`` if given, else what ftbench resolves ``model`` to (a local
    folder's path, as `transformers serve` and `vllm serve PATH` name it; a hub id as is)."""
    if served:
        return served
    from ftbench.inference.models import resolve_model

    resolved = resolve_model(model)
    return os.path.abspath(resolved) if os.path.isdir(resolved) else resolved


def merged_checkpoint(model: str, adapter: str, folder: str) -> str:
    """``adapter`` merged into ``model`` in ``folder`` (kept while it holds this adapter's merge): its path."""
    from ftbench.inference.export import EXPORT_INFO, merge_and_save

    info = os.path.join(folder, EXPORT_INFO)
    done = False
    if os.path.isfile(info):
        with open(info, encoding="utf-8") as fh:
            done = json.load(fh).get("adapter") == os.path.abspath(adapter)
    if not done:
        merge_and_save(model, adapter, folder, overwrite=True)
    return os.path.abspath(folder)


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """``text`` up to the first stop string (what the local engine returns; OpenAI and vLLM strip it too)."""
    cuts = [text.find(s) for s in stops if s and s in text]
    return text[: min(cuts)] if cuts else text


@dataclass(frozen=True)
class OpenAIOptions(EngineOptions):
    """The server and how to talk to it; checked when made (a missing or malformed --base-url, an unknown --api)."""

    base_url: str | None = None  # the server, e.g. http://127.0.0.1:8000/v1
    served_model: str | None = None  # the model name at the server (default: the model's resolved path)
    served_model_after: str | None = None  # train-and-compare: the fine-tuned model's name at the server
    api: str = "completions"  # "completions" (the prompt ftbench renders) or "chat" (the messages)
    concurrency: int = 4  # requests in flight
    api_key_env: str = "OPENAI_API_KEY"  # the environment variable holding the key
    request_timeout: float = 600.0  # seconds per reply
    max_retries: int = 5  # retries of a request (429/5xx/timeouts/refused connections)
    backoff: float = 1.0  # the first retry waits up to this long, doubling

    def __post_init__(self):
        from ftbench.net.http import completions_url

        if not self.base_url:
            raise UsageError("--engine openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        if self.api not in APIS:
            raise UsageError(f"--api {self.api}: choose from {', '.join(APIS)}")
        if self.concurrency < 1:
            raise UsageError(f"--concurrency {self.concurrency}: must be at least 1")
        completions_url(self.base_url)  # a malformed URL fails before any model is loaded


class OpenAIEngine(GenerationEngine):
    """Requests to an OpenAI-compatible server; see the module docstring."""

    name = "openai"
    description = "an OpenAI-compatible server (vLLM, SGLang, transformers serve, llamafactory-cli api, llama.cpp)"
    options_type = OpenAIOptions

    def __init__(
        self, model: str, adapter: str | None, options: OpenAIOptions, *, template=None, loaded: tuple | None = None
    ):
        # the prompt sent is rendered with ``template``; the server stops at its own eos
        super().__init__(model, adapter, options, template=template, loaded=loaded)
        from ftbench.inference.models import load_tokenizer
        from ftbench.net.http import CHAT, COMPLETIONS, ChatClient, Redactor, RetryPolicy, api_key_from_env

        if adapter:
            raise UsageError(
                "--engine openai: the server applies adapters, not ftbench: serve the adapter (vLLM: "
                "--enable-lora --lora-modules NAME=PATH) and pass --served-model NAME, or merge it "
                "(ftbench export) and serve the merged folder (docs/scaling.md)"
            )
        self.served = served_model_name(model, options.served_model)
        self.wants_messages = options.api == "chat"
        self.tokenizer = loaded[1] if loaded else load_tokenizer(model)
        api_key = api_key_from_env(options.api_key_env)
        self._stop = threading.Event()
        self.client = ChatClient(
            options.base_url,
            self.served,
            api_key,
            key_source=options.api_key_env,
            timeout=options.request_timeout,
            redact=Redactor(api_key),
            policy=RetryPolicy(max_retries=options.max_retries, base=options.backoff),
            stop=self._stop,
            on_retry=self._count_retry,
            endpoint=CHAT if self.wants_messages else COMPLETIONS,
            user_agent="ftbench",
        )
        self.retries = 0

    @classmethod
    def for_checkpoint(cls, model, adapter, options, *, scratch_dir, template=None, device=None):
        """A server applies no adapter ftbench hands it: with ``served_model_after`` it is asked for that name
        (a vLLM LoRA module); otherwise the checkpoint is merged into ``scratch_dir`` and asked for by its path,
        which servers that load models on request (`transformers serve` without a pinned model) accept."""
        if adapter and options.served_model_after:
            options = replace(options, served_model=options.served_model_after)
        elif adapter:
            model = merged_checkpoint(model, adapter, scratch_dir)
            options = replace(options, served_model=model)
        return cls(model, None, options, template=template)

    def _count_retry(self, kind: str, delay: float) -> None:
        self.retries += 1

    def payload(self, prompt: Prompt, params) -> dict:
        """The request body (without the model name) for one prompt generated with ``params``."""
        p = params
        body = {"messages": prompt.messages} if self.wants_messages else {"prompt": prompt.text}
        body["max_tokens"] = p.max_new_tokens
        if p.do_sample:
            body.update(temperature=p.temperature if p.temperature is not None else 1.0, seed=p.seed)
            if p.top_p is not None:
                body["top_p"] = p.top_p
        else:
            body["temperature"] = 0
        if p.stop:
            body["stop"] = list(p.stop)
        return body

    def _one(self, index: int, prompt: Prompt, params) -> tuple[int, str]:
        from ftbench.net.http import Interrupted, RequestFailed

        try:
            completion = self.client.request(self.payload(prompt, params))
        except RequestFailed as e:
            raise UsageError(f"{self.client.url}: the request for sample {index} failed: {e}") from None
        except Interrupted:
            raise KeyboardInterrupt() from None
        for key in ("prompt_tokens", "completion_tokens"):
            value = completion.usage.get(key)
            if isinstance(value, int):
                self.usage[key] += value
        return index, cut_at_stop(completion.text, params.stop)

    def generate(
        self, prompts: Mapping[int, Prompt], order: Sequence[int], batch_size: int, params
    ) -> Iterator[list[tuple[int, str]]]:
        """At most ``concurrency`` requests in flight, submitted in input order; each answer is yielded as it
        arrives (``batch_size`` is the server's business)."""
        self._stop.clear()  # an engine is reused across calls (train-and-compare: one per eval set)
        pending = iter(order)
        pool = ThreadPoolExecutor(self.options.concurrency, thread_name_prefix="ftbench-openai")
        running = set()
        try:
            for i in pending:
                running.add(pool.submit(self._one, i, prompts[i], params))
                if len(running) < self.options.concurrency:
                    continue
                done, running = wait(running, return_when=FIRST_COMPLETED)
                yield from _finished(done)
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                yield from _finished(done)
        finally:
            self._stop.set()  # an error or interrupt: no retry waits on, nothing new starts
            pool.shutdown(wait=False, cancel_futures=True)

    @classmethod
    def resume_key(cls, options: OpenAIOptions) -> str:
        return f"{cls.name}:{options.api}"  # chat requests let the server render the prompt

    def describe(self, params) -> dict:
        p = params
        out = {
            "engine": self.name,
            "api": self.options.api,
            "base_url": self.options.base_url,
            "served_model": self.served,
            "concurrency": self.options.concurrency,
            "do_sample": p.do_sample,
            "max_new_tokens": p.max_new_tokens,
            "stop": list(p.stop),
        }
        if p.do_sample:
            out.update(temperature=p.temperature, top_p=p.top_p, seed=p.seed)
        return out


def _finished(done) -> Iterator[list[tuple[int, str]]]:
    """The answers of finished requests (so they are written), then the first failure among them, if any."""
    results, error = [], None
    for future in done:
        try:
            results.append(future.result())
        except BaseException as e:  # noqa: BLE001 (re-raised below, after the good answers are kept)
            error = error or e
    if results:
        yield results
    if error is not None:
        raise error

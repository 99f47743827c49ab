"""The predict loop: answers for a list of samples from any generation engine, appended to a prediction file in
input order as they finish, so a killed run resumes where it stopped (the file format: `ftbench.data.predictions`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ftbench.data.predictions import OrderedRowWriter, make_row, write_meta

# Prefill attention holds batch x prompt_len^2 scores (times heads and temporaries: ~40 bytes each, measured on
# the tiny model): 16 prompts of 4,096 tokens took 10 GB. Batches of long prompts are made smaller so that
# rows x prompt_len^2 stays within this budget (about 1.5 GB); prompts up to ~1,400 tokens keep batch 16.
ATTENTION_CELLS = 2**25


@dataclass
class PredictionFile:
    """A prediction file to complete: answers for ``samples[done:]`` with ``params`` (`GenerationParams`),
    appended to ``out``; ``meta``, if given, is completed with the engine's effective settings and rewritten;
    ``scores``, if given, gets the answers' likelihoods where the engine gives them (`PromptSet.scores`)."""

    samples: list
    out: str
    done: int
    params: Any
    meta: dict | None = None
    scores: dict | None = None


def generate_rows(
    samples: list,
    out: str,
    done: int,
    *,
    engine,
    params,
    batch_size: int,
    cutoff_len: int | None = None,
    quiet: bool = False,
    meta: dict | None = None,
    max_prompt_tokens: int | None = None,
) -> tuple[int, float]:
    """Generate answers for samples[done:] with ``engine`` (a `GenerationEngine`) and ``params``
    (`GenerationParams`), and append their rows to ``out`` in order (durable as each result list arrives).
    Returns (rows written, seconds spent generating; model loading excluded). See `generate_files`."""
    written, seconds = generate_files(
        [PredictionFile(samples, out, done, params, meta)],
        engine=engine,
        batch_size=batch_size,
        cutoff_len=cutoff_len,
        quiet=quiet,
        max_prompt_tokens=max_prompt_tokens,
    )
    return written[0], seconds


def generate_files(
    files: list[PredictionFile],
    *,
    engine,
    batch_size: int,
    cutoff_len: int | None = None,
    quiet: bool = False,
    max_prompt_tokens: int | None = None,
) -> tuple[list[int], float]:
    """Complete every prediction file of ``files`` with ``engine``, in one `GenerationEngine.generate_sets` call
    (an engine may batch the files' prompts together), each file's rows appended in input order, durable as each
    result list arrives.

    Returns (rows written per file, seconds spent generating; model loading excluded). Prompts, and labels as
    LLaMA-Factory's predict writes them (`label_text`), follow the engine's named template (``engine.template``) if
    it has one. A prompt longer than ``max_prompt_tokens`` (default: the model's context) keeps its last tokens,
    said in one warning per file. A KeyboardInterrupt leaves every finished row on disk and propagates.
    """
    import sys
    import time

    from tqdm import tqdm

    from ftbench.api.generation import PromptSet

    sets, labels, writers = [], [], []
    for file in files:
        prompts, file_labels = _prepare(file, engine, cutoff_len, max_prompt_tokens, quiet)
        sets.append(PromptSet(prompts, range(file.done, len(file.samples)), file.params, file.scores))
        labels.append(file_labels)
    longest = max((len(p.ids) for s in sets for p in s.prompts.values()), default=1)
    batch_size = max(1, min(batch_size, ATTENTION_CELLS // max(1, longest) ** 2))  # same text at any batch size
    start = time.perf_counter()
    bar = tqdm(
        total=sum(len(f.samples) for f in files),
        initial=sum(f.done for f in files),
        unit="sample",
        desc="predict",
        file=sys.stderr,
        disable=quiet,
        dynamic_ncols=True,
    )
    try:
        for file in files:
            writers.append(OrderedRowWriter(file.out, file.done))
        for number, results in engine.generate_sets(sets, batch_size):
            prompts = sets[number].prompts
            writers[number].add(make_row(i, prompts[i].text, text, labels[number][i]) for i, text in results)
            writers[number].flush()  # durable per result list: a kill loses at most what waits for an earlier row
            bar.update(len(results))
    finally:
        for writer in writers:
            writer.close()
        bar.close()
    return [w.written for w in writers], time.perf_counter() - start


def _prepare(file: PredictionFile, engine, cutoff_len, max_prompt_tokens, quiet) -> tuple[dict, dict]:
    """A file's prompts still to answer (rendered by the engine's tokenizer and template) and their labels; its
    sidecar completed; one warning if prompts were cut to fit."""
    from ftbench.console import say
    from ftbench.inference.chat import context_length, label_text
    from ftbench.inference.engines import render_prompts

    samples, todo = file.samples, range(file.done, len(file.samples))
    if file.meta is not None:
        described = engine.describe(file.params)
        for key in ("device", "dtype"):
            if key in described:
                file.meta[key] = described.pop(key)
        file.meta["effective_generation"] = described
        write_meta(file.out, file.meta)
    cut: list[int] = []
    prompts = render_prompts(
        engine.tokenizer,
        samples,
        todo,
        cutoff_len,
        with_messages=engine.wants_messages,
        template=engine.template,
        max_prompt_tokens=max_prompt_tokens,
        cut=cut,
    )
    if cut:
        limit = max_prompt_tokens or context_length(engine.tokenizer)
        first = samples[cut[0]]
        where = f"{first.file}:{first.line}" if first.line else f"{first.file} [{first.record}]"
        said = "--max-prompt-tokens" if max_prompt_tokens else "the model's context"
        say(
            f"warning: {len(cut)} prompt(s) longer than {limit:,} tokens ({said}) keep their last {limit:,} tokens "
            f"(the first: {where}); shorten them, or set --cutoff-len",
            quiet,
        )
    labels = {i: label_text(engine.tokenizer, samples[i], cutoff_len, engine.template) for i in todo}
    return prompts, labels

"""The predict loop: answers for a list of samples from any generation engine, appended to a prediction file in
input order as they finish, so a killed run resumes where it stopped (the file format: `ftbench.data.predictions`)."""

from __future__ import annotations

from ftbench.data.predictions import OrderedRowWriter, make_row, write_meta

# Prefill attention holds batch x prompt_len^2 scores (times heads and temporaries: ~40 bytes each, measured on
# the tiny model): 16 prompts of 4,096 tokens took 10 GB. Batches of long prompts are made smaller so that
# rows x prompt_len^2 stays within this budget (about 1.5 GB); prompts up to ~1,400 tokens keep batch 16.
ATTENTION_CELLS = 2**25


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

    Returns (rows written, seconds spent generating; model loading excluded). ``meta`` (if given) is completed
    with the engine's effective settings and rewritten. Prompts, and labels as LLaMA-Factory's predict writes them
    (`label_text`), follow the engine's named template (``engine.template``) if it has one. A prompt longer than
    ``max_prompt_tokens`` (default: the model's context) keeps its last tokens, said in one warning. A
    KeyboardInterrupt leaves every finished row on disk and propagates.
    """
    import sys
    import time

    from tqdm import tqdm

    from ftbench.console import say
    from ftbench.inference.chat import context_length, label_text
    from ftbench.inference.engines import render_prompts

    if meta is not None:
        described = engine.describe(params)
        for key in ("device", "dtype"):
            if key in described:
                meta[key] = described.pop(key)
        meta["effective_generation"] = described
        write_meta(out, meta)
    todo = range(done, len(samples))
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
    longest = max((len(p.ids) for p in prompts.values()), default=1)
    batch_size = max(1, min(batch_size, ATTENTION_CELLS // max(1, longest) ** 2))  # same text at any batch size
    labels = {i: label_text(engine.tokenizer, samples[i], cutoff_len, engine.template) for i in todo}
    writer = OrderedRowWriter(out, done)
    start = time.perf_counter()
    bar = tqdm(
        total=len(samples),
        initial=done,
        unit="sample",
        desc="predict",
        file=sys.stderr,
        disable=quiet,
        dynamic_ncols=True,
    )
    try:
        for results in engine.generate(prompts, todo, batch_size, params):
            writer.add(make_row(i, prompts[i].text, text, labels[i]) for i, text in results)
            writer.flush()  # durable per result list: a kill loses at most what waits for an earlier row
            bar.update(len(results))
    finally:
        writer.close()
        bar.close()
    return writer.written, time.perf_counter() - start

"""The predict loop: answers for a list of samples from any generation engine, appended to a prediction file in
input order as they finish, so a killed run resumes where it stopped (the file format: `ftbench.data.predictions`)."""

from __future__ import annotations

from ftbench.data.predictions import OrderedRowWriter, make_row, write_meta


def generate_rows(samples: list, out: str, done: int, *, engine, params, batch_size: int,
                  cutoff_len: int | None = None, quiet: bool = False, meta: dict | None = None) -> tuple[int, float]:
    """Generate answers for samples[done:] with ``engine`` (a `GenerationEngine`) and ``params``
    (`GenerationParams`), and append their rows to ``out`` in order (durable as each result list arrives).

    Returns (rows written, seconds spent generating; model loading excluded). ``meta`` (if given) is completed
    with the engine's effective settings and rewritten. Prompts, and labels as LLaMA-Factory's predict writes them
    (`label_text`), follow the engine's named template (``engine.template``) if it has one. A KeyboardInterrupt
    leaves every finished row on disk and propagates.
    """
    import sys
    import time

    from tqdm import tqdm

    from ftbench.inference.chat import label_text
    from ftbench.inference.engines import render_prompts

    if meta is not None:
        described = engine.describe(params)
        for key in ("device", "dtype"):
            if key in described:
                meta[key] = described.pop(key)
        meta["effective_generation"] = described
        write_meta(out, meta)
    todo = range(done, len(samples))
    prompts = render_prompts(engine.tokenizer, samples, todo, cutoff_len, with_messages=engine.wants_messages,
                             template=engine.template)
    labels = {i: label_text(engine.tokenizer, samples[i], cutoff_len, engine.template) for i in todo}
    writer = OrderedRowWriter(out, done)
    start = time.perf_counter()
    bar = tqdm(total=len(samples), initial=done, unit="sample", desc="predict", file=sys.stderr, disable=quiet,
               dynamic_ncols=True)
    try:
        for results in engine.generate(prompts, todo, batch_size, params):
            writer.add(make_row(i, prompts[i].text, text, labels[i]) for i, text in results)
            writer.flush()  # durable per result list: a kill loses at most what waits for an earlier row
            bar.update(len(results))
    finally:
        writer.close()
        bar.close()
    return writer.written, time.perf_counter() - start

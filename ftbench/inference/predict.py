"""The predict loop: greedy (or sampled) answers for a list of samples, appended to a prediction file in input
order as batches finish, so a killed run resumes where it stopped (the file format: `ftbench.data.predictions`)."""

from __future__ import annotations

from ftbench.data.predictions import OrderedRowWriter, make_row, write_meta


def generate_rows(samples: list, out: str, done: int, *, model: str, adapter: str | None, params, batch_size: int,
                  cutoff_len: int | None = None, device: str | None = None, dtype: str | None = None,
                  threads: int | None = None, quiet: bool = False, meta: dict | None = None,
                  loaded: tuple | None = None, template=None) -> tuple[int, float]:
    """Generate answers for samples[done:] and append their rows to ``out`` in order (durable per batch).

    Returns (rows written, seconds spent generating; model loading excluded). ``loaded`` = (model, tokenizer)
    reuses an already loaded model; ``meta`` (if given) is completed with the effective generation settings and
    rewritten. ``template``: a named `ChatTemplate` (prompts, labels and stop ids as LLaMA-Factory makes them).
    Labels are the final answer as LLaMA-Factory's predict writes them (`label_text`). A KeyboardInterrupt leaves every finished row on disk and propagates.
    """
    import sys
    import time

    from tqdm import tqdm

    from ftbench.inference.chat import label_text, prompt_text_and_ids
    from ftbench.inference.generate import Generator
    from ftbench.inference.models import load_model_for_generation, load_tokenizer

    if threads:
        import torch

        torch.set_num_threads(threads)
    if loaded is None:
        tokenizer = load_tokenizer(model)
        lm = load_model_for_generation(model, adapter=adapter, device=device, dtype=dtype)
    else:
        lm, tokenizer = loaded
    generator = Generator(lm, tokenizer, params,
                          stop_ids=template.stop_ids(tokenizer) if template is not None else None)
    if meta is not None:
        meta["effective_generation"] = generator.effective_config().to_dict()
        meta["device"] = str(next(lm.parameters()).device)
        meta["dtype"] = str(next(lm.parameters()).dtype).replace("torch.", "")
        write_meta(out, meta)
    todo = range(done, len(samples))
    texts, prompts, labels = {}, {}, {}
    for i in todo:
        texts[i], prompts[i] = prompt_text_and_ids(tokenizer, samples[i], cutoff_len, template)
        labels[i] = label_text(tokenizer, samples[i], cutoff_len, template)
    writer = OrderedRowWriter(out, done)
    start = time.perf_counter()
    bar = tqdm(total=len(samples), initial=done, unit="sample", desc="predict", file=sys.stderr, disable=quiet,
               dynamic_ncols=True)
    try:
        for results in generator.run(prompts, batch_size, order=todo):
            writer.add(make_row(i, texts[i], text, labels[i]) for i, text in results)
            writer.flush()  # durable per batch: a kill loses at most the unwritten part of the current window
            bar.update(len(results))
    finally:
        writer.close()
        bar.close()
    return writer.written, time.perf_counter() - start

"""Would another drafting policy make greedy decoding faster? Real answers replayed under other policies, priced
by this machine's measured cost of a decoding step.

A greedy answer does not depend on the drafts (each is kept only where the argmax confirms it), so once a set's
answers are known, the drafts any policy would have had accepted, and so the steps and positions it would have
computed, follow exactly. In one run:

1. **reference**: the set decoded for real by `greedy.greedy_decode` (batch 16, today's policy), timed; each
   row's prompt and answer ids kept;
2. **the price of a step**: steps of 4, 8 and 16 rows fed 1-4 tokens a row (`greedy._Batch`, this machine, the
   set's cache width), fitted as ``c0 + c1 * rows + b * positions``;
3. **replay**: today's policy (its predicted seconds against the measured ones check the price), then others:
   drafts only from longer n-gram matches, more drafts for the matches that predict best, and each priced twice,
   with rows padded to the step's widest row (today's layout) and as if packed without padding (a layout that
   would need its own attention; not built).

The replay's batching is `greedy_decode`'s (rows join in order as others end, the prefill gives the first
token); prefill time is left out of both sides.

    .venv/bin/python benchmarks/bench_drafts.py                # 48 GSM8K test problems, 256 new tokens
    .venv/bin/python benchmarks/bench_drafts.py --set identity # LLaMA-Factory's 90 identity questions
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import deque

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# alternatives to greedy_decode's own rule ("today"): {longest n-gram the row's end matched: drafts fed}
POLICIES = {
    "1-gram matches: none": {1: 0, 2: 1, 3: 1},
    "3-gram: 2": {1: 1, 2: 1, 3: 2},
    "1-gram: none, 3-gram: 2": {1: 0, 2: 1, 3: 2},
    "1-gram: none, 2-gram: 2, 3-gram: 3": {1: 0, 2: 2, 3: 3},
    "all: 3": {1: 3, 2: 3, 3: 3},
}


def record(model, tokenizer, samples: list, max_new_tokens: int) -> tuple[list, float]:
    """Decode the samples (rendered as `ftbench predict --template smollm2` renders them) with `greedy_decode` at
    batch 16: (prompt ids, answer ids) per row, in the order rows join (longest prompt first, as `Generator.run`
    orders a window), and the seconds its decoding steps took (`_Batch.step` timed from outside)."""
    from ftbench.inference import greedy
    from ftbench.inference.chat import prompt_text_and_ids
    from ftbench.inference.generate import GenerationParams, Generator
    from ftbench.inference.templates import get_template

    spent = [0.0]
    step = greedy._Batch.step

    def timed_step(self, *args):
        start = time.perf_counter()
        step(self, *args)
        spent[0] += time.perf_counter() - start

    prompts = [prompt_text_and_ids(tokenizer, sample, None, get_template("smollm2"))[1] for sample in samples]
    prompts = sorted(prompts, key=lambda p: -len(p))
    generator = Generator(model, tokenizer, GenerationParams(max_new_tokens=max_new_tokens))
    answers = {}
    greedy._Batch.step = timed_step
    try:
        for i, ids in greedy.greedy_decode(model, prompts, generator.pad_id, 16, max_new_tokens, generator.ended):
            answers[i] = list(ids)
    finally:
        greedy._Batch.step = step
    return [(list(prompts[i]), answers[i]) for i in range(len(prompts))], spent[0]


def step_price(model, width: int, repeat: int = 7) -> tuple[list[float], dict]:
    """Seconds of a decoding step of 4, 8 and 16 rows fed 1-4 tokens a row over about ``width`` cached columns:
    the least-squares fit ``c0 + c1 * rows + b * positions`` (``[c0, c1, b]``) and the medians by (rows, fed)."""
    import random

    import torch

    from ftbench.inference.greedy import _Batch

    random.seed(0)
    medians = {}
    with torch.inference_mode():
        for rows in (4, 8, 16):
            batch = _Batch.prefill(model, [[random.randrange(100, 40000) for _ in range(width)]] * rows, [0] * rows, 0)
            times = {fed: [] for fed in (1, 2, 3, 4)}
            for _ in range(repeat):  # interleaved, so the cache's growth weighs on every width alike
                for fed in times:
                    batch.tokens = [5] * rows
                    start = time.perf_counter()
                    batch.step(model, [[7] * (fed - 1)] * rows)
                    times[fed].append(time.perf_counter() - start)
            medians.update({(rows, fed): statistics.median(t[2:]) for fed, t in times.items()})
        keys = list(medians)
        design = torch.tensor([[1.0, rows, rows * fed] for rows, fed in keys], dtype=torch.float64)
        seconds = torch.tensor([medians[k] for k in keys], dtype=torch.float64)[:, None]
        fit = torch.linalg.lstsq(design, seconds).solution[:, 0].tolist()
    return fit, medians


def replay(rows: list, drafts_for) -> list[tuple[int, int, int]]:
    """(rows, fed width, real positions) of every step greedy decoding would take on ``rows`` with
    ``drafts_for(lookup, rows in the step, tokens left)`` as its drafts."""
    from ftbench.inference.prompt_lookup import Lookup, SharedAnswers

    answered = SharedAnswers()  # as greedy_decode keeps it
    waiting, active, steps = deque(range(len(rows))), [], []
    while waiting or active:
        while waiting and len(active) < 16:
            i = waiting.popleft()
            lookup = Lookup(list(rows[i][0]), answered)
            lookup.extend(rows[i][1][:1])  # the prefill chose the first token
            active.append([i, 1, lookup])
        active = [row for row in active if row[1] < len(rows[row[0]][1])]
        if not active:
            continue
        drafts = [drafts_for(lookup, len(active), len(rows[i][1]) - done - 1) for i, done, lookup in active]
        steps.append((len(active), 1 + max(map(len, drafts)), sum(1 + len(d) for d in drafts)))
        for row, guess in zip(active, drafts):
            answer, done = rows[row[0]][1], row[1]
            confirmed = 0
            while confirmed < len(guess) and guess[confirmed] == answer[done + confirmed]:
                confirmed += 1
            row[2].extend(answer[done : done + confirmed + 1])
            row[1] += confirmed + 1
    return steps


def today(lookup, rows: int, left: int) -> list[int]:
    """`greedy_decode`'s own rule."""
    from ftbench.inference.greedy import DRAFT_FILL, DRAFT_TOKENS

    return lookup.draft(min(DRAFT_TOKENS, DRAFT_FILL // rows - 1, left))


def by_match(limits: dict):
    """Drafts by the longest n-gram the row's end matched (`Lookup.match`): ``limits[n]`` of them."""

    def drafts_for(lookup, rows: int, left: int) -> list[int]:
        n, end = lookup.match()
        return lookup.tokens[end : end + min(limits.get(n, 0), left)] if n else []

    return drafts_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", default="gsm8k", choices=["gsm8k", "identity"])
    parser.add_argument("-n", type=int, default=48, help="GSM8K problems")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from ftbench.cpu_kernels import use_avx2_mkl

    use_avx2_mkl()  # before torch loads MKL, as the CLI does
    import torch

    torch.set_num_threads(args.threads)
    from bench_llamafactory import prediction_set

    from ftbench.data.loader import load_samples
    from ftbench.inference.models import load_model_for_generation, load_tokenizer, resolve_model

    path = resolve_model("smollm2")
    model, tokenizer = load_model_for_generation(path), load_tokenizer(path)
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, f"{args.set}.json")
        with open(data, "w", encoding="utf-8") as fh:
            json.dump(prediction_set(args.set, args.n), fh, ensure_ascii=False)
        samples = load_samples(data)
    rows, seconds = record(model, tokenizer, samples, args.max_new_tokens)
    tokens = sum(len(a) for _, a in rows)
    width = int(statistics.mean(len(p) + len(a) / 2 for p, a in rows))
    (c0, c1, b), medians = step_price(model, width)
    print(
        f"{args.set}: {len(rows)} prompts, {tokens} answer tokens; greedy_decode at batch 16: its steps {seconds:.1f} s"
    )
    print(f"a step over ~{width} columns, by rows fed 1-4 tokens a row (ms):")
    for r in (4, 8, 16):
        print(f"  {r:2d} rows: " + ", ".join(f"{1000 * t:.0f}" for (rr, _), t in medians.items() if rr == r))
    print(f"  fitted: {1000 * c0:.1f} ms + {1000 * c1:.2f} ms a row + {1000 * b:.2f} ms a position")

    def priced(steps) -> tuple[float, float]:
        padded = sum(c0 + c1 * r + b * r * fed for r, fed, _ in steps)
        return padded, sum(c0 + c1 * r + b * real for r, _, real in steps)

    reference = replay(rows, today)
    ref_padded, _ = priced(reference)
    print(
        f"{'policy':40s} {'steps':>6s} {'positions':>10s} {'real':>7s} "
        f"{'padded s':>9s} {'ratio':>6s} {'packed s':>9s} {'ratio':>6s}"
    )
    for name, drafts_for in [("today (greedy_decode)", today)] + [(k, by_match(v)) for k, v in POLICIES.items()]:
        steps = reference if drafts_for is today else replay(rows, drafts_for)
        padded, packed = priced(steps)
        positions, real = sum(r * fed for r, fed, _ in steps), sum(x for *_, x in steps)
        print(
            f"{name:40s} {len(steps):6d} {positions:10d} {real:7d} {padded:9.1f} {ref_padded / padded:5.2f}x "
            f"{packed:9.1f} {ref_padded / packed:5.2f}x"
        )
    print(f"today's policy priced at {ref_padded:.1f} s of steps against {seconds:.1f} s measured")


if __name__ == "__main__":
    main()

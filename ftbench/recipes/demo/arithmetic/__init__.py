"""Seeded generator of synthetic grade-school arithmetic word problems in GSM8K format.

Each problem is ``{"question": ..., "answer": ...}`` where ``answer`` is short step-by-step reasoning
with GSM8K calculator annotations (``4*3 = <<4*3=12>>12``) followed by a last line ``#### <integer>``.
Every number in the reasoning is computed, never typed in: each step is built from an expression
string that is evaluated exactly (with fractions, not floats) and must come out as a whole number.

About ``lang_mix`` of the problems are in Chinese, the rest in English. Problems take one to three
steps and are drawn from thirteen scenario families (shopping, ages, sharing sweets, speed and time,
savings, baking, reading, discounts, wages, class fractions, harvests, weekly habits, planting rows),
each with several variants, names and items, so a model has to learn the format rather than memorise
answers. Questions never repeat within one call, and neither do answers while that is easy to avoid.

    python -m ftbench.recipes.demo.arithmetic -n 300 --seed 0 -o datasets/arithmetic_demo.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

from ftbench.recipes.demo.arithmetic.exact import evaluate_expression
from ftbench.recipes.demo.arithmetic.scenarios import TEMPLATES

__all__ = ["generate", "write_jsonl", "evaluate_expression"]


def _one(rng: random.Random, lang_mix: float) -> dict:
    lang = "zh" if rng.random() < lang_mix else "en"
    template = rng.choice(TEMPLATES)
    question, lines, answer = template(rng, lang)
    return {"question": question, "answer": "\n".join(lines) + f"\n#### {answer}"}


def _math_of(answer: str) -> str:
    """The computation of an answer without its words: two problems that differ only in names or items
    share it, and would be near-duplicates."""
    return re.sub(r"[^0-9<>=*/+\-.#]", "", answer)


def generate(n: int, seed: int = 0, lang_mix: float = 0.3) -> list[dict]:
    """``n`` distinct problems, deterministic for ``seed``; about ``lang_mix`` of them in Chinese.

    Questions never repeat. Answers (the whole reasoning text) are kept distinct as well while that is
    easy to do, so that two problems differing only in a name or an item do not both make it in.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if not 0.0 <= lang_mix <= 1.0:
        raise ValueError("lang_mix must be between 0 and 1")
    rng = random.Random(seed)
    out: list[dict] = []
    questions: set[str] = set()
    answers: set[str] = set()
    attempts = 0
    while len(out) < n:
        fallback = None
        for _ in range(30):
            attempts += 1
            problem = _one(rng, lang_mix)
            if problem["question"] in questions:
                continue
            if _math_of(problem["answer"]) not in answers:
                break
            fallback = fallback or problem
        else:
            problem = fallback
        if problem is None:
            if attempts > 100 * n + 1000:  # the template space is huge; this only guards against a bug
                raise RuntimeError(f"could not generate {n} distinct problems")
            continue
        questions.add(problem["question"])
        answers.add(_math_of(problem["answer"]))
        out.append(problem)
    return out


def write_jsonl(path: str | Path, n: int, seed: int = 0, lang_mix: float = 0.3) -> int:
    """Write ``generate(n, seed, lang_mix)`` to ``path`` as JSON Lines (UTF-8, Chinese kept as is)."""
    problems = generate(n, seed, lang_mix)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for problem in problems:
            f.write(json.dumps(problem, ensure_ascii=False) + "\n")
    return len(problems)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ftbench.recipes.demo.arithmetic", description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=300, help="number of problems (default 300)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--lang-mix", type=float, default=0.3, help="fraction of Chinese problems (default 0.3)")
    ap.add_argument("-o", "--output", default="-", help="output .jsonl path, or - for stdout (default)")
    args = ap.parse_args(argv)
    if args.output == "-":
        for problem in generate(args.n, args.seed, args.lang_mix):
            sys.stdout.write(json.dumps(problem, ensure_ascii=False) + "\n")
    else:
        count = write_jsonl(args.output, args.n, args.seed, args.lang_mix)
        print(f"wrote {count} problems to {args.output}", file=sys.stderr)
    return 0

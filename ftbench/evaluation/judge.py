"""`ftbench judge`: a model compares the baseline's and the candidate's answer to each prompt, in both orders, as
MT-Bench's pairwise judge does (the protocol and its statistics: `ftbench.evaluation.judging`).

The judge is a generation engine: a server's chat endpoint (`--judge-url`, the `openai` engine with `api="chat"`,
the API key from an environment variable) or a local model rendered with its own chat template. Judgments go to
an append-only file as they arrive (`JudgmentStore`), so a killed run resumes with nothing judged twice; a reply
without a parseable verdict is asked again (`retries` times) and then recorded as unparseable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ftbench.api.generation import Prompt
from ftbench.evaluation.judging import (
    ORDERS,
    JudgmentStore,
    PairOutcome,
    candidate_outcome,
    combine,
    judge_messages,
    language_of,
    parse_verdict,
    summarise,
)
from ftbench.io import sha256_of_texts


@dataclass(frozen=True)
class JudgeSettings:
    """Who judges and how: the judge model, a server (None: the model runs here), the reply length, retries."""

    model: str
    url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 4
    request_timeout: float = 600.0
    max_new_tokens: int = 512
    retries: int = 2
    templates: str | None = None  # a folder overriding the shipped judge prompts


@dataclass(frozen=True)
class Pair:
    """One prompt with the baseline's (A side) and the candidate's (B side) answer, and its reference if any."""

    question: str
    baseline: str
    candidate: str
    reference: str | None = None


def open_judge(settings: JudgeSettings):
    """The judge's generation engine: the openai engine on the chat endpoint, or the local engine."""
    from ftbench.inference.engines import engine_options

    if settings.url:
        cls, options = engine_options(
            "openai",
            {
                "base_url": settings.url,
                "served_model": settings.model,
                "api": "chat",
                "api_key_env": settings.api_key_env,
                "concurrency": settings.concurrency,
                "request_timeout": settings.request_timeout,
            },
        )
        return cls(settings.model, None, options, loaded=(None, None))  # the server renders the messages
    cls, options = engine_options("local", {})
    return cls(settings.model, None, options)


def _prompt(engine, messages: list[dict]) -> Prompt:
    if engine.wants_messages:
        return Prompt("", [], messages)
    text = engine.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return Prompt(text, engine.tokenizer(text, add_special_tokens=False)["input_ids"], messages)


def rouge_l_gain(baseline: list[dict], candidate: list[dict]) -> list[float] | None:
    """Per prompt, the candidate's ROUGE-L minus the baseline's against the reference (prediction rows), which the
    judge's verdicts are checked against; None when no row has a reference."""
    from ftbench.metrics.scoring import score_pairs

    labels = [str(x.get("label") or "") for x in baseline]
    if not any(labels):
        return None
    a, b = (
        score_pairs([str(r["predict"]) for r in rows], labels, metrics=["rouge-l"]).samples["rouge-l"]
        for rows in (baseline, candidate)
    )
    return [q - p for p, q in zip(a, b)]


def header(pairs: Sequence[Pair], settings: JudgeSettings) -> dict:
    """What a judgments file holds judgments of: resuming needs the same answers, judge and prompts."""
    texts = (text for p in pairs for text in (p.question, p.baseline, p.candidate, p.reference or ""))
    return {
        "pairs_sha256": sha256_of_texts(texts),
        "n": len(pairs),
        "judge": settings.model,  # the judge is its model: the same one restarted on another port resumes
        "served": bool(settings.url),
        "max_new_tokens": settings.max_new_tokens,
        "templates": settings.templates,
    }


def judge(
    pairs: Sequence[Pair],
    settings: JudgeSettings,
    out: str,
    *,
    metric: Sequence[float] | None = None,
    engine=None,
    progress: bool = False,
) -> dict:
    """Judge every pair in both orders into ``out`` (resuming what is there) and summarise: counts, win rate with
    its CI, sign test, length split, agreement with ``metric`` (per pair: candidate minus baseline, e.g. ROUGE-L),
    the tokens spent, and every pair's verdicts and reasons."""
    from ftbench.inference.generate import GenerationParams

    store = JudgmentStore(out, header(pairs, settings))
    own = engine is None
    engine = engine or open_judge(settings)
    params = GenerationParams(max_new_tokens=settings.max_new_tokens)
    try:
        todo = [(i, order) for i in range(len(pairs)) for order in ORDERS if (i, order) not in store.done]
        attempts = dict.fromkeys(todo, 0)
        while todo:
            prompts = {}
            for k, (i, order) in enumerate(todo):
                p = pairs[i]
                a, b = (p.baseline, p.candidate) if order == "ab" else (p.candidate, p.baseline)
                messages = judge_messages(
                    p.question, a, b, p.reference, language=language_of(p.question), templates=settings.templates
                )
                prompts[k] = _prompt(engine, messages)
            again = []
            for results in engine.generate(prompts, list(range(len(todo))), settings.concurrency, params):
                for k, reply in results:
                    i, order = todo[k]
                    attempts[(i, order)] += 1
                    verdict = parse_verdict(reply)
                    if verdict is None and attempts[(i, order)] <= settings.retries:
                        again.append((i, order))
                        continue
                    store.add(
                        {
                            "index": i,
                            "order": order,
                            "verdict": verdict,
                            "attempts": attempts[(i, order)],
                            "reply": reply,
                        }
                    )
            todo = again
    finally:
        store.close()
        if own:
            engine.close()
    rows = store.done
    outcomes, per_pair = [], []
    for i, p in enumerate(pairs):
        first, second = (candidate_outcome(rows[(i, o)]["verdict"], o) for o in ORDERS)
        outcome, consistent = combine(first, second)
        longer = None if len(p.candidate) == len(p.baseline) else len(p.candidate) > len(p.baseline)
        direction = None if metric is None else (metric[i] > 0) - (metric[i] < 0)
        outcomes.append(PairOutcome(outcome, consistent, longer, direction))
        per_pair.append(
            {
                "index": i,
                "outcome": outcome,
                "consistent": consistent,
                "verdicts": {o: rows[(i, o)]["verdict"] for o in ORDERS},
                "reasons": {o: rows[(i, o)]["reply"] for o in ORDERS},
            }
        )
    return {**summarise(outcomes), "judge": settings.model, "tokens": dict(engine.usage), "pairs": per_pair}

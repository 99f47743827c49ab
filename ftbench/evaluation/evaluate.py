"""Evaluate a model (plus an optional LoRA adapter) on an lm-eval-format task YAML from `tasks/`.

`evaluate_task(task, model, ...)` -> `EvalResult`, run by one of two harnesses (who runs the evaluation), with a
generation engine (who generates: `ftbench.inference.engines.ENGINES`, plug-ins included):

* ``"ftbench"``: ftbench's harness doing what lm-eval's `simple_evaluate` and `HFLM.generate_until` do: the same
  documents, few-shot draws (one ``random.Random(1234)`` for all documents in order), prompt text or chat
  rendering (`eval_prompts`, the one prompt path for every engine), tokens, stop-string cut and scoring (the YAML's
  filters and metrics through lm-eval's code). A model in this process (`--engine local`) is decoded as lm-eval's
  HF model decodes it (its batches, greedy under the model's own generation_config), so both harnesses give the
  same prompts, answers and figures; docs/evaluation.md lists every point that had to match. Other engines
  (`openai`, `vllm`, plug-ins) answer the same prompts through `GenerationEngine.generate`.
* ``"lm-eval"``: `lm_eval.simple_evaluate` with its HF model (``peft=`` for the adapter), or its
  local-completions model on a server (`--engine openai --base-url`), mapped into the same result shape.

Heavy libraries (torch, transformers, lm-eval) are imported inside functions.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

from ftbench.api.errors import InputError, UsageError
from ftbench.api.generation import DEFAULT_ENGINE, Prompt
from ftbench.api.metrics import ScoreResult
from ftbench.evaluation.lm_eval_conventions import (
    DEFAULT_FEWSHOT_SEED,
    build_prompt,
    check_supported,
    encode,
    fewshot_examples,
    generation_settings,
    generation_used,
    lm_eval_generator,
    max_length,
    result_row,
)
from ftbench.evaluation.lm_eval_conventions import num_fewshot as shots_for

HARNESSES = ("ftbench", "lm-eval")  # who runs the evaluation (the generation engine is --engine)


def harness_and_engine(harness: str | None, engine: str | None, served: bool = False) -> tuple[str, str]:
    """(harness, generation engine) from eval's options, the old spellings included: ``--engine ftbench`` is
    harness ftbench with engine local; ``--engine lm-eval`` is harness lm-eval, generating with its HF model
    (engine local) or, with --base-url (``served``), with its local-completions model on that server (engine
    openai, whose options describe the server)."""
    if engine in HARNESSES:  # the old --engine spelling of a harness
        if harness not in (None, engine):
            raise UsageError(
                f"--engine {engine} is the old spelling of --harness {engine}, which contradicts "
                f"--harness {harness}: give --harness and a generation --engine"
            )
        harness, engine = engine, "openai" if served else DEFAULT_ENGINE
    harness = harness or HARNESSES[0]
    if harness not in HARNESSES:
        raise UsageError(f"--harness {harness}: choose from {', '.join(HARNESSES)}")
    return harness, engine or DEFAULT_ENGINE


@dataclass
class EvalResult:
    """Figures of one evaluation with their stderr, 95% interval and signatures; per-sample rows; timings.

    ``rows``: one dict per document, in document order: doc_id, doc, prompt, response, target, filtered (filter
    name -> extracted answer), metrics ("metric,filter" -> value). ``config``: what was run (model, shots, seed,
    chat template, generation settings used). ``score``: the ScoreResult `ftbench score` renders (with e.g. the
    GSM8K disagreement diagnosis).
    """

    task: str
    harness: str
    generation_engine: str
    n: int
    metrics: dict[str, float]
    stderr: dict[str, float | None]
    ci95: dict[str, list[float] | None]
    signatures: dict[str, str]
    rows: list[dict] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    score: ScoreResult | None = None

    @property
    def engine(self) -> str:
        """The old --engine name of this run (ftbench, openai, vllm, lm-eval, ...), kept in the text and --json
        output for scripts that read it: the harness, or the generation engine when it is not the default."""
        if self.harness == HARNESSES[0] and self.generation_engine != DEFAULT_ENGINE:
            return self.generation_engine
        return self.harness

    def to_json(self) -> dict[str, Any]:
        """The `ftbench eval --json` object (rows are left out: see ``--samples``)."""
        out = {
            "task": self.task,
            "engine": self.engine,
            "harness": self.harness,
            "generation_engine": self.generation_engine,
            "n": self.n,
            "metrics": self.metrics,
            "stderr": self.stderr,
            "ci95": self.ci95,
            "signatures": self.signatures,
            "config": self.config,
            "timings": self.timings,
        }
        if self.score is not None:
            out["uncertainty"] = self.score.uncertainty
            out.update(self.score.details)
        return out


@dataclass
class _Plan:
    """Everything both harnesses need to run one evaluation."""

    spec: Any  # ftbench.evaluation.tasks.TaskSpec
    model: str
    adapter: str | None
    docs: list[dict]
    shots: int
    until: list[str]
    max_gen_toks: int
    gen_kwargs: dict
    batch_size: int
    chat: bool
    multiturn: bool
    system_instruction: str | None
    seed: int
    placement: Any  # ftbench.inference.models.Placement
    template: Any = None  # a named ChatTemplate (--template), used instead of the tokenizer's chat template
    config: dict = field(default_factory=dict)  # reported as EvalResult.config
    timings: dict = field(default_factory=dict)


def evaluate_task(
    task: str,
    model: str,
    adapter: str | None = None,
    engine: str | None = None,
    limit: int | None = None,
    num_fewshot: int | None = None,
    batch_size: int = 16,
    max_gen_toks: int | None = None,
    apply_chat_template: bool = False,
    fewshot_as_multiturn: bool = True,
    system_instruction: str | None = None,
    fewshot_seed: int = DEFAULT_FEWSHOT_SEED,
    device: str | None = None,
    dtype: str | None = None,
    threads: int | None = None,
    include_path=None,
    samples_path: str | None = None,
    progress: bool = False,
    engine_options=None,
    template=None,
    harness: str | None = None,
    allow_other_base: bool = False,
) -> EvalResult:
    """Evaluate ``model`` (hub id, folder or ``tiny``; with a peft ``adapter``) on ``task`` (a name in the task
    folders, see `ftbench.evaluation.tasks.task_paths`; ``include_path`` replaces them; or a YAML path). Options
    mean what lm-eval's do; ``max_gen_toks`` overrides the YAML's. ``samples_path``: also write the per-sample rows
    there (JSONL). ``progress``: a progress bar on stderr.

    ``harness`` ftbench (default) or lm-eval runs the evaluation; ``engine`` (a name in `ENGINES`, default local)
    generates, with ``engine_options`` (that engine's options; default: made from ``device``/``dtype``/``threads``
    for engines that take them). The old names ``engine="ftbench"``/``"lm-eval"`` select the harness (see
    `harness_and_engine`). With harness lm-eval, engine openai means lm-eval's local-completions model against
    ``engine_options.base_url``. ``template``: a named `ChatTemplate` for the chat rendering (with
    ``apply_chat_template``; not with lm-eval, which knows only the tokenizer's)."""
    from ftbench.evaluation.tasks import load_task
    from ftbench.inference.engines import ENGINES
    from ftbench.inference.models import check_adapter, pick_placement

    start = time.perf_counter()
    harness, engine = harness_and_engine(harness, engine, bool(getattr(engine_options, "base_url", None)))
    engine_cls = ENGINES.load(engine)
    if engine_options is None:  # a Python caller: the placement arguments, for an engine that takes them
        placement = {"device": device, "dtype": dtype, "threads": threads}
        engine_options = engine_cls.options_from(
            {k: v for k, v in placement.items() if v is not None and k in engine_cls.option_names()}
        )
    if adapter:
        check_adapter(adapter, model, allow_other_base=allow_other_base)
    spec = load_task(task, include_path)
    shots, notes = shots_for(spec, num_fewshot)
    until, max_new, gen_kwargs = generation_settings(spec, max_gen_toks)
    if template is not None and (harness == "lm-eval" or not apply_chat_template):
        raise UsageError(
            "--template renders the chat prompt: use it with --apply-chat-template and the ftbench "
            "harness (lm-eval renders with the tokenizer's own chat template)"
        )
    if harness != "lm-eval":
        check_supported(spec, gen_kwargs)
    docs = spec.docs()[:limit] if limit else spec.docs()
    if not docs:
        raise InputError(f"{spec.path}: the {spec.test_split} split has no documents")
    if threads:
        import torch

        torch.set_num_threads(threads)
    plan = _Plan(
        spec,
        model,
        adapter,
        docs,
        shots,
        until,
        max_new,
        gen_kwargs,
        batch_size,
        apply_chat_template,
        fewshot_as_multiturn and apply_chat_template,
        system_instruction,
        fewshot_seed,
        pick_placement(device, dtype),
        template,
    )
    plan.config = {
        "template": template.name if template is not None else None,
        "model": model,
        "adapter": adapter,
        "num_fewshot": shots,
        "fewshot_seed": fewshot_seed,
        "apply_chat_template": plan.chat,
        "fewshot_as_multiturn": plan.multiturn,
        "system_instruction": system_instruction,
        "batch_size": batch_size,
        "limit": limit,
        "device": plan.placement.device,
        "dtype": plan.placement.dtype,
        "task_file": str(spec.path),
        "generation": {"until": until, "max_gen_toks": max_new, **gen_kwargs},
    }

    if harness == "lm-eval":
        from ftbench.evaluation.lm_eval_harness import run_lm_eval

        rows, given = run_lm_eval(plan, limit, max_gen_toks, engine_options)
    else:
        rows, given = _run_ftbench(plan, engine_cls, engine_options, progress), None

    started = time.perf_counter()
    score = summarise(spec, rows, given)
    _add_eval_signature(score, plan)
    if plan.config.get("truncated_prompts"):
        notes.append(
            f"{plan.config['truncated_prompts']} prompts were longer than the model's maximum length minus "
            "max_gen_toks and lost their start (lm-eval truncates them the same way)"
        )
    if notes:
        score.details.setdefault("notes", []).extend(notes)
    plan.timings["score_seconds"] = round(time.perf_counter() - started, 3)
    plan.timings["total_seconds"] = round(time.perf_counter() - start, 3)
    if samples_path:
        write_rows(samples_path, rows)
    return EvalResult(
        spec.name,
        harness,
        engine,
        len(rows),
        score.metrics,
        score.stderr,
        score.ci95,
        score.signatures,
        rows,
        plan.config,
        plan.timings,
        score,
    )


# --- the ftbench harness ------------------------------------------------------------------------------------
def eval_prompts(plan: _Plan, tokenizer) -> list[str]:
    """Every document's prompt, as lm-eval's ``fewshot_context`` gives it (few-shot draws, plain text or chat
    rendering, a named template): the one prompt path, whichever engine generates."""
    examples = fewshot_examples(plan.spec, plan.docs, plan.shots, plan.seed)
    return [
        build_prompt(
            plan.spec, doc, ex, tokenizer if plan.chat else None, plan.system_instruction, plan.multiturn, plan.template
        )
        for doc, ex in zip(plan.docs, examples)
    ]


def _run_ftbench(plan: _Plan, engine_cls, options, progress: bool) -> list[dict]:
    """The prompts of `eval_prompts`, answered by the generation engine: a model in this process decodes as
    lm-eval's HF model does (`_decode_like_hflm`); any other engine gets them through its `generate`."""
    from ftbench.inference.generate import GenerationParams

    started = time.perf_counter()
    engine = engine_cls.for_evaluation(plan.model, plan.adapter, options, template=plan.template)
    plan.timings["load_seconds"] = round(time.perf_counter() - started, 3)
    try:
        if engine.wants_messages:
            raise UsageError(
                "--api chat: the ftbench harness sends the prompts it renders; use --api completions, "
                "or --harness lm-eval (its chat model)"
            )
        prompts = eval_prompts(plan, engine.tokenizer)
        ids = [encode(engine.tokenizer, p) for p in prompts]
        started = time.perf_counter()
        lm = engine.in_process_model()
        if lm is not None:
            responses = _decode_like_hflm(plan, lm, engine.tokenizer, prompts, ids, progress)
        else:  # the server (or vLLM) decides on context length: prompts are not truncated here
            params = GenerationParams(max_new_tokens=plan.max_gen_toks, stop=tuple(u for u in plan.until if u))
            plan.config["generation"].update(engine=engine.describe(params), truncated_prompts=None)
            responses = _collect(
                engine.generate(
                    {i: Prompt(p, ids[i]) for i, p in enumerate(prompts)}, range(len(prompts)), plan.batch_size, params
                ),
                len(prompts),
                progress,
            )
            plan.config["tokens"] = dict(engine.usage)
        plan.timings["generate_seconds"] = round(time.perf_counter() - started, 3)
    finally:
        engine.close()
    return [result_row(plan.spec, i, doc, prompts[i], responses[i]) for i, doc in enumerate(plan.docs)]


def _decode_like_hflm(
    plan: _Plan, lm, tokenizer, prompts: list[str], ids: list[list[int]], progress: bool
) -> list[str]:
    """lm-eval's HFLM.generate_until: prompts left-truncated to the model's length minus max_gen_toks, its
    Collator order and fixed batches, greedy under the model's own generation_config."""
    max_ctx = max_length(lm, tokenizer) - plan.max_gen_toks
    if max_ctx <= 0:
        raise UsageError(
            f"--max-gen-toks {plan.max_gen_toks}: must be below the model's maximum length "
            f"{max_ctx + plan.max_gen_toks}"
        )
    plan.config["truncated_prompts"] = sum(len(x) > max_ctx for x in ids)
    generator = lm_eval_generator(lm, tokenizer, plan.until, plan.max_gen_toks, plan.gen_kwargs)
    plan.config["generation"].update(generation_used(generator))
    order = sorted(range(len(prompts)), key=lambda i: (-len(ids[i]), prompts[i]))  # lm-eval's Collator order
    # a single window: the generator keeps this order, so its batches are lm-eval's batches
    results = generator.run([ids[i][-max_ctx:] for i in order], plan.batch_size, window=len(order), keep_batches=True)
    by_position = _collect(results, len(order), progress)
    responses = [""] * len(prompts)
    for j, text in enumerate(by_position):
        responses[order[j]] = text
    return responses


def _collect(results, n: int, progress: bool) -> list[str]:
    """The answers of (index, text) result lists, by index, with a progress bar."""
    from tqdm import tqdm

    responses = [""] * n
    with tqdm(total=n, unit="doc", desc="eval", file=sys.stderr, disable=not progress) as bar:
        for batch in results:
            for i, text in batch:
                responses[i] = text
            bar.update(len(batch))
    return responses


# --- scoring --------------------------------------------------------------------------------------------------
def summarise(spec, rows: list[dict], given: dict | None = None) -> ScoreResult:
    """Figures (lm-eval's aggregation of the per-sample values, or the ``given`` ones), lm-eval's stderr, the 95%
    bootstrap interval, signatures; for GSM8K also issue 3's strict/flexible disagreement diagnosis."""
    import numpy as np

    from ftbench.metrics import uncertainty

    n, figures = len(rows), list(rows[0]["metrics"]) if rows else []
    aggregation = {m["metric"]: m.get("aggregation", "mean") for m in spec.metrics}
    result = ScoreResult(
        scorer=spec.name,
        n=n,
        metrics={},
        stderr={},
        ci95={},
        signatures={},  # the task scores
        uncertainty={"stderr": uncertainty.STDERR_METHOD, "ci95": uncertainty.CI_METHOD},
    )
    means = {}
    for f in figures:
        values = result.samples[f] = [float(r["metrics"][f]) for r in rows]
        agg = aggregation.get(f.partition(",")[0], "mean")
        if agg == "mean":
            means[f] = np.asarray(values)
        if given is not None:
            result.metrics[f], result.stderr[f] = given["metrics"][f], given["stderr"].get(f)
        elif agg == "mean":
            result.metrics[f], result.stderr[f] = sum(values) / n, uncertainty.mean_stderr(values)  # lm-eval's
        else:
            from lm_eval.api.registry import get_aggregation

            result.metrics[f], result.stderr[f] = float(get_aggregation(agg)(values)), None
    result.ci95.update({f: None for f in figures})
    result.ci95.update(uncertainty.mean_intervals(means, n))
    if _scored_like_gsm8k(spec):
        _add_gsm8k_diagnosis(result, rows)
    else:
        _add_task_signatures(spec, result)
    return result


def _scored_like_gsm8k(spec) -> bool:
    """The task's filters and metric are lm-eval gsm8k's (so `ftbench score --task gsm8k` applies)."""
    from ftbench.metrics.gsm8k import EXACT_MATCH_KWARGS, FILTERS

    patterns = {
        f["name"]: [s.get("regex_pattern") for s in f["filter"] if s.get("function") == "regex"] for f in spec.filters
    }
    metric = {
        k: v
        for k, v in (spec.metrics[0] if len(spec.metrics) == 1 else {}).items()
        if k not in ("aggregation", "higher_is_better")
    }
    return patterns == {name: [pattern] for name, (pattern, _) in FILTERS.items()} and metric == {
        "metric": "exact_match",
        **EXACT_MATCH_KWARGS,
    }


def _add_gsm8k_diagnosis(result: ScoreResult, rows: list[dict]) -> None:
    """`score_pairs(scorer="gsm8k")` on the same responses: its signatures, extractions and diagnosis."""
    from ftbench.metrics.scoring import score_pairs

    gsm = score_pairs([r["response"] for r in rows], [str(r["target"]) for r in rows], scorer="gsm8k")
    result.signatures.update(gsm.signatures)
    result.details.update(gsm.details)
    result.samples.update({name: gsm.samples[name] for name in ("strict", "flexible", "cause")})
    for figure, value in gsm.metrics.items():  # the same lm-eval code on the same text: a difference is a bug
        if value != result.metrics.get(figure, value):
            result.details.setdefault("notes", []).append(
                f"{figure}: ftbench score gives {value} on these responses, the task's scoring {result.metrics[figure]}"
            )


def _add_task_signatures(spec, result: ScoreResult) -> None:
    from ftbench import __version__
    from ftbench.api.metrics import format_signature
    from ftbench.metrics.environment import package_version

    version = (spec.config.get("metadata") or {}).get("version")
    hook = spec.config.get("process_results")
    for figure in result.metrics:
        metric, _, filt = figure.partition(",")
        result.signatures[figure] = format_signature(
            figure,
            task=f"{spec.name}-v{version}" if version is not None else spec.name,
            filter=filt,
            metric=repr(hook) if callable(hook) else metric,
            impl=f"lm-eval-{package_version('lm_eval')}",
            ftbench=__version__,
        )


def _add_eval_signature(result: ScoreResult, plan: _Plan) -> None:
    """What else decides an evaluation's figures: shots and their seed, chat template, stop strings, length."""
    from ftbench.api.metrics import format_signature

    extra = format_signature(
        "",
        shots=plan.shots,
        fewshot_seed=plan.seed if plan.shots else None,
        chat=("multiturn" if plan.multiturn else "yes") if plan.chat else "no",
        system=repr(plan.system_instruction) if plan.system_instruction else None,
        gen=f"greedy,max-gen-toks:{plan.max_gen_toks}",
        until=",".join(repr(u) for u in plan.until),
    )
    for figure, sig in result.signatures.items():
        result.signatures[figure] = sig + extra


def write_rows(path: str, rows: list[dict]) -> None:
    """One JSON object per document, in document order."""
    import orjson

    with open(path, "wb") as out:
        for row in rows:
            out.write(orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY, default=str) + b"\n")

"""lm-eval's conventions for `generate_until` tasks, reproduced for ftbench's evaluation harness.

How lm-eval 0.4.x (`simple_evaluate`, `ConfigurableTask.fewshot_context`, `HFLM.generate_until`) turns a task
YAML and its options into model inputs and one `generate()` call: the shot count, the generation settings, the
few-shot draws, the prompt (plain text or chat template), the tokens, and a `Generator` configured to decode as
lm-eval's HF model does. `ftbench.evaluation.evaluate` runs them; docs/evaluation.md explains each point.
"""

from __future__ import annotations

import random
from typing import Sequence

from ftbench.api.errors import InputError, UsageError

DEFAULT_MAX_GEN_TOKS = 256  # lm-eval HFLM.max_gen_toks
DEFAULT_FEWSHOT_SEED = 1234  # lm-eval simple_evaluate(fewshot_random_seed=...)
DEFAULT_MAX_LENGTH = 2048  # lm-eval HFLM when neither the model config nor the tokenizer gives one
_MAX_TOKEN_ALIASES = ("max_gen_toks", "max_new_tokens", "max_tokens", "max_completion_tokens")  # lm-eval's order


def num_fewshot(spec, requested: int | None) -> tuple[int, list[str]]:
    """lm-eval's rule: the option overrides the YAML, except that a YAML ``num_fewshot: 0`` is never overridden."""
    configured = spec.config.get("num_fewshot")
    if requested is None:
        return int(configured or 0), []
    if configured == 0 and requested:
        return 0, [f"{spec.name} sets num_fewshot: 0, which lm-eval never overrides; --num-fewshot was ignored"]
    return requested, []


def generation_settings(spec, max_gen_toks: int | None = None) -> tuple[list[str], int, dict]:
    """(until, max new tokens, other generate() kwargs) as lm-eval's TaskConfig and `normalize_gen_kwargs` make
    them: no generation_kwargs means greedy until the fewshot delimiter, a missing ``until`` means the fewshot
    delimiter, the first of max_gen_toks/max_new_tokens/max_tokens/max_completion_tokens wins (default 256)."""
    kwargs = dict(spec.config.get("generation_kwargs") or {"until": [spec.fewshot_delimiter], "do_sample": False})
    if max_gen_toks is not None:
        kwargs["max_gen_toks"] = max_gen_toks
    until = kwargs.pop("until", [spec.fewshot_delimiter])
    until = [until] if isinstance(until, str) else list(until)
    sizes = [s for s in (kwargs.pop(alias, None) for alias in _MAX_TOKEN_ALIASES) if s is not None]
    if not kwargs.get("do_sample") and not float(kwargs.get("temperature") or 0.0):
        for name in ("do_sample", "temperature"):  # greedy, which generate() gets as do_sample=False
            kwargs.pop(name, None)
    return until, int(sizes[0]) if sizes else DEFAULT_MAX_GEN_TOKS, kwargs


def check_supported(spec, gen_kwargs: dict) -> None:
    """Refuse, in one line, what the ftbench harness does not reproduce (lm-eval runs these tasks)."""
    fewshot_cfg = dict(spec.config.get("fewshot_config") or {})
    sampler = fewshot_cfg.get("sampler", "default")
    problems = [f"fewshot_config.{k}" for k in sorted(set(fewshot_cfg) - {"sampler", "samples", "split"})]
    problems += [f"fewshot_config.sampler {sampler}"] if sampler not in ("default", "first_n") else []
    problems += [k for k in ("gen_prefix", "doc_to_choice", "use_prompt") if spec.config.get(k)]
    problems += ["repeats > 1"] if int(spec.config.get("repeats") or 1) > 1 else []
    problems += (
        ["sampling (do_sample/temperature)"]
        if gen_kwargs.get("do_sample") or float(gen_kwargs.get("temperature") or 0.0) > 0
        else []
    )
    if problems:
        raise InputError(
            f"{spec.path}: {', '.join(problems)}: not reproduced by the ftbench harness; "
            "use --engine lm-eval (= --harness lm-eval)"
        )


def fewshot_examples(spec, docs: Sequence[dict], k: int, seed: int = DEFAULT_FEWSHOT_SEED) -> list[list[dict]]:
    """The few-shot examples lm-eval puts before each document, in document order.

    lm-eval's ContextSampler holds one ``random.Random(seed)`` that every document's ``sample(pool, k)`` draws
    from in turn (so a document's examples depend on the documents before it); when the pool is the test split,
    k + 1 are drawn and the document itself is dropped. ``fewshot_config: {sampler: first_n}`` takes the first k;
    a ``fewshot_config.samples`` list is the pool when there is no ``fewshot_split``.
    """
    if k <= 0:
        return [[] for _ in docs]
    fewshot_cfg = dict(spec.config.get("fewshot_config") or {})
    sampler = fewshot_cfg.get("sampler", "default")  # "default" or "first_n" (see check_supported)
    split = fewshot_cfg.get("split", spec.config.get("fewshot_split"))
    if split is None and isinstance(fewshot_cfg.get("samples"), list):
        pool = list(fewshot_cfg["samples"])
    else:
        pool = spec.docs(
            split or spec.config.get("training_split") or spec.config.get("validation_split") or spec.test_split
        )
    exclude = split is not None and split == spec.config.get("test_split")
    if sampler == "first_n":
        return [([d for d in pool if d != doc] if exclude else pool)[:k] for doc in docs]
    rnd, out = random.Random(seed), []
    for doc in docs:
        if not exclude:
            out.append(rnd.sample(pool, k))
            continue
        drawn = [d for d in rnd.sample(pool, k + 1) if d != doc][:k]
        out.append(drawn if len(drawn) == k else rnd.sample([d for d in pool if d != doc], k))
    return out


def build_prompt(
    spec,
    doc: dict,
    examples: Sequence[dict],
    tokenizer=None,
    system_instruction: str | None = None,
    fewshot_as_multiturn: bool = True,
    template=None,
) -> str:
    """The context lm-eval's ``fewshot_context`` gives `generate_until`: plain text without ``tokenizer``, else the
    conversation rendered with its chat template (the examples as turns if ``fewshot_as_multiturn``), or with a
    named LLaMA-Factory ``template`` (`ftbench.inference.templates`) when one is given."""
    from ftbench.evaluation.tasks import render_template

    description = spec.config.get("description") or ""
    if description:
        description = doc[description] if description in doc else render_template(description, doc)
    system = _delimit(system_instruction, description, spec.fewshot_delimiter)
    body = spec.fewshot_context(doc, examples)  # the examples, then the document's text
    if tokenizer is None:
        return system + body  # in plain text lm-eval's system message carries no delimiter
    turns = [{"role": "user", "content": body}]
    if fewshot_as_multiturn:
        turns = []
        for ex in examples:
            target = spec.doc_to_target(ex)
            turns += [
                {"role": "user", "content": spec.doc_to_text(ex)},
                {"role": "assistant", "content": str(target[0] if isinstance(target, list) else target)},
            ]
        turns.append({"role": "user", "content": spec.doc_to_text(doc)})
    messages = ([{"role": "system", "content": system}] if system else []) + turns
    return render_named(tokenizer, messages, template) if template is not None else render_chat(tokenizer, messages)


def render_named(tokenizer, messages: list[dict], template) -> str:
    """The conversation as a named template renders a prompt (what `ftbench predict --template` gives the model)."""
    from ftbench.data.formats import ASSISTANT, Sample
    from ftbench.inference.chat import prompt_text_and_ids

    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    turns = [(m["role"], m["content"]) for m in messages if m["role"] != "system"] + [(ASSISTANT, "")]
    return prompt_text_and_ids(tokenizer, Sample(turns, system, "", "<eval>", 0, None), template=template)[0]


def _delimit(prefix: str | None, suffix: str | None, delimiter: str) -> str:
    """lm-eval's maybe_delimit: join with the delimiter unless either side has whitespace at the join."""
    if not prefix or not suffix:
        return prefix or suffix or ""
    return prefix + suffix if prefix[-1].isspace() or suffix[0].isspace() else prefix + delimiter + suffix


def render_chat(tokenizer, messages: list[dict]) -> str:
    """HFLM.apply_chat_template: generation prompt on; a template that rejects a system turn gets none."""
    import jinja2

    if not getattr(tokenizer, "chat_template", None):
        raise UsageError("--apply-chat-template: the tokenizer has no chat template")
    kwargs = dict(tokenize=False, add_generation_prompt=True, continue_final_message=False)
    try:
        return tokenizer.apply_chat_template(messages, **kwargs)
    except jinja2.exceptions.TemplateError:
        return tokenizer.apply_chat_template([m for m in messages if m["role"] != "system"], **kwargs)


def encode(tokenizer, text: str) -> list[int]:
    """HFLM's encoding of a context: the tokenizer's own special tokens (BOS for Llama, none for Qwen), none if
    the text already starts with the BOS text (as a chat template's output may)."""
    bos = getattr(tokenizer, "bos_token", None)
    return tokenizer(text, **({"add_special_tokens": False} if bos and text.startswith(bos) else {}))["input_ids"]


def max_length(lm, tokenizer) -> int:
    """lm-eval's resolve_max_length: the model config's context length, else the tokenizer's, else 2048."""
    cfg = lm.config.get_text_config()
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        if getattr(cfg, attr, None) is not None:
            return int(getattr(cfg, attr))
    model_max = getattr(tokenizer, "model_max_length", None)
    return int(model_max) if model_max is not None and model_max < int(1e30) else DEFAULT_MAX_LENGTH


def lm_eval_generator(lm, tokenizer, until: Sequence[str], max_new: int, gen_kwargs: dict):
    """ftbench's Generator (batching, left padding, stop strings) set up to decode as lm-eval's HFLM does.

    lm-eval calls ``generate()`` without a generation config, so the model's generation_config.json applies
    (e.g. repetition_penalty; a max_new_tokens there beats lm-eval's max_length); an answer ends only at its eos
    ids, and the eos token's text joins the stop strings. `ftbench predict` deliberately does neither.
    """
    import copy

    from ftbench.inference.generate import GenerationParams, Generator

    eos_text = tokenizer.eos_token if tokenizer.eos_token_id is not None else None
    stops = [s for s in list(until) + ([eos_text] if eos_text not in until else []) if s]
    model_config = (lm.get_base_model() if hasattr(lm, "get_base_model") else lm).generation_config
    config = copy.deepcopy(model_config)
    config.update(**gen_kwargs)  # the YAML's other generation_kwargs, passed to generate() as lm-eval does
    config.update(
        do_sample=False,
        temperature=None,
        top_p=None,
        top_k=None,
        pad_token_id=tokenizer.pad_token_id,
        use_cache=True,
        max_new_tokens=model_config.max_new_tokens or max_new,
        max_length=None,
    )
    return Generator(lm, tokenizer, GenerationParams(max_new_tokens=max_new, stop=tuple(stops)), config=config)


def generation_used(generator) -> dict:
    """The generation settings used, and the model's generation_config fields that came with them."""
    cfg = generator.config
    skip = {
        "transformers_version",
        "eos_token_id",
        "pad_token_id",
        "bos_token_id",
        "do_sample",
        "max_new_tokens",
        "use_cache",
        "temperature",
        "top_p",
        "top_k",
    }
    return {
        "do_sample": False,
        "max_new_tokens": cfg.max_new_tokens,
        "eos_token_id": generator.eos_ids,
        "pad_token_id": generator.pad_id,
        "stop": list(generator.params.stop),
        "from_model_generation_config": {k: v for k, v in cfg.to_diff_dict().items() if k not in skip},
    }


def result_row(spec, doc_id: int, doc: dict, prompt: str, response: str) -> dict:
    """One document's per-sample row (the --samples file): the response filtered and scored by the task."""
    target = spec.doc_to_target(doc)
    return {
        "doc_id": doc_id,
        "doc": doc,
        "prompt": prompt,
        "response": response,
        "target": target if isinstance(target, (str, int, float)) else str(target),
        "filtered": spec.apply_filters(response, doc),
        "metrics": spec.process_results(doc, response),
    }

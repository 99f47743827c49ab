"""The lm-eval harness (`ftbench eval --harness lm-eval`): `lm_eval.simple_evaluate` on the same task file, with
lm-eval's HF model (the local engine's options: device, dtype), or its `local-completions` /
`local-chat-completions` models pointed at `--base-url` (the `openai` engine's options). The ftbench harness
sends its own prompts to a server through the openai engine itself (`evaluate._run_ftbench`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time

from ftbench.api.errors import UsageError


def run_lm_eval(plan, limit: int | None, max_gen_toks: int | None, options=None) -> tuple[list[dict], dict]:
    """simple_evaluate on the same task file (its HF model, or its local-completions model on a server);
    returns rows like the ftbench harness's and lm-eval's figures."""
    from lm_eval.tasks import TaskManager

    from ftbench.inference.local_engine import LocalOptions

    spec = plan.spec
    served = getattr(options, "base_url", None)
    if not served and not isinstance(options, LocalOptions):
        raise UsageError(
            "--harness lm-eval generates with its own HF model (--engine local) or on a server "
            "(--engine openai --base-url)"
        )
    if served:
        model, model_args = lm_eval_api_model(plan, options)
    else:
        model, model_args = "hf", hf_model_args(plan.model, plan.adapter, plan.placement)
    plan.config["lm_eval_model"] = model
    started = time.perf_counter()
    with api_key_for_lm_eval(options) if served else contextlib.nullcontext():
        res = quiet_simple_evaluate(
            model=model,
            model_args=model_args,
            tasks=[spec.name],
            num_fewshot=plan.shots,
            batch_size=1 if served else plan.batch_size,
            device=plan.placement.device,
            limit=limit,
            apply_chat_template=plan.chat,
            fewshot_as_multiturn=plan.multiturn,
            system_instruction=plan.system_instruction,
            fewshot_random_seed=plan.seed,
            gen_kwargs={"max_gen_toks": max_gen_toks} if max_gen_toks is not None else None,
            task_manager=TaskManager(include_path=str(spec.path.parent), include_defaults=False),
        )
    plan.timings["lm_eval_seconds"] = round(time.perf_counter() - started, 3)
    rows: dict[int, dict] = {}
    for s in sorted(res["samples"][spec.name], key=lambda s: s["doc_id"]):
        row = rows.setdefault(
            s["doc_id"],
            {
                "doc_id": s["doc_id"],
                "doc": s["doc"],
                "prompt": s["arguments"][0][0],
                "response": s["resps"][0][0],
                "target": s["target"],
                "filtered": {},
                "metrics": {},
            },
        )
        row["filtered"][s["filter"]] = s["filtered_resps"][0]
        row["metrics"].update({f"{m},{s['filter']}": s[m] for m in s["metrics"]})
    figures, given = res["results"][spec.name], {"metrics": {}, "stderr": {}}
    for key in rows[min(rows)]["metrics"]:
        metric, _, filt = key.partition(",")
        stderr = figures.get(f"{metric}_stderr,{filt}")
        given["metrics"][key] = float(figures[key])
        given["stderr"][key] = float(stderr) if isinstance(stderr, (int, float)) else None
    return [rows[k] for k in sorted(rows)], given


def hf_model_args(model: str, adapter: str | None, placement) -> dict:
    """model_args of lm-eval's HF model for ``model`` (hub id, folder or ``tiny``) with a peft ``adapter``, at
    ``placement``'s dtype, with the attention ftbench's own engine would load it with."""
    from ftbench.inference.models import generation_attention, resolve_model

    args = {"pretrained": resolve_model(model), "dtype": placement.dtype}
    attention = generation_attention(args["pretrained"], placement.device)
    if attention:
        args["attn_implementation"] = attention  # as ftbench's engine loads the model
    if adapter:
        args["peft"] = adapter
    return args


@contextlib.contextmanager
def quiet_lm_eval():
    """lm-eval's INFO/WARNING chatter held back (ftbench reports what matters) and its prints sent to stderr
    (stdout is for ftbench's own output, --json)."""
    logger = logging.getLogger("lm_eval")
    level, logger.level = logger.level, logging.ERROR
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        logger.setLevel(level)


def quiet_simple_evaluate(**kwargs) -> dict:
    """`lm_eval.simple_evaluate(**kwargs)` with per-sample logs, quietly (`quiet_lm_eval`)."""
    import lm_eval

    with quiet_lm_eval():
        return lm_eval.simple_evaluate(log_samples=True, **kwargs)


def lm_eval_api_model(plan, options) -> tuple[str, dict]:
    """lm-eval's model name and model_args for a server at ``options.base_url`` (`OpenAIOptions`):
    `local-completions` (prompts as text: `tokenized_requests=False`, since not every server takes token ids) or,
    with ``api="chat"``, `local-chat-completions` (lm-eval then needs --apply-chat-template)."""
    import importlib.util

    from ftbench.inference.models import resolve_model
    from ftbench.inference.openai_engine import served_model_name
    from ftbench.net.http import CHAT, COMPLETIONS, completions_url

    if importlib.util.find_spec("tenacity") is None:  # lm-eval's API models need its "api" extra
        raise UsageError("--harness lm-eval --base-url needs lm-eval's API extra: pip install 'lm-eval[api]'")
    chat = options.api == "chat"
    if chat and not plan.chat:
        raise UsageError(
            "--api chat with --harness lm-eval needs --apply-chat-template (lm-eval's chat model sends messages)"
        )
    if plan.adapter:
        raise UsageError(
            "--harness lm-eval --base-url: the server applies adapters; pass its name as "
            "--served-model (docs/scaling.md)"
        )
    args = {
        "model": served_model_name(plan.model, options.served_model),
        "base_url": completions_url(options.base_url, CHAT if chat else COMPLETIONS),
        "tokenizer": resolve_model(plan.model),
        "tokenizer_backend": "huggingface",
        "tokenized_requests": False,
        "num_concurrent": options.concurrency,
        "max_retries": max(1, options.max_retries),
        "timeout": int(options.request_timeout),
        "max_gen_toks": plan.max_gen_toks,
    }
    if chat:
        args.pop("tokenizer_backend")
        args.pop("tokenized_requests")
    return ("local-chat-completions" if chat else "local-completions"), args


@contextlib.contextmanager
def api_key_for_lm_eval(options):
    """lm-eval's API models read OPENAI_API_KEY; a key kept under another name is handed over for the run only
    (through the environment, never in model_args, which lm-eval logs)."""
    from ftbench.net.http import api_key_from_env

    key = api_key_from_env(options.api_key_env)
    saved = os.environ.get("OPENAI_API_KEY")
    if key:
        os.environ["OPENAI_API_KEY"] = key
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("OPENAI_API_KEY", None)
        else:
            os.environ["OPENAI_API_KEY"] = saved

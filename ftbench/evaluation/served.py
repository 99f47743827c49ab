"""The lm-eval harness on a server: lm-eval's `local-completions` / `local-chat-completions` models pointed at
`--base-url`, configured from the `openai` engine's options (the ftbench harness sends its prompts to a server
through that engine itself, `evaluate._run_ftbench`).
"""

from __future__ import annotations

import contextlib
import os

from ftbench.api.errors import UsageError


def lm_eval_api_model(plan, options) -> tuple[str, dict]:
    """lm-eval's model name and model_args for a server at ``options.base_url`` (`OpenAIOptions`):
    `local-completions` (prompts as text: `tokenized_requests=False`, since not every server takes token ids) or,
    with ``api="chat"``, `local-chat-completions` (lm-eval then needs --apply-chat-template)."""
    from ftbench.net.http import CHAT, COMPLETIONS, completions_url
    from ftbench.inference.models import resolve_model
    from ftbench.inference.openai_engine import served_model_name

    import importlib.util

    if importlib.util.find_spec("tenacity") is None:  # lm-eval's API models need its "api" extra
        raise UsageError("--harness lm-eval --base-url needs lm-eval's API extra: pip install 'lm-eval[api]'")
    chat = options.api == "chat"
    if chat and not plan.chat:
        raise UsageError("--api chat with --harness lm-eval needs --apply-chat-template (lm-eval's chat model "
                         "sends messages)")
    if plan.adapter:
        raise UsageError("--harness lm-eval --base-url: the server applies adapters; pass its name as "
                         "--served-model (docs/scaling.md)")
    args = {"model": served_model_name(plan.model, options.served_model),
            "base_url": completions_url(options.base_url, CHAT if chat else COMPLETIONS),
            "tokenizer": resolve_model(plan.model), "tokenizer_backend": "huggingface", "tokenized_requests": False,
            "num_concurrent": options.concurrency, "max_retries": max(1, options.max_retries),
            "timeout": int(options.request_timeout), "max_gen_toks": plan.max_gen_toks}
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

"""The options every command shares (--json, --quiet, --debug) and the one way a command prints --json."""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

import click

from ftbench.data.schema import MAX_SEEDS


@dataclass
class Settings:
    """The options every command shares; set on the group or on the command, whichever is given."""

    json: bool = False
    quiet: bool = False
    debug: bool = False


def settings(ctx: click.Context) -> Settings:
    root = ctx.find_root()
    if not isinstance(root.obj, Settings):
        root.obj = Settings()
    return root.obj


def _set_flag(name: str):
    def callback(ctx: click.Context, _param, value: bool):
        if value:
            setattr(settings(ctx), name, True)
        return value

    return callback


allow_other_base_option = click.option(
    "--allow-other-base",
    is_flag=True,
    help="Apply an adapter whose adapter_config.json names another base model than --model (only when both "
    "names are the same model).",
)


class SeedsType(click.ParamType):
    """--seeds: a count of trainings (1 to MAX_SEEDS) or auto."""

    name = "N|auto"

    def convert(self, value, param, ctx):
        if value == "auto" or isinstance(value, int):
            return value
        try:
            return click.IntRange(1, MAX_SEEDS).convert(int(value), param, ctx)
        except ValueError:
            self.fail(f"{value!r} is not a number of seeds (1-{MAX_SEEDS}) or auto", param, ctx)


# --seeds: as many trainings as asked, differing only in `seed` (their spread is in every interval)
seeds_option = click.option(
    "--seeds",
    type=SeedsType(),
    help="Train this many times, seeds seed, seed+1, ... (LoRA init, data order, dropout); the base model is "
    "evaluated once, every figure is the mean over seeds with a 95% CI over seeds and samples together. "
    "auto: 2, and a third where a verdict's interval is on the edge of 0. Default 1 (training noise not measured).",
)


def judge_options(f):
    """--judge-model and --judge-url (the YAML's `judge:`): a judge model compares base and fine-tuned answers."""
    f = click.option(
        "--judge-url",
        help="An OpenAI-compatible server (its /chat/completions) serving --judge-model; the API key comes from "
        "the variable named by judge: api_key_env (default OPENAI_API_KEY).",
    )(f)
    return click.option(
        "--judge-model",
        help="A judge model: its name at --judge-url, or a local model (hub id, folder, smollm2). It compares the "
        "base and the fine-tuned answer to every held-out and retention prompt, in both orders (MT-Bench's "
        "pairwise judge). Off by default: a judge needs a strong model.",
    )(f)


def benchmark_options(f):
    """--benchmark TASK[,TASK] and --benchmark-limit N (train-and-compare and sweep)."""
    f = click.option(
        "--benchmark-limit",
        type=click.IntRange(1),
        help="Documents per --benchmark task (lm-eval's --limit; default all).",
    )(f)
    return click.option(
        "--benchmark",
        metavar="TASK[,TASK]",
        help="lm-eval tasks to run on the base and the fine-tuned model, compared like GSM8K: names in lm-eval's "
        "registry (mmlu, arc_easy, ceval-valid, cmmlu, ifeval, ...) or task YAML paths; run by lm-eval's own "
        "engine (multiple_choice and loglikelihood tasks too). Default none.",
    )(f)


def common_options(f):
    """Add --json, --quiet and --debug to a command (they may also be given before the command name)."""
    f = click.option(
        "--debug",
        is_flag=True,
        expose_value=False,
        callback=_set_flag("debug"),
        help="Show tracebacks and internal detail.",
    )(f)
    f = click.option(
        "--quiet", "-q", is_flag=True, expose_value=False, callback=_set_flag("quiet"), help="Print only errors."
    )(f)
    f = click.option(
        "--json",
        "json_",
        is_flag=True,
        expose_value=False,
        callback=_set_flag("json"),
        help="Machine-readable output on stdout, and nothing else there.",
    )(f)
    return f


def print_json(obj, *, redact: Callable[[str], str] | None = None) -> None:
    """--json output: one indented JSON document on stdout (numpy values allowed; other objects as str), and
    nothing else there. ``redact`` rewrites the text before it is printed (e.g. to mask a secret)."""
    import orjson

    data = orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY, default=str) + b"\n"
    if redact is not None:
        data = redact(data.decode("utf-8")).encode("utf-8")
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


# --- choices read from a registry --------------------------------------------------------------------------------
class LazyChoice(click.Choice):
    """A click.Choice whose choices are asked for only when click needs them (to validate a value, to print
    --help), so listing registered names (the scorers, their figures) costs nothing at import."""

    def __init__(self, choices: Callable[[], Sequence[str]]):
        self._choices = choices
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(self._choices())

    @choices.setter
    def choices(self, _value) -> None:  # click.Choice.__init__ assigns it
        pass


def scorer_names(*extra: str) -> Callable[[], list[str]]:
    """The registered scorers' names (after ``extra`` choices such as auto), read from the registry when asked."""

    def names() -> list[str]:
        from ftbench.metrics.registry import SCORERS

        return [*extra, *SCORERS.targets()]

    return names


def judged_figure_names() -> list[str]:
    """Every figure a run can be judged by (`sweep --metric`; `--select-by` adds eval_loss)."""
    from ftbench.metrics.registry import judged_figures

    return list(judged_figures())


def scorer_option(*, default: str, extra: tuple[str, ...] = (), help: str):
    """--scorer NAME (a registered scorer, or one of ``extra``), passed to the command as ``scorer``; --task is
    kept as its hidden old name (in `eval`, --task names an lm-eval task YAML: one word, one meaning)."""

    def decorate(f):
        @functools.wraps(f)
        def command(*args, scorer=None, task=None, **kwargs):
            if scorer and task and scorer != task:
                from ftbench.api.errors import UsageError

                raise UsageError(
                    f"--task is the old name of --scorer: give one of them (got --scorer {scorer}, --task {task})"
                )
            return f(*args, scorer=scorer or task or default, **kwargs)

        choice = LazyChoice(scorer_names(*extra))
        command = click.option("--task", "task", type=choice, hidden=True)(command)
        return click.option("--scorer", "scorer", type=choice, help=f"{help} (default: {default})")(command)

    return decorate


# --- numbers -----------------------------------------------------------------------------------------------------
class FiniteFloat(click.FloatRange):
    """A float option that must be a real number within its range: click's FloatRange lets nan through every
    bound and inf through a one-sided one, and either fails later, deep inside a library."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


MAX_WAIT_SECONDS = 86_400.0  # a timeout or back-off past a day is a typo (and past ~1e9 s sockets overflow)
SEED = click.IntRange(0, 2**32 - 1)  # numpy's and torch's seed range


# --- generation engines (predict, eval, train-and-compare) -------------------------------------------------------
# the engines' options as the command line spells them; each engine class takes its own (`GenerationEngine.
# options_from`), so this file only collects what was given
ENGINE_OPTION_NAMES = (
    "base_url",
    "served_model",
    "served_model_after",
    "api",
    "concurrency",
    "api_key_env",
    "request_timeout",
    "max_retries",
    "tensor_parallel_size",
    "data_parallel_size",
)


def engine_options(f):
    """--engine and the engines' options (docs/scaling.md); `engine_settings` hands the given ones to the chosen
    engine."""
    options = [
        click.option(
            "--engine",
            default="local",
            show_default=True,
            help="Where answers are generated: local (this "
            "process), openai (an OpenAI-compatible server at --base-url: vLLM, SGLang, transformers serve, "
            "llamafactory-cli api, llama.cpp), vllm (offline vLLM on GPUs), or an installed plug-in's name.",
        ),
        click.option("--base-url", help="(openai) the server, e.g. http://127.0.0.1:8000/v1."),
        click.option(
            "--served-model",
            help="(openai) the model's name at the server (default: the --model folder's "
            "path or hub id; a vLLM LoRA module's name for an adapter).",
        ),
        click.option(
            "--api",
            type=click.Choice(["completions", "chat"]),
            default="completions",
            show_default=True,
            help="(openai) completions: send the prompt ftbench renders (the local engine's, byte for "
            "byte); chat: send the messages and let the server's chat template render them.",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(1, 256),
            default=4,
            show_default=True,
            help="(openai) requests in flight at once.",
        ),
        click.option(
            "--api-key-env",
            default="OPENAI_API_KEY",
            show_default=True,
            help="(openai) the environment variable holding the API key (never printed or written).",
        ),
        click.option(
            "--request-timeout",
            type=FiniteFloat(1.0, MAX_WAIT_SECONDS),
            default=600.0,
            show_default=True,
            help="(openai) seconds one request may take in all: connect, headers and body.",
        ),
        click.option(
            "--max-retries",
            type=click.IntRange(0, 20),
            default=5,
            show_default=True,
            help="(openai) retries of a request on 429/5xx/timeouts/refused connections (Retry-After "
            "honoured up to 60 s); then the run stops and the same command resumes it.",
        ),
        click.option(
            "--tensor-parallel-size",
            type=click.IntRange(1),
            default=1,
            show_default=True,
            help="(vllm) GPUs per model replica.",
        ),
        click.option(
            "--data-parallel-size", type=click.IntRange(1), default=1, show_default=True, help="(vllm) model replicas."
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def engine_settings(values: dict, *, engine: str | None = None, **placement):
    """Pop --engine and the engines' options out of a command's keyword arguments and hand the ones the user gave
    (a default is not "given") to the chosen engine class: (engine name, its options). ``placement``: device,
    dtype, threads when the command has them ("auto"/None: not given). The engine refuses what is not its own in
    one line ("--base-url is for --engine openai"), so a forgotten --engine is caught."""
    from click.core import ParameterSource

    from ftbench.inference.engines import engine_options as make_options

    ctx = click.get_current_context()
    name = values.pop("engine", None) or engine
    given = {}
    for key in ENGINE_OPTION_NAMES:
        if key in values:
            value = values.pop(key)
            if ctx.get_parameter_source(key) not in (None, ParameterSource.DEFAULT):
                given[key] = value
    given.update({k: v for k, v in placement.items() if v not in (None, "auto")})
    return name, make_options(name, given)[1]

"""`ftbench augment`: grow a small dataset safely: `fill` template placeholders, or generate validated,
de-duplicated variants of every record with an LLM (`llm`), resumably."""

from __future__ import annotations

import os
import sys

import click

from ftbench.api.errors import EXIT_INPUT_ERRORS, EXIT_INTERRUPTED, EXIT_OK, FtbenchError, InputError, UsageError
from ftbench.cli.options import MAX_WAIT_SECONDS, SEED, FiniteFloat, common_options, print_json, settings
from ftbench.data.formats import FORMAT_CHOICES
from ftbench.data.schema import MAX_TOKENS


@click.group()
def augment():
    """Grow a small dataset safely.

    \b
    fill  put values into {{name}}-style placeholders (identity datasets)
    llm   ask an OpenAI-compatible endpoint or a local model for N variants of every record
    """


def _refuse_same_file(data: str, out: str) -> None:
    from ftbench.augment.fill import same_file

    if same_file(data, out):
        raise UsageError(f"-o {out} is DATA itself; write to another file (DATA is never overwritten)")


@augment.command(short_help="Fill {{name}}-style placeholders in every text field.")
@click.argument("data", type=click.Path())
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the filled file (same format and layout as DATA; never DATA itself).",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Fill {{KEY}} (any spacing inside the braces) with VALUE. Repeatable.",
)
@click.option("--strict", is_flag=True, help="Placeholders left unfilled are an error (exit 1, nothing written).")
@click.option(
    "--max-shown",
    type=click.IntRange(0),
    default=20,
    show_default=True,
    help="Unfilled placeholders listed in the text output (--json lists all).",
)
@common_options
@click.pass_context
def fill(ctx, data, out, assignments, strict, max_shown):
    """Fill placeholders such as {{name}} and {{author}} in every text field of DATA and write OUT.

    DATA's format and file type are kept (a JSON array stays an indented array, JSON Lines stay JSON Lines,
    Parquet/Arrow keep their schema; CSV and .txt files stay so).
    Every placeholder left unfilled ({{model}} without --set, <name>, [name], 【名字】...) is listed with its
    record and field path. Exit code 0: written; 1: unfilled placeholders with --strict, or DATA has errors;
    2: usage problem.
    """
    from ftbench.augment.fill import fill_file, parse_assignments, write_data_file
    from ftbench.data.reader import check_readable
    from ftbench.data.sources import file_type

    opts = settings(ctx)
    values = parse_assignments(assignments)
    check_readable(data)
    _refuse_same_file(data, out)
    layout, records, report = fill_file(data, values)
    if layout.file_type == "json" and not layout.jsonl and out.lower().endswith((".jsonl", ".ndjson")):
        raise UsageError(f"-o {out}: DATA is a JSON array and fill keeps the file type; use a .json name")
    if layout.file_type != "json" and file_type(out) != layout.file_type:
        raise UsageError(
            f"-o {out}: DATA is {layout.describe()} and fill keeps the file type; use a "
            f"{os.path.splitext(data)[1]} name"
        )
    unfilled = report.unfilled
    if not (strict and unfilled):
        write_data_file(out, layout, records)
    if opts.json:
        kind = ("jsonl" if layout.jsonl else "json") if layout.file_type == "json" else layout.file_type
        print_json(
            {
                "ok": not (strict and unfilled),
                "output": out if not (strict and unfilled) else None,
                "format": kind,
                **report.to_json(),
            }
        )
    else:
        _print_fill(opts, data, out, layout, report, max_shown)
    if strict and unfilled:
        raise InputError(f"{len(unfilled)} placeholder(s) left unfilled (--strict): {out} not written")
    return EXIT_OK


def _print_fill(opts, data, out, layout, report, max_shown) -> None:
    if not opts.quiet:
        done = ", ".join(f"{{{{{k}}}}} x{n}" for k, n in report.filled.items() if n)
        total = sum(report.filled.values())
        click.echo(
            f"filled {total} placeholder(s) in {report.fields_changed} field(s) of {report.records} "
            f"record(s)" + (f": {done}" if done else "")
        )
    for key in report.unused:
        click.echo(f"warning: --set {key}: DATA has no {{{{{key}}}}} placeholder", err=True)
    if report.unfilled:
        click.echo(
            f"warning: {len(report.unfilled)} placeholder(s) left unfilled (fill {{{{KEY}}}} slots with "
            "--set KEY=VALUE; other shapes need editing):",
            err=True,
        )
        for u in report.unfilled[:max_shown]:
            where = f"{data}:{u.line}" if u.line else data
            click.echo(f"  {where} {u.path}: {u.placeholder}", err=True)
        if len(report.unfilled) > max_shown:
            click.echo(f"  ... and {len(report.unfilled) - max_shown} more (--json lists all)", err=True)
    if not opts.quiet:
        kind = layout.describe()
        click.echo(f"wrote {out} ({kind}, {report.records} records)")


@augment.command(short_help="Generate N validated, de-duplicated variants of every record with an LLM.")
@click.argument("data", type=click.Path())
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(dir_okay=False),
    help='JSONL of the new records, each with "_ftbench" provenance; rerun the same command to resume.',
)
@click.option("-n", "--n", "n", required=True, type=click.IntRange(1, 100), help="New records per original record.")
@click.option(
    "--provider",
    type=click.Choice(["openai", "local", "vllm"]),
    default="openai",
    show_default=True,
    help="openai: any OpenAI-compatible chat-completions endpoint (vLLM/SGLang/transformers serve...); "
    "local: a model in this process (+ --adapter); vllm: offline vLLM on GPUs (+ --adapter).",
)
@click.option(
    "--base-url",
    help="The endpoint's base URL, e.g. https://api.openai.com/v1 or "
    "http://127.0.0.1:8000/v1 (vLLM, Ollama, LM Studio...).",
)
@click.option("--model", required=True, help="Model name at the endpoint, or (local) a hub id, folder or 'tiny'.")
@click.option("--adapter", type=click.Path(), help="(local) a LoRA adapter folder to apply to --model.")
@click.option(
    "--api-key-env",
    default="OPENAI_API_KEY",
    show_default=True,
    help="The environment variable holding the API key (the key is never printed, logged or written).",
)
@click.option(
    "--concurrency", type=click.IntRange(1, 64), default=4, show_default=True, help="Requests in flight at once."
)
@click.option(
    "--max-retries",
    type=click.IntRange(0, 20),
    default=5,
    show_default=True,
    help="Retries of a request on 429/5xx/timeouts/connection errors; also the extra requests a record "
    "gets when a reply has no usable JSON or too few acceptable records.",
)
@click.option(
    "--timeout",
    type=FiniteFloat(0.1, MAX_WAIT_SECONDS),
    default=60.0,
    show_default=True,
    help="Seconds one request may take in all (connect, headers, body) before it is retried.",
)
@click.option(
    "--backoff",
    type=FiniteFloat(0.0, MAX_WAIT_SECONDS),
    default=1.0,
    show_default=True,
    help="First retry waits up to this many seconds (random), doubling per retry up to 60 s; a "
    "Retry-After header is honoured up to 60 s (and --timeout), announced when a second or more.",
)
@click.option(
    "--prompt-template",
    type=click.Path(dir_okay=False),
    help="A text file used as the request instead of the built-in ones (variables: $n, $record, "
    "$format, $keys, $language; $$ is a dollar sign).",
)
@click.option(
    "--temperature",
    type=FiniteFloat(0.0, 2.0),
    default=0.9,
    show_default=True,
    help="Sampling temperature (variety between variants).",
)
@click.option(
    "--max-tokens",
    type=click.IntRange(1, MAX_TOKENS),
    help="Longest reply in tokens (default: the endpoint's; 512 for a local model).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMAT_CHOICES),
    default="auto",
    show_default=True,
    help="DATA's format; auto-detected by default. Generated records must be in the same format.",
)
@click.option("--include-original", is_flag=True, help="Also copy the original records into OUT.")
@click.option(
    "--near-dup-threshold",
    type=FiniteFloat(0.1, 0.99),
    default=0.8,
    show_default=True,
    help="Estimated Jaccard similarity from which a generated record is a near-duplicate.",
)
@click.option("--no-near-dup", is_flag=True, help="Reject exact duplicates only.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed for the retry jitter and local sampling.")
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True, help="(local) prompts per batch.")
@click.option("--device", default="auto", show_default=True, help="(local) auto, cpu, cuda, cuda:N or mps.")
@click.option(
    "--dtype",
    type=click.Choice(["auto", "bfloat16", "float16", "float32"]),
    default="auto",
    show_default=True,
    help="(local) model precision.",
)
@click.option("--overwrite", is_flag=True, help="Start again even if OUT holds records from an earlier run.")
@common_options
@click.pass_context
def llm(
    ctx,
    data,
    out,
    n,
    provider,
    base_url,
    model,
    adapter,
    api_key_env,
    concurrency,
    max_retries,
    timeout,
    backoff,
    prompt_template,
    temperature,
    max_tokens,
    fmt,
    include_original,
    near_dup_threshold,
    no_near_dup,
    seed,
    batch_size,
    device,
    dtype,
    overwrite,
):
    """Ask a model for N new records like each record of DATA; keep those that pass validation and are not
    (near-)duplicates, with provenance, in OUT (JSONL).

    Everything set aside goes to OUT.rejected.jsonl with the reason. OUT is append-only: if the run is killed,
    the same command continues where it stopped, without losing or repeating records. Exit code 0: every
    record got its N variants; 1: some did not (rerun to retry them) or DATA has errors; 2: usage problem.
    """
    from ftbench.net.http import Redactor, api_key_from_env

    opts = settings(ctx)
    if provider == "openai" and not base_url:
        raise UsageError("--base-url is required with --provider openai (e.g. https://api.openai.com/v1)")
    if provider != "openai" and base_url:
        raise UsageError("--base-url is for --provider openai; a local model needs only --model")
    if adapter and provider == "openai":
        raise UsageError("--adapter needs --provider local or vllm")
    if adapter and not os.path.isdir(adapter):
        raise UsageError(f"--adapter {adapter}: no such folder")
    api_key = api_key_from_env(api_key_env)  # checks the name whatever the provider
    api_key = api_key if provider == "openai" else None
    redact = Redactor(api_key)
    if not os.path.exists(data):
        raise UsageError(f"{data}: no such file")
    _refuse_same_file(data, out)
    template = None
    if prompt_template:
        try:
            with open(prompt_template, encoding="utf-8") as fh:
                template = fh.read()
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"--prompt-template {prompt_template}: cannot read it ({type(e).__name__})") from None
    if provider == "openai":
        _warn_about_key(opts, base_url, api_key, api_key_env)
    from ftbench.augment.job import AugmentJob

    job = AugmentJob(
        data=data,
        out=out,
        n=n,
        model=model,
        provider=provider,
        base_url=base_url,
        adapter=adapter,
        api_key=api_key,
        api_key_env=api_key_env,
        concurrency=concurrency,
        max_retries=max_retries,
        timeout=timeout,
        backoff=backoff,
        template=template,
        template_name=prompt_template or "--prompt-template",
        temperature=temperature,
        max_tokens=max_tokens,
        fmt=None if fmt == "auto" else fmt,
        include_original=include_original,
        near_dup=not no_near_dup,
        threshold=near_dup_threshold,
        seed=seed,
        batch_size=batch_size,
        device=None if device == "auto" else device,
        dtype=None if dtype == "auto" else dtype,
        overwrite=overwrite,
    )
    try:
        return _run_llm(opts, job)
    except FtbenchError as e:  # server text in an error message: make sure the key is not in it
        raise type(e)(redact(str(e)), exit_code=e.exit_code) from None
    except Exception as e:  # a bug whose message quotes the key: the same report, key masked
        if api_key and api_key in str(e):
            raise RuntimeError(redact(f"{type(e).__name__}: {e}")) from None
        raise


def _warn_about_key(opts, base_url: str, api_key: str | None, env: str) -> None:
    from urllib.parse import urlparse

    host = urlparse(base_url).hostname or ""
    local = host in ("localhost", "127.0.0.1", "::1") or host.endswith(".localhost")
    if opts.quiet:
        return
    if not api_key:
        click.echo(f"note: ${env} is not set: requests are sent without an API key (fine for local servers)", err=True)
    elif base_url.startswith("http://") and not local:
        click.echo(f"warning: {base_url} is plain http: the API key travels unencrypted", err=True)


def _run_llm(opts, job) -> int:
    from ftbench.augment.job import run_job
    from ftbench.net.http import Redactor

    def notify(message: str) -> None:
        if not opts.quiet:
            click.echo(message, err=True)

    stats = run_job(job, progress=lambda total, initial: _progress_bar(opts, total, initial), notify=notify)
    if stats.interrupted:
        done = stats.already_done + stats.accepted
        click.echo(
            f"ftbench: interrupted: {done} of {stats.requested} records are in {job.out}; run the same "
            "command again to resume",
            err=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    _print_summary(opts, stats, job.out, Redactor(job.api_key))
    return EXIT_INPUT_ERRORS if stats.incomplete else EXIT_OK


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(opts, total: int, initial: int):
    if opts.quiet:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="record",
        desc="augment",
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.5,
    )


def _print_summary(opts, stats, out: str, redact) -> None:
    from ftbench.augment.store import rejected_path

    summary = stats.to_json()
    summary.update(output=out, rejected_file=rejected_path(out))
    if opts.json:
        print_json(summary, redact=redact)
        return
    lines = []
    if not opts.quiet:
        earlier = f", {stats.already_done} from an earlier run" if stats.already_done else ""
        lines.append(
            f"augment: {stats.sources} records x {stats.n} = {stats.requested} requested; "
            f"{summary['in_output']} in {out} ({stats.accepted} new{earlier})"
        )
        lines.append(
            f"  {stats.replies} replies, {stats.generated} records generated, {stats.accepted} accepted, "
            f"{stats.no_json} replies without usable JSON"
        )
        if stats.rejected:
            lines.append(
                "  rejected: "
                + ", ".join(f"{k} {v}" for k, v in summary["rejected"].items())
                + f" (see {summary['rejected_file']})"
            )
        if stats.retries:
            lines.append("  retries: " + ", ".join(f"{k} {v}" for k, v in summary["retries"].items()))
        if stats.failed_requests:
            lines.append("  failed requests: " + ", ".join(f"{k} {v}" for k, v in summary["failed_requests"].items()))
        t = summary["tokens"]
        lines.append(
            f"  tokens: {t['prompt']} prompt + {t['completion']} completion = {t['total']}; {stats.seconds:.1f}s"
        )
    for line in lines:
        click.echo(redact(line))
    if stats.incomplete:
        shown = ", ".join(map(str, stats.incomplete[:10])) + (" ..." if len(stats.incomplete) > 10 else "")
        click.echo(
            f"warning: {len(stats.incomplete)} record(s) did not get all {stats.n} variants (records {shown});"
            " run the same command again to retry them",
            err=True,
        )

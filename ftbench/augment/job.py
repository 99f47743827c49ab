"""One `augment llm` run as a library call: `run_job(AugmentJob(...))` reads DATA, resumes OUT, generates what is
missing through the chosen provider and returns the run's statistics. The CLI only parses options and prints."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from ftbench.api.errors import InputError, UsageError
from ftbench.augment.gate import PROVENANCE_KEY, RecordGate
from ftbench.augment.prompt import PromptBuilder, record_language
from ftbench.augment.runner import Augmenter, RunStats, Source, run_http, run_local
from ftbench.augment.store import META_KIND, AugmentOutput, strip_provenance
from ftbench.data.formats import Sample
from ftbench.net.http import Redactor


@dataclass
class AugmentJob:
    """Everything one run needs: what to read, where to write, which model, and the limits."""

    data: str
    out: str
    n: int
    model: str
    provider: str = "openai"  # or "local", "vllm"
    base_url: str | None = None
    adapter: str | None = None
    api_key: str | None = field(default=None, repr=False)  # never in a repr, a log or a traceback's message
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 4
    max_retries: int = 5
    timeout: float = 60.0
    backoff: float = 1.0
    template: str | None = None  # a --prompt-template's text
    template_name: str = "--prompt-template"
    temperature: float | None = 0.9
    max_tokens: int | None = None
    fmt: str | None = None  # None: detect
    include_original: bool = False
    near_dup: bool = True
    threshold: float = 0.8
    seed: int = 0
    batch_size: int = 8  # local only
    device: str | None = None
    dtype: str | None = None
    overwrite: bool = False


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def load_sources(data: str, fmt: str | None) -> tuple[object, str, list[tuple[int, dict, Sample]]]:
    """DATA's format reader, display name and (index, raw record, sample) of every record; a file with invalid
    records is refused (augmenting broken records would copy their mistakes)."""
    from ftbench.data.loader import DatasetSpec, plan_files
    from ftbench.data.reader import read_records

    if os.path.isdir(data):
        raise UsageError(f"{data}: is a folder; give one data file (.json, .jsonl, .csv, .parquet or .arrow)")
    findings: list = []
    plans = plan_files(DatasetSpec(data, formatting=fmt), findings)
    if not plans or plans[0].choice is None:
        first = next((f for f in findings if f.severity == "error"), None)
        raise InputError(first.one_line() if first else f"{data}: cannot tell the data format; pass --format")
    plan = plans[0]
    if getattr(plan.choice.reader, "kind", "sft") != "sft":
        raise UsageError(f"{data}: {plan.choice.reason}; augment writes SFT records from SFT records")
    convert = plan.choice.reader.convert
    rows = []
    for rec in read_records(plan.path, findings, display_name=plan.name):
        sample = convert(plan.name, rec, findings)
        if sample is not None:
            rows.append((rec.index, rec.value, sample))
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
        raise InputError(f"{errors[0].one_line()}{more}; fix DATA first (ftbench validate {data})")
    if not rows:
        raise InputError(f"{data}: no records")
    return plan.choice.reader, plan.name, rows


def run_job(
    job: AugmentJob,
    *,
    progress: Callable[[int, int], object] | None = None,
    notify: Callable[[str], None] | None = None,
) -> RunStats:
    """Generate every missing variant of every record of ``job.data`` into ``job.out``.

    ``progress(total, initial)`` returns an object with update(n)/close() (a tqdm bar); ``notify(message)``
    receives remarks worth showing at once. Ctrl-C returns the statistics with ``interrupted`` set.
    """
    from ftbench.io import sha256_of_path

    notify = notify or (lambda message: None)
    redact = Redactor(job.api_key)
    reader, name, rows = load_sources(job.data, job.fmt)
    prompts = PromptBuilder(reader, job.template, job.template_name)
    meta = {
        "kind": META_KIND,
        "data": os.path.abspath(job.data),
        "data_sha256": sha256_of_path(job.data),
        "format": reader.name,
        "n": job.n,
        "provider": job.provider,
        "model": job.model,
        "base_url": job.base_url,
        "adapter": job.adapter,
    }
    output = AugmentOutput(job.out, meta, redact, overwrite=job.overwrite)
    try:
        if output.records.repaired_bytes:
            notify(
                f"{job.out}: cut off a half-written last line ({output.records.repaired_bytes} bytes); its "
                "record is generated again"
            )
        gate = _gate_with_known_records(reader, name, rows, output, job)
        stats = RunStats(sources=len(rows), n=job.n)
        sources = []
        for index, record, sample in rows:
            done = output.variants.get(index, set())
            stats.already_done += sum(1 for v in done if v < job.n)
            text = "\n".join(c for _, c in sample.turns) + "\n" + sample.system
            sources.append(
                Source(index, record, sample, record_language(text), [v for v in range(job.n) if v not in done])
            )
        if job.include_original:
            output.records.append(
                {**record, PROVENANCE_KEY: {"source": index, "original": True}}
                for index, record, _ in rows
                if index not in output.originals
            )
        bar = progress(stats.requested, stats.already_done) if progress else _NoProgress()
        provenance = {"model": job.model, **({"adapter": job.adapter} if job.adapter else {})}
        aug = Augmenter(sources, gate, output, prompts, provenance, 1 + job.max_retries, stats, redact, bar.update)
        start = time.perf_counter()
        try:
            _generate(job, aug, redact)
        except KeyboardInterrupt:
            stats.interrupted = True
        finally:
            bar.close()
        if not stats.interrupted:
            aug.finish()
        stats.seconds = time.perf_counter() - start
        return stats
    finally:
        output.close()


def _gate_with_known_records(reader, name: str, rows, output: AugmentOutput, job: AugmentJob) -> RecordGate:
    """A gate that knows the originals and what earlier runs accepted: new records must repeat neither."""
    gate = RecordGate(reader, name, near_dup=job.near_dup, threshold=job.threshold)
    for index, _record, sample in rows:
        gate.add_known(sample, f"original #{index}")
    for row in output.existing:
        prov = row[PROVENANCE_KEY]
        if not prov.get("original"):
            sample, _ = gate.to_sample(strip_provenance(row))
            if sample is not None:
                gate.add_known(sample, f"source {prov['source']} variant {prov.get('variant')}")
    return gate


def _generate(job: AugmentJob, aug: Augmenter, redact: Redactor) -> None:
    if job.provider == "openai":
        from ftbench.net.http import ChatClient, RetryPolicy

        stop = threading.Event()
        client = ChatClient(
            job.base_url,
            job.model,
            job.api_key,
            key_source=job.api_key_env,
            timeout=job.timeout,
            policy=RetryPolicy(max_retries=job.max_retries, base=job.backoff),
            redact=redact,
            temperature=job.temperature,
            max_tokens=job.max_tokens,
            seed=job.seed,
            stop=stop,
            on_retry=aug.count_retry,
        )
        run_http(aug, client, job.concurrency, stop)
    elif any(s.missing for s in aug.sources):  # a finished run does not load the model just to do nothing
        from ftbench.augment.local import LocalModel, LocalSettings

        run_local(
            aug,
            LocalModel(
                LocalSettings(
                    job.model,
                    job.adapter,
                    job.max_tokens or 512,
                    job.temperature or None,
                    job.seed,
                    job.batch_size,
                    job.device,
                    job.dtype,
                    job.provider,
                )
            ),
        )

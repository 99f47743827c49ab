"""The work of `augment llm`: ask for each record's missing variants, check what comes back, write it, repeat.

Each source record needs variants 0..N-1; those already in OUT (an earlier run) are skipped. One request asks
for all the variants a record still lacks. Its reply is parsed, every candidate goes through the `RecordGate`,
and the accepted ones take the lowest missing variant numbers; they are written (and fsynced) before the next
request for that record. A record gets at most 1 + max_retries requests per run: a reply without usable JSON,
or with fewer acceptable records than asked for, is followed by another request for what is still missing.
A record that still lacks variants is reported as incomplete (and tried again by the next run).

Replies are handled one at a time under a lock (de-duplication needs a consistent view); requests run in
parallel: a thread pool of `concurrency` workers for HTTP, batches through the generator for a local model.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from ftbench.augment.gate import PROVENANCE_KEY, RecordGate
from ftbench.augment.prompt import PromptBuilder
from ftbench.augment.reply import parse_reply
from ftbench.augment.store import AugmentOutput
from ftbench.data.formats import Sample
from ftbench.net.http import ChatClient, Interrupted, RequestFailed

REPLY_KEPT_CHARS = 4000  # of a reply without usable JSON, kept in the rejected file for diagnosis


@dataclass
class Source:
    """One original record and the variant numbers it still lacks."""

    index: int
    record: dict
    sample: Sample
    language: str
    missing: list[int]
    attempts: int = 0
    last_problem: str | None = None  # why the next request is a retry: "no-json" or "top-up"


@dataclass
class RunStats:
    """Counts for the final summary (this run only, plus what an earlier run left)."""

    sources: int = 0
    n: int = 0
    already_done: int = 0
    generated: int = 0  # candidate records found in replies
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)  # reason -> records
    replies: int = 0
    no_json: int = 0
    retries: Counter = field(default_factory=Counter)  # 429, 5xx, timeout, connection, bad-response, no-json, top-up
    failed_requests: Counter = field(default_factory=Counter)
    tokens: Counter = field(default_factory=Counter)  # prompt_tokens, completion_tokens, total_tokens
    incomplete: list[int] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False  # Ctrl-C: what was received is written, the rest waits for the next run

    @property
    def requested(self) -> int:
        return self.sources * self.n

    def to_json(self) -> dict:
        return {
            "sources": self.sources,
            "n": self.n,
            "requested": self.requested,
            "already_done": self.already_done,
            "generated": self.generated,
            "accepted": self.accepted,
            "in_output": self.already_done + self.accepted,
            "rejected": dict(sorted(self.rejected.items(), key=lambda kv: (-kv[1], kv[0]))),
            "replies": self.replies,
            "replies_without_json": self.no_json,
            "retries": dict(sorted(self.retries.items())),
            "retries_total": sum(self.retries.values()),
            "failed_requests": dict(sorted(self.failed_requests.items())),
            "tokens": {
                "prompt": self.tokens["prompt_tokens"],
                "completion": self.tokens["completion_tokens"],
                "total": self.tokens["total_tokens"],
            },
            "incomplete_sources": sorted(self.incomplete),
            "seconds": round(self.seconds, 3),
        }


class Augmenter:
    """Turns replies into accepted and rejected records, writes them, and tracks what each source lacks."""

    def __init__(
        self,
        sources: list[Source],
        gate: RecordGate,
        output: AugmentOutput,
        prompts: PromptBuilder,
        provenance: dict,
        max_attempts: int,
        stats: RunStats,
        redact,
        on_accept=None,
    ):
        self.sources, self.gate, self.output, self.prompts = sources, gate, output, prompts
        self.provenance, self.max_attempts, self.stats, self.redact = provenance, max_attempts, stats, redact
        self.on_accept = on_accept or (lambda n: None)
        self.lock = threading.Lock()

    def prompt(self, src: Source) -> str:
        return self.prompts.build(src.record, len(src.missing), src.language)

    def start_attempt(self, src: Source) -> int:
        """Count a request for ``src`` (a retry after the first) and return its attempt number."""
        src.attempts += 1
        if src.attempts > 1 and src.last_problem:
            with self.lock:
                self.stats.retries[src.last_problem] += 1
        return src.attempts

    def count_retry(self, kind: str, _delay: float = 0.0) -> None:
        with self.lock:
            self.stats.retries[kind] += 1

    def _meta(
        self,
        src: Source,
        attempt: int,
        *,
        variant: int | None = None,
        reason: str | None = None,
        detail: str | None = None,
    ) -> dict:
        """The provenance of a written line: {"source", "variant", "model", "attempt"} (+ "reason", "detail")."""
        prov = {
            "source": src.index,
            **({"variant": variant} if variant is not None else {}),
            **self.provenance,
            "attempt": attempt,
        }
        if reason is not None:
            prov.update(reason=reason, detail=self.redact(detail) if detail else detail)
        return {PROVENANCE_KEY: prov}

    def take_reply(self, src: Source, text: str, usage: dict, attempt: int, finish_reason: str | None = None) -> None:
        """Parse a reply, check its records, write the accepted and the rejected ones."""
        parsed = parse_reply(text)
        with self.lock:
            self.stats.replies += 1
            for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
                if isinstance(usage.get(key), int):
                    self.stats.tokens[key] += usage[key]
            if not parsed.usable:
                cut = " (the reply hit the token limit)" if finish_reason == "length" else ""
                self.output.rejected.append(
                    [
                        {
                            **self._meta(src, attempt, reason="no-json", detail=parsed.problem + cut),
                            "reply": self.redact.partial(text)[:REPLY_KEPT_CHARS],
                        }
                    ]
                )
                self.stats.no_json += 1
                src.last_problem = "no-json"
                return
            self.stats.generated += len(parsed.records)
            labels = [f"source {src.index} variant {v}" for v in src.missing]
            verdicts = self.gate.check(parsed.records, src.record, src.sample, len(src.missing), labels)
            accepted, rejected = [], []
            for v in verdicts:
                if v.accepted:
                    variant = src.missing.pop(0)
                    accepted.append({**v.record, **self._meta(src, attempt, variant=variant)})
                else:
                    rejected.append({**self._meta(src, attempt, reason=v.reason, detail=v.detail), "record": v.record})
                    self.stats.rejected[v.reason] += 1
            self.output.records.append(accepted)  # durable before the next request for this source
            self.output.rejected.append(rejected)
            self.stats.accepted += len(accepted)
            src.last_problem = "top-up" if src.missing else None
        if accepted:
            self.on_accept(len(accepted))

    def request_failed(self, src: Source, kind: str, message: str, attempt: int) -> None:
        with self.lock:
            self.stats.failed_requests[kind] += 1
            self.output.rejected.append(
                [self._meta(src, attempt, reason="request-failed", detail=self.redact(f"{kind}: {message}"))]
            )

    def finish(self) -> None:
        """Record every source that did not get all its variants (it is tried again by the next run)."""
        rows = []
        for src in self.sources:
            if src.missing:
                self.stats.incomplete.append(src.index)
                rows.append(
                    self._meta(
                        src,
                        src.attempts,
                        reason="incomplete",
                        detail=f"{len(src.missing)} of {self.stats.n} variants missing after "
                        f"{src.attempts} request(s); rerun the same command to try again",
                    )
                )
        self.output.rejected.append(rows)


def run_http(aug: Augmenter, client: ChatClient, concurrency: int, stop: threading.Event) -> None:
    """Every source's requests in a pool of ``concurrency`` threads; a fatal error (bad key, bad URL) or Ctrl-C
    stops them all. Replies already received are always written."""

    def work(src: Source) -> None:
        try:
            while src.missing and src.attempts < aug.max_attempts and not stop.is_set():
                attempt = aug.start_attempt(src)
                try:
                    completion = client.complete([{"role": "user", "content": aug.prompt(src)}])
                except Interrupted:
                    return
                except RequestFailed as e:
                    aug.request_failed(src, e.kind, str(e), attempt)
                    return
                aug.take_reply(src, completion.text, completion.usage, attempt, completion.finish_reason)
        except BaseException:
            stop.set()  # here, not in the main thread: this worker must not start the next source first
            raise

    todo = [s for s in aug.sources if s.missing]
    pool = ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(todo) or 1)), thread_name_prefix="augment")
    try:
        futures = [pool.submit(work, s) for s in todo]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for f in done:
            if f.exception() is not None:
                raise f.exception()
    except BaseException:
        stop.set()  # requests in flight are cut (the client shuts their sockets); replies received are written
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def run_local(aug: Augmenter, model) -> None:
    """Rounds of batched generation: every source still short of variants gets one prompt per round."""
    pending = [s for s in aug.sources if s.missing]
    while pending:
        batch = [s for s in pending if s.attempts < aug.max_attempts]
        if not batch:
            return
        attempts = [aug.start_attempt(s) for s in batch]
        prompts = [aug.prompt(s) for s in batch]
        for i, text, usage in model.complete_many(prompts):
            aug.take_reply(batch[i], text, usage, attempts[i])
        pending = [s for s in batch if s.missing]

"""Timing ftbench's own functions from outside and profiling one call, for benchmarks/bench_roofline.py.

`Timed` wraps a function for the length of a `with` (the original runs unchanged; nothing in ftbench is edited),
`profile_breakdown` sorts a torch.profiler window into matmul, attention, loss, other ops and the Python and
framework time between ops.
"""

from __future__ import annotations

import time
from collections import defaultdict

# grouping of aten ops by the outermost aten op they run under (so SDPA's internal copies count as attention)
MATMUL = {
    "aten::mm",
    "aten::addmm",
    "aten::bmm",
    "aten::baddbmm",
    "aten::matmul",
    "aten::linear",
    "aten::addmv",
    "aten::mv",
    "aten::dot",
}
# record_function annotations whose whole time (their ops and their Python) is one group
OPTIMIZER = "optimizer (AdamW on the LoRA weights)"
GROUPS = {
    "ftbench.collate": "data collation",
    "ftbench.prefill": "prefill of joining prompts",
    "Optimizer.step": OPTIMIZER,
    "Optimizer.zero_grad": OPTIMIZER,
}


class Timed:
    """For the length of a `with`, ``owner.name`` (a class's method or classmethod, or a module's function) is
    replaced by a wrapper that calls the original and records each call: its start, its seconds, the seconds to
    the next call's start (``period``), and ``facts(*args)`` (a dict, computed before the clock starts). ``label``
    names the call in profiler traces. ``profile_call`` (1-based): torch.profiler records from that call's start
    to the next call's start (or to the end of the `with`)."""

    def __init__(self, owner, name: str, facts=None, *, label: str | None = None, profile_call: int | None = None):
        self.owner, self.name, self.facts, self.profile_call = owner, name, facts, profile_call
        self.label = label or f"ftbench.{name}"
        self.calls: list[dict] = []
        self.profile: dict | None = None
        self._profiler = None

    def __enter__(self) -> "Timed":
        self._raw = raw = vars(self.owner)[self.name]
        original = raw.__func__ if isinstance(raw, classmethod) else raw

        def wrapper(*args, **kwargs):
            from torch.profiler import record_function

            facts = self.facts(*args, **kwargs) if self.facts else None
            number = len(self.calls) + 1
            if self._profiler is not None and number == self.profile_call + 1:
                self._stop_profile()
            if number == self.profile_call:
                self._start_profile(facts)
            call = {**(facts or {}), "start": time.perf_counter()}
            with record_function(self.label):
                out = original(*args, **kwargs)
            call["seconds"] = time.perf_counter() - call["start"]
            self.calls.append(call)
            if number == self.profile_call:
                self.profile["call_seconds"], call["profiled"] = call["seconds"], True
            return out

        setattr(self.owner, self.name, classmethod(wrapper) if isinstance(raw, classmethod) else wrapper)
        return self

    def __exit__(self, *exc) -> None:
        setattr(self.owner, self.name, self._raw)
        if self._profiler is not None:
            self._stop_profile()
        for call, after in zip(self.calls, self.calls[1:]):
            call["period"] = after["start"] - call["start"]

    def _start_profile(self, facts) -> None:
        from torch.profiler import ProfilerActivity, profile

        self._profiler = profile(activities=[ProfilerActivity.CPU])
        self._profiler.start()
        self.profile = {"facts": facts, "label": self.label, "started": time.perf_counter()}

    def _stop_profile(self) -> None:
        self.profile["window"] = time.perf_counter() - self.profile.pop("started")
        self._profiler.stop()
        self.profile["events"] = list(self._profiler.events())
        self._profiler = None


def op_kind(name: str) -> str:
    if name in MATMUL:
        return "matmul"
    if "scaled_dot_product" in name or ("softmax" in name and "log_softmax" not in name):
        return "attention"
    if "cross_entropy" in name or "log_softmax" in name or "nll_loss" in name:
        return "loss (log-softmax over the vocabulary)"
    return "other ops"


def _group(name: str) -> str | None:
    return next((group for prefix, group in GROUPS.items() if name.startswith(prefix)), None)


def profile_breakdown(profile: dict) -> dict:
    """Seconds by where they went, inside the profiled call and in the rest of the window:
    {"call": {kind: s}, "rest": {group or kind: s}, "window": s, "call_seconds": s, "ops": top-level ops in the
    call}. Python and framework time is what no aten op and no group accounts for."""
    call_label = profile["label"]
    inside, rest = defaultdict(float), defaultdict(float)
    top_ops = 0
    for event in profile["events"]:
        chain, parent = [], event.cpu_parent
        while parent is not None:
            chain.append(parent.name)
            parent = parent.cpu_parent
        group = next((g for g in (_group(n) for n in [event.name] + chain) if g), None)
        in_call = call_label in chain or event.name == call_label
        if group and not in_call:
            if not any(_group(n) for n in chain):  # the outermost event of the group holds the group's time
                rest[group] += event.cpu_time_total / 1e6
            continue
        if not event.name.startswith("aten::"):
            continue
        # the outermost aten op of the contiguous run of aten ancestors decides the kind
        run = [event.name]
        for n in chain:
            if not n.startswith("aten::"):
                break
            run.append(n)
        outermost = run[-1]
        (inside if in_call else rest)[op_kind(outermost)] += event.self_cpu_time_total / 1e6
        if in_call and len(run) == 1:
            top_ops += 1
    inside["Python and framework between ops"] = profile["call_seconds"] - sum(inside.values())
    rest["Python and framework between ops"] = profile["window"] - profile["call_seconds"] - sum(rest.values())
    return {
        "call": dict(inside),
        "rest": dict(rest),
        "window": profile["window"],
        "call_seconds": profile["call_seconds"],
        "ops": top_ops,
        "label": call_label,
    }


def print_breakdown(title: str, b: dict) -> None:
    window = b["window"]

    def line(what: str, seconds: float, indent: int) -> None:
        print(f"{'  ' * indent}{what:<{46 - 2 * indent}}{1e3 * seconds:>9.1f} ms{100 * seconds / window:>7.1f}%")

    print(f"\nwhere {title} goes: {1e3 * window:.0f} ms profiled")
    line(f"the call ({b['label']}, {b['ops']} top-level ops)", b["call_seconds"], 1)
    for what, seconds in sorted(b["call"].items(), key=lambda kv: -kv[1]):
        line(what, seconds, 2)
    line("the rest until the next call", window - b["call_seconds"], 1)
    for what, seconds in sorted(b["rest"].items(), key=lambda kv: -kv[1]):
        line(what, seconds, 2)

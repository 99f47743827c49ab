"""LLaMA-Factory's `trainer_log.jsonl`: one JSON object per log event with current_steps, total_steps, loss,
eval_loss, lr, epoch, percentage, elapsed_time, remaining_time (keys whose value is None left out). Every
backend writes it, the report and the diagnosis read it, and LLaMA-Board and scripts written for LLaMA-Factory
read ftbench runs too. Nothing here imports torch or transformers.
"""

from __future__ import annotations

import os
from datetime import timedelta

from ftbench.api.errors import UsageError

TRAINER_LOG = "trainer_log.jsonl"


def hms(seconds: float) -> str:
    """`0:01:05`, as LLaMA-Factory writes elapsed and remaining time."""
    return str(timedelta(seconds=int(max(seconds, 0))))


def seconds_of(text: str) -> float:
    """The seconds in an `hms` string (`1 day, 2:03:04` too); 0 for anything unreadable."""
    try:
        parts = [float(p) for p in text.split(", ")[-1].split(":")]
        days = int(text.split(" day")[0]) if " day" in text else 0
        return days * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2]
    except (ValueError, IndexError):
        return 0.0


def log_entry(step: int, total: int, last: dict, elapsed: float) -> dict:
    """One trainer_log line for a log event at ``step`` of ``total``; ``last`` is the Trainer's newest
    log_history entry (loss or eval_loss, learning_rate, epoch)."""
    per_step = elapsed / step if step else 0.0
    entry = dict(
        current_steps=step,
        total_steps=total,
        loss=last.get("loss"),
        eval_loss=last.get("eval_loss"),
        lr=last.get("learning_rate"),
        epoch=last.get("epoch"),
        percentage=round(step / total * 100, 2) if total else 100,
        elapsed_time=hms(elapsed),
        remaining_time=hms((total - step) * per_step),
    )
    return {k: v for k, v in entry.items() if v is not None}


def read_trainer_log(path: str) -> list[dict]:
    """The entries of a trainer_log.jsonl, each checked (`run_files.check_entry`); a torn last line from a
    killed run is skipped, a damaged line before it is an error at its line; no file: none."""
    from ftbench.data.run_files import MAX_JSON_BYTES, check_entry, parse_json_text

    try:
        if os.path.getsize(path) > MAX_JSON_BYTES:
            raise UsageError(f"{path}: more than the {MAX_JSON_BYTES:,} bytes a run file may hold")
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = parse_json_text(line, f"{path}:{n}")
        except UsageError:
            if n == len(lines):
                break  # the line a killed run was writing
            raise
        entries.append(check_entry(value, f"{path}:{n}", sep=": "))
    return entries


def from_log_history(log_history: list[dict], total_steps: int) -> list[dict]:
    """trainer_log rows rebuilt from a Trainer's `trainer_state.json` log_history (for runs whose
    trainer_log.jsonl is missing): the same keys, without the timing ones the history does not keep."""
    rows = []
    for h in log_history:
        if "step" not in h or ("loss" not in h and "eval_loss" not in h):
            continue
        entry = dict(
            current_steps=h["step"],
            total_steps=total_steps,
            loss=h.get("loss"),
            eval_loss=h.get("eval_loss"),
            lr=h.get("learning_rate"),
            epoch=h.get("epoch"),
            percentage=round(h["step"] / total_steps * 100, 2) if total_steps else 100,
        )
        rows.append({k: v for k, v in entry.items() if v is not None})
    return rows


def curves(rows: list[dict]) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(step, train loss) and (step, eval loss) points, in step order, from trainer_log rows. A loss logged as
    null is a non-finite one written as strict JSON (`io.write_jsonl`; rows leave out keys they do not have), so
    it comes back as NaN."""
    train, evals = [], []
    for row in rows:
        step = row.get("current_steps")
        if step is None:
            continue
        for key, points in (("loss", train), ("eval_loss", evals)):
            if key in row:
                points.append((int(step), float("nan") if row[key] is None else float(row[key])))
    return sorted(train), sorted(evals)

"""Trainer callbacks and run records shared by Trainer-based backends: LLaMA-Factory's `trainer_log.jsonl`,
a one-line-per-log console, `checkpoints.json` (each checkpoint's eval loss and the best one) and loss plots.

Only the main process (rank 0) writes or prints anything, so `torchrun`/`accelerate launch` runs log once.
This module imports transformers: backends import it inside `train`, never at `ftbench` start-up.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from datetime import timedelta

from transformers import TrainerCallback

from ftbench.api.backends import CheckpointInfo

TRAINER_LOG = "trainer_log.jsonl"
CHECKPOINTS_JSON = "checkpoints.json"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def _hms(seconds: float) -> str:
    return str(timedelta(seconds=int(max(seconds, 0))))


def _seconds(hms: str) -> float:
    try:
        parts = [float(p) for p in hms.split(", ")[-1].split(":")]
        days = int(hms.split(" day")[0]) if " day" in hms else 0
        return days * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2]
    except (ValueError, IndexError):
        return 0.0


class TrainerLogCallback(TrainerCallback):
    """Writes `trainer_log.jsonl` exactly as LLaMA-Factory's LogCallback does: one JSON object per log event with
    current_steps, total_steps, loss, eval_loss, lr, epoch, percentage, elapsed_time, remaining_time (keys whose
    value is None left out), so LLaMA-Board and scripts written for it read ftbench runs too.

    The file is append-only. A resumed run first drops the lines logged after the checkpoint it resumes from
    (those steps are about to be trained again) and counts elapsed time on from the last kept line, so an
    interrupted-and-resumed run leaves the same log as an uninterrupted one.
    """

    def __init__(self, output_dir: str, resume_step: int | None):
        self.path = os.path.join(output_dir, TRAINER_LOG)
        self.resume_step = resume_step
        self.start = time.time()

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        offset = 0.0
        if self.resume_step is None:
            if os.path.exists(self.path):
                os.remove(self.path)
        else:
            kept = [e for e in read_trainer_log(self.path) if e.get("current_steps", 0) <= self.resume_step]
            from ftbench.io import atomic_write_text

            atomic_write_text(self.path, "".join(json.dumps(e) + "\n" for e in kept))
            if kept:
                offset = _seconds(kept[-1].get("elapsed_time", "0:00:00"))
        self.start = time.time() - offset

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero:
            return
        last = state.log_history[-1] if state.log_history else {}
        step, total = state.global_step, state.max_steps
        elapsed = time.time() - self.start
        per_step = elapsed / step if step else 0.0
        entry = dict(current_steps=step, total_steps=total, loss=last.get("loss"), eval_loss=last.get("eval_loss"),
                     lr=last.get("learning_rate"), epoch=last.get("epoch"),
                     percentage=round(step / total * 100, 2) if total else 100,
                     elapsed_time=_hms(elapsed), remaining_time=_hms((total - step) * per_step))
        entry = {k: v for k, v in entry.items() if v is not None}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")


def read_trainer_log(path: str) -> list[dict]:
    """The entries of a trainer_log.jsonl (a torn last line from a killed run is skipped)."""
    entries = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    continue
    except FileNotFoundError:
        pass
    return entries


class ConsoleCallback(TrainerCallback):
    """One line on stderr per log event (instead of the Trainer's dict printing and tqdm bar, which would go to
    stdout and break `--json`): `step 20/100 (20%)  loss 2.3110  lr 9.5e-05  epoch 0.40  eta 0:00:31`."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.start = time.time()
        self.first_step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.start, self.first_step = time.time(), state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.quiet or not state.is_world_process_zero or not logs:
            return
        step, total = state.global_step, state.max_steps
        done = step - self.first_step
        eta = (time.time() - self.start) / done * (total - step) if done > 0 else 0
        head = f"step {step}/{total} ({step / total:.0%})" if total else f"step {step}"
        if "eval_loss" in logs:
            print(f"{head}  eval_loss {logs['eval_loss']:.4f}", file=sys.stderr, flush=True)
        elif "loss" in logs:
            lr = logs.get("learning_rate")
            print(f"{head}  loss {logs['loss']:.4f}" + (f"  lr {lr:.2e}" if lr is not None else "")
                  + f"  epoch {logs.get('epoch', 0):.2f}  eta {_hms(eta)}", file=sys.stderr, flush=True)


def complete_checkpoints(output_dir: str) -> list[tuple[int, str]]:
    """(step, path) of the `checkpoint-N` folders whose trainer_state.json was written and parses, oldest first.

    The Trainer writes trainer_state.json last, so a checkpoint being written when the process was killed has
    none (or a torn one) and is not resumed from."""
    found = []
    if not os.path.isdir(output_dir):
        return found
    for name in os.listdir(output_dir):
        m = _CHECKPOINT_RE.match(name)
        path = os.path.join(output_dir, name)
        if m and os.path.isdir(path):
            try:
                with open(os.path.join(path, "trainer_state.json"), encoding="utf-8") as fh:
                    json.load(fh)
            except (OSError, ValueError):
                continue
            found.append((int(m.group(1)), path))
    return sorted(found)


def all_checkpoint_dirs(output_dir: str) -> list[str]:
    if not os.path.isdir(output_dir):
        return []
    return [os.path.join(output_dir, n) for n in os.listdir(output_dir)
            if _CHECKPOINT_RE.match(n) and os.path.isdir(os.path.join(output_dir, n))]


def checkpoint_table(output_dir: str, log_history: list[dict], final_step: int,
                     final_eval_loss: float | None) -> tuple[list[CheckpointInfo], str | None]:
    """Every checkpoint on disk plus the final adapter (output_dir), each with the eval loss logged at its step,
    and the path of the one with the lowest eval loss (None if none was evaluated)."""
    eval_at = {h["step"]: h["eval_loss"] for h in log_history if "eval_loss" in h}
    losses = [(h["step"], h["loss"]) for h in log_history if "loss" in h]

    def loss_at(step):
        before = [loss for s, loss in losses if s <= step]
        return before[-1] if before else None

    table = [CheckpointInfo(path, step, eval_at.get(step), loss_at(step)) for step, path in
             complete_checkpoints(output_dir)]
    final_eval = final_eval_loss if final_eval_loss is not None else eval_at.get(final_step)
    table.append(CheckpointInfo(output_dir, final_step, final_eval, loss_at(final_step)))
    evaluated = [c for c in table if c.eval_loss is not None]
    # ties (the last checkpoint is the final adapter): the later step, and the final adapter over its checkpoint
    best = min(evaluated, key=lambda c: (c.eval_loss, -c.step, c.path != output_dir)).path if evaluated else None
    return table, best


def write_checkpoints_json(output_dir: str, table: list[CheckpointInfo], best: str | None) -> str:
    from dataclasses import asdict

    from ftbench.io import atomic_write_text

    path = os.path.join(output_dir, CHECKPOINTS_JSON)
    data = {"best_checkpoint": best, "selection": "lowest eval_loss",
            "checkpoints": [asdict(c) for c in table]}
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    return path

"""Trainer callbacks for Trainer-based backends: LLaMA-Factory's `trainer_log.jsonl` (format in
`ftbench.training.trainer_log`) and a one-line-per-log console on stderr.

Only the main process (rank 0) writes or prints anything, so `torchrun`/`accelerate launch` runs log once.
This module imports transformers: backends import it inside `train`, never at `ftbench` start-up.
"""

from __future__ import annotations

import json
import os
import sys
import time

from transformers import TrainerCallback

from ftbench.io import write_jsonl
from ftbench.training.trainer_log import TRAINER_LOG, hms, log_entry, read_trainer_log, seconds_of


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
            write_jsonl(self.path, kept)
            if kept:
                offset = seconds_of(kept[-1].get("elapsed_time", "0:00:00"))
        self.start = time.time() - offset

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero:
            return
        last = state.log_history[-1] if state.log_history else {}
        entry = log_entry(state.global_step, state.max_steps, last, time.time() - self.start)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")


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
            print(
                f"{head}  loss {logs['loss']:.4f}"
                + (f"  lr {lr:.2e}" if lr is not None else "")
                + f"  epoch {logs.get('epoch', 0):.2f}  eta {hms(eta)}",
                file=sys.stderr,
                flush=True,
            )

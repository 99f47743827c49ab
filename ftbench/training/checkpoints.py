"""Checkpoints of a training run: which are on disk and complete, each one's eval loss, and the one rule that
chooses which to keep. Backends only list their checkpoints; whoever runs a backend (`ftbench train`,
train-and-compare, `--trained-run`) calls `settle_choice` once on the `TrainResult`, which applies
`choose_checkpoint`, records the choice in the result (kept as train_result.json) and in `checkpoints.json`;
everything after reads it back with `recorded_choice`, so `ftbench train` and the report never disagree.

`read_trained_run` turns a finished Hugging Face Trainer output folder (LLaMA-Factory's or ftbench's: adapter,
`checkpoint-N/`, `trainer_state.json`, `trainer_log.jsonl`) into a `TrainResult`, for backends that train in
another process and for evaluating runs trained elsewhere. Nothing here imports torch or transformers.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass

from ftbench.api.backends import CheckpointInfo, TrainResult
from ftbench.api.errors import UsageError
from ftbench.data.run_files import check_results, check_trainer_state, read_json_file
from ftbench.inference.models import is_adapter_dir
from ftbench.io import write_json
from ftbench.training.trainer_log import TRAINER_LOG, from_log_history, read_trainer_log

CHECKPOINTS_JSON = "checkpoints.json"
TRAINER_STATE = "trainer_state.json"
CHECKPOINT_DIR = re.compile(r"^checkpoint-(\d+)$")


def complete_checkpoints(output_dir: str) -> list[tuple[int, str]]:
    """(step, path) of the `checkpoint-N` folders whose trainer_state.json was written and parses, oldest first.

    The Trainer writes trainer_state.json last, so a checkpoint being written when the process was killed has
    none (or a torn one) and is neither resumed from nor evaluated."""
    found = []
    for path in all_checkpoint_dirs(output_dir):
        try:
            if read_json_file(os.path.join(path, TRAINER_STATE)) is None:
                continue
        except UsageError:
            continue
        found.append((int(CHECKPOINT_DIR.match(os.path.basename(path)).group(1)), path))
    return sorted(found)


def all_checkpoint_dirs(output_dir: str) -> list[str]:
    """Every `checkpoint-N` folder in ``output_dir``, complete or not."""
    if not os.path.isdir(output_dir):
        return []
    return [
        os.path.join(output_dir, n)
        for n in os.listdir(output_dir)
        if CHECKPOINT_DIR.match(n) and os.path.isdir(os.path.join(output_dir, n))
    ]


def checkpoint_table(
    output_dir: str, log_history: list[dict], final_step: int, final_eval_loss: float | None
) -> list[CheckpointInfo]:
    """Every complete checkpoint on disk plus the final adapter (``output_dir``, last), each with the eval loss
    logged at its step and the last training loss logged at or before it. ``log_history`` is the Trainer's
    (``step``, ``loss``, ``eval_loss`` keys)."""
    eval_at = {h["step"]: h["eval_loss"] for h in log_history if "eval_loss" in h and "step" in h}
    losses = [(h["step"], h["loss"]) for h in log_history if "loss" in h and "step" in h]

    def loss_at(step):
        before = [loss for s, loss in losses if s <= step]
        return before[-1] if before else None

    table = [
        CheckpointInfo(path, step, eval_at.get(step), loss_at(step)) for step, path in complete_checkpoints(output_dir)
    ]
    final_eval = final_eval_loss if final_eval_loss is not None else eval_at.get(final_step)
    table.append(CheckpointInfo(output_dir, final_step, final_eval, loss_at(final_step)))
    return table


@dataclass
class CheckpointChoice:
    """The checkpoint to evaluate and keep, its display name, and why it was chosen (in words, for the report)."""

    checkpoint: CheckpointInfo
    name: str
    reason: str

    def to_json(self) -> dict:
        c = self.checkpoint
        return {"name": self.name, "path": c.path, "step": c.step, "eval_loss": c.eval_loss, "reason": self.reason}


FINAL = "final"  # the label of the training's output folder itself (the final adapter)


def checkpoint_label(path: str) -> str:
    """The one label of a checkpoint, used in file names (checkpoint_predictions/<label>.jsonl) and tables:
    `checkpoint-40` for a `checkpoint-N` folder, `final` for the training's output folder (the final adapter)."""
    base = os.path.basename(path.rstrip("/"))
    return base if CHECKPOINT_DIR.match(base) else FINAL


def checkpoint_name(checkpoint: CheckpointInfo) -> str:
    """The label in words: `checkpoint-40`, or `final adapter (step 60)` for the final adapter."""
    label = checkpoint_label(checkpoint.path)
    return f"final adapter (step {checkpoint.step})" if label == FINAL else label


def choose_checkpoint(checkpoints: list[CheckpointInfo]) -> CheckpointChoice:
    """The checkpoint with the lowest eval loss. Ties go to the earlier step (as much quality for less
    training), and at the same step to the `checkpoint-N` folder listed before the final adapter (the same
    weights). A non-finite eval loss (NaN, inf: a diverged or broken evaluation) is never the lowest; the reason
    names it. With no finite eval loss recorded, the final adapter (the last entry), and the reason says so."""
    if not checkpoints:
        raise ValueError("no checkpoints to choose from")
    evaluated = [c for c in checkpoints if c.eval_loss is not None and math.isfinite(c.eval_loss)]
    broken = sorted({(c.step, c.eval_loss) for c in checkpoints if c.eval_loss is not None and c not in evaluated})
    skipped = (
        "; not finite, so never chosen: eval loss " + ", ".join(f"{loss} at step {step}" for step, loss in broken)
        if broken
        else ""
    )
    final = checkpoints[-1]
    if not evaluated:
        what = "no finite eval loss was recorded" if broken else "no eval loss was recorded"
        return CheckpointChoice(final, checkpoint_name(final), f"{what}: the final adapter is used{skipped}")
    best = min(evaluated, key=lambda c: (c.eval_loss, c.step))  # min keeps the first of equal keys
    saved = len({c.step for c in evaluated})  # the final adapter repeats the last checkpoint's weights
    reason = f"lowest eval loss {best.eval_loss:.4f} of {saved} saved checkpoint{'s' if saved != 1 else ''} evaluated"
    if final.step != best.step and final.eval_loss is not None:
        reason += f" (the final adapter at step {final.step} had {final.eval_loss:.4f})"
    return CheckpointChoice(best, checkpoint_name(best), reason + skipped)


def settle_choice(result: TrainResult, *, write: bool = True) -> CheckpointChoice | None:
    """Choose the checkpoint of a finished training (the one call of `choose_checkpoint` per run) and record the
    choice: ``result.best_checkpoint`` (None when nothing was evaluated), ``result.choice_reason`` and, with
    ``write``, the output folder's `checkpoints.json` (by the main process only; a run trained elsewhere and
    only read is left as it is). None when the result lists no checkpoint (nothing to choose from)."""
    from ftbench.console import is_main_process

    if not result.checkpoints:
        return None
    choice = choose_checkpoint(result.checkpoints)
    chosen_loss = choice.checkpoint.eval_loss
    result.best_checkpoint = choice.checkpoint.path if chosen_loss is not None and math.isfinite(chosen_loss) else None
    result.choice_reason = choice.reason
    if write and is_main_process() and os.path.isdir(result.output_dir):
        write_checkpoints_json(result.output_dir, result.checkpoints, result.best_checkpoint)
    return choice


def recorded_choice(result: TrainResult) -> CheckpointChoice:
    """The choice `settle_choice` recorded in ``result``, read back without applying the rule again (a result
    kept before choices were recorded is settled now)."""
    if result.choice_reason is None:
        return settle_choice(result)
    chosen = next((c for c in result.checkpoints if c.path == result.best_checkpoint), result.checkpoints[-1])
    return CheckpointChoice(chosen, checkpoint_name(chosen), result.choice_reason)


def distinct_checkpoints(checkpoints: list[CheckpointInfo]) -> list[CheckpointInfo]:
    """One checkpoint per step: the final adapter is dropped when a `checkpoint-N` of its step holds the same
    weights (listed before it)."""
    seen, out = set(), []
    for c in checkpoints:
        if c.step not in seen:
            seen.add(c.step)
            out.append(c)
    return out


def choose_by_metric(
    checkpoints: list[CheckpointInfo], scores: list[float], metric: str, higher_is_better: bool = True
) -> CheckpointChoice:
    """The checkpoint whose generations on the eval split score best by ``metric`` (``scores`` in the same
    order): highest, or lowest for a figure where lower is better; ties go to the earlier step, as with eval loss."""
    if not checkpoints or len(scores) != len(checkpoints):
        raise ValueError("one score per checkpoint is needed")
    sign = 1 if higher_is_better else -1
    i = max(range(len(checkpoints)), key=lambda k: (sign * scores[k], -checkpoints[k].step))
    best = checkpoints[i]
    return CheckpointChoice(
        best,
        checkpoint_name(best),
        f"{'highest' if higher_is_better else 'lowest'} {metric} "
        f"{scores[i]:.4f} on the eval split of {len(checkpoints)} checkpoints (--select-by {metric})",
    )


def write_checkpoints_json(output_dir: str, table: list[CheckpointInfo], best: str | None) -> str:
    """`checkpoints.json` in a training output folder: each checkpoint's step and losses, and the best one."""
    path = os.path.join(output_dir, CHECKPOINTS_JSON)
    data = {
        "best_checkpoint": best,
        "selection": "lowest eval_loss (ties: the earlier step)",
        "checkpoints": [asdict(c) for c in table],
    }
    write_json(path, data)
    return path


def is_trained_run(output_dir: str) -> bool:
    """Whether ``output_dir`` holds a finished run: a final adapter (adapter_config.json) or a trainer state."""
    return is_adapter_dir(output_dir) or os.path.isfile(os.path.join(output_dir, TRAINER_STATE))


def read_trained_run(output_dir: str, *, config_path: str = "") -> TrainResult:
    """A `TrainResult` for a finished Trainer output folder: checkpoints with their eval loss (from
    trainer_state.json's log_history, else from trainer_log.jsonl), the log, and the figures the Trainer saved
    (all_results.json). The choice among the checkpoints is `settle_choice`'s, made by the caller."""
    if not os.path.isdir(output_dir):
        raise UsageError(f"{output_dir}: no such folder")
    state_path = os.path.join(output_dir, TRAINER_STATE)
    state = check_trainer_state(read_json_file(state_path, missing={}), state_path)
    log = read_trainer_log(os.path.join(output_dir, TRAINER_LOG))
    history = list(state.get("log_history") or [])
    if not history:  # no final trainer_state.json: the newest checkpoint's, else the log itself
        complete = complete_checkpoints(output_dir)
        if complete:
            state_path = os.path.join(complete[-1][1], TRAINER_STATE)
            state = check_trainer_state(read_json_file(state_path, missing={}), state_path)
            history = list(state.get("log_history") or [])
        if not history:  # a loss the log wrote as null was not finite (io.write_jsonl)
            history = [
                {"step": r["current_steps"], **{k: _loss(r[k]) for k in ("loss", "eval_loss") if k in r}}
                for r in log
                if "current_steps" in r
            ]
    global_step = state.get("global_step") or max((h.get("step") or 0 for h in history), default=0)
    if not log:
        log = from_log_history(history, state.get("max_steps") or global_step)
    results_path = os.path.join(output_dir, "all_results.json")
    results = check_results(read_json_file(results_path), results_path)
    final_eval = results.get("eval_loss")
    table = checkpoint_table(output_dir, history, global_step, float(final_eval) if final_eval is not None else None)
    if not is_adapter_dir(output_dir):
        table = table[:-1]  # no final adapter was saved: only the checkpoints can be evaluated
    if not table:
        raise UsageError(f"{output_dir}: no adapter and no complete checkpoint-N folder: not a finished run")
    losses = [h["loss"] for h in history if "loss" in h]
    return TrainResult(
        output_dir=output_dir,
        adapter_dir=table[-1].path,
        trainer_log=os.path.join(output_dir, TRAINER_LOG),
        config_path=config_path,
        checkpoints=table,
        log=log,
        global_step=global_step,
        train_runtime=float(results.get("train_runtime") or 0.0),
        train_samples_per_second=float(results.get("train_samples_per_second") or 0.0),
        final_loss=losses[-1] if losses else None,
        final_eval_loss=table[-1].eval_loss,
    )


def _loss(value: float | None) -> float:
    return float("nan") if value is None else value

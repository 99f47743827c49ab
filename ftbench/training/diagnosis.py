"""Reading loss curves the way an experienced fine-tuner would, and saying so in words with the evidence.

Input: the rows of a LLaMA-Factory-style `trainer_log.jsonl` (train rows carry `loss`, eval rows `eval_loss`,
both `current_steps`). Output: one `TrainingDiagnosis` — a verdict, a sentence, the numbers behind it, and
the checkpoint step worth keeping. The thresholds are deliberately simple and stated, so a user can check
the reasoning against the plotted curve.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ftbench.training.trainer_log import curves

FALLING = 0.03  # a curve "still falls" if its last quarter drops by more than 3% of its level
RISE = 0.02  # eval loss "rises" if it ends more than 2% above its minimum
NO_PROGRESS = 0.05  # "not converging": train loss ended within 5% of where it started
DIVERGE_FACTOR = 1.5  # a train loss this many times its first logged value (or not finite) is divergence


@dataclass
class TrainingDiagnosis:
    """A verdict on a training run: `kind` is one of under-trained, overfitting, not-converging, diverged,
    converged, too-short."""

    kind: str
    message: str
    evidence: list[str] = field(default_factory=list)
    keep_step: int | None = None  # the step whose checkpoint to keep
    diverged_at: int | None = None  # kind "diverged": the step `divergence_step` found

    def to_json(self) -> dict:
        return asdict(self)


def _late_drop(points: list[tuple[int, float]]) -> float:
    """Relative drop over the last quarter of a curve (positive = still falling), between averaged windows
    so that one noisy batch does not decide it."""
    n = len(points)
    k = max(1, n // 8)
    mark = (3 * n) // 4
    start = _mean([v for _, v in points[max(0, mark - k) : mark + k]])
    end = _mean([v for _, v in points[-k:]])
    return (start - end) / abs(start) if start else 0.0


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def divergence_step(rows: list[dict]) -> int | None:
    """The first logged step whose loss (train or eval) is not finite, or whose train loss exceeds
    DIVERGE_FACTOR × the first logged one: the one rule for "diverged", used by a run's report and by the sweep."""
    train, evals = curves(rows)
    for step, value in sorted(train + evals):
        if not math.isfinite(value):
            return step
    first = train[0][1] if train else None
    return next((s for s, v in train if first is not None and v > DIVERGE_FACTOR * first), None)


def diagnose_training(rows: list[dict]) -> TrainingDiagnosis:
    """Under-trained, overfitting, not converging, diverged or converged — with the evidence."""
    train, evals = curves(rows)
    step = divergence_step(rows)
    if step is not None:
        value = dict(train + evals)[step] if step in dict(train + evals) else float("nan")
        evidence = (
            [f"non-finite loss at step {step}"]
            if not math.isfinite(value)
            else [
                f"train loss {train[0][1]:.4f} at step {train[0][0]}, {value:.4f} at step {step} "
                f"(over {DIVERGE_FACTOR}× the first)"
            ]
        )
        what = (
            "The loss became NaN/infinite"
            if not math.isfinite(value)
            else f"The train loss rose above {DIVERGE_FACTOR}× its first value"
        )
        return TrainingDiagnosis(
            "diverged",
            f"{what} at step {step}: training diverged. Lower the learning rate "
            "(e.g. by 10x), check max_grad_norm, and look for broken samples.",
            evidence,
            diverged_at=step,
        )
    if len(train) < 4:
        return TrainingDiagnosis(
            "too-short",
            f"Only {len(train)} training loss points were logged: too few to "
            "judge the curve. Lower logging_steps or train longer.",
            [],
        )
    k = max(1, len(train) // 10)
    first, last = _mean([v for _, v in train[:k]]), _mean([v for _, v in train[-k:]])
    evidence = [f"train loss {first:.4f} → {last:.4f} (step {train[0][0]} → {train[-1][0]})"]
    best_step = None
    if evals:
        best_step, best = min(evals, key=lambda p: p[1])
        final_step, final = evals[-1]
        evidence.append(
            f"eval loss {evals[0][1]:.4f} at step {evals[0][0]}, lowest {best:.4f} at step {best_step}, "
            f"{final:.4f} at step {final_step}"
        )
        later = [v for s, v in evals if s > best_step]
        rising = final > best * (1 + RISE) and len(later) >= 2 and all(v > best for v in later)
        if rising and last < first:
            return TrainingDiagnosis(
                "overfitting",
                f"Overfitting from step {best_step}: eval loss rose {100 * (final / best - 1):.1f}% "
                f"after its minimum while train loss kept falling. Keep checkpoint {best_step} (or train fewer "
                "epochs, add data, or raise lora_dropout/weight_decay).",
                evidence,
                best_step,
            )
    if (first - last) / abs(first) < NO_PROGRESS:
        return TrainingDiagnosis(
            "not-converging",
            f"Not converging: train loss ended within {100 * NO_PROGRESS:.0f}% of where it started. "
            "Raise the learning rate (LoRA usually wants 1e-4 to 5e-4), check that labels are not all masked, "
            "and check the data.",
            evidence,
            best_step,
        )
    train_drop = _late_drop(train)
    eval_still_falling = len(evals) < 2 or evals[-1][1] <= min(v for _, v in evals) * (1 + 1e-6)
    evidence.append(f"train loss fell {100 * train_drop:.1f}% over the last quarter of training")
    if train_drop > FALLING and eval_still_falling:
        return TrainingDiagnosis(
            "under-trained",
            "Under-trained: the loss was still falling at the end"
            + (" and eval loss was at its lowest at the last evaluation" if len(evals) >= 2 else "")
            + ". Train more epochs (or raise the learning rate).",
            evidence,
            best_step,
        )
    return TrainingDiagnosis(
        "converged",
        "Converged: the loss flattened out"
        + (f"; eval loss is lowest at step {best_step}" if best_step is not None else "")
        + ".",
        evidence,
        best_step,
    )

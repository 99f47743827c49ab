"""A train-and-compare run folder and the names of the files in it: the one place those names are written down.

    report.html            the before/after report          metrics.json        every figure, for machines
    run_config.json        what the run is (resume check)   validation.json     the training data's checks
    predictions_before.jsonl / predictions_after.jsonl      the held-out split, LLaMA-Factory rows
    gsm8k_predictions_before.jsonl / gsm8k_predictions_after.jsonl
                           (each scorer names its eval set's files: Scorer.predictions_file)
    train_result.json      the backend's TrainResult        trainer_log.jsonl   the training log (a copy)
    checkpoint_predictions/<checkpoint>.jsonl                 each checkpoint's eval predictions (--select-by)
    data/                  files the run built (the demo's)  train/              the backend's output_dir
    merged/                the chosen checkpoint merged into the base model (only for --engine openai)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

SIDES = ("before", "after")


@dataclass(frozen=True)
class RunFolder:
    """Paths of one run's files (nothing is created by asking for a path)."""

    root: str

    def file(self, name: str) -> str:
        return os.path.join(self.root, name)

    @property
    def report(self) -> str:
        return self.file("report.html")

    @property
    def metrics(self) -> str:
        return self.file("metrics.json")

    @property
    def run_config(self) -> str:
        return self.file("run_config.json")

    @property
    def validation(self) -> str:
        return self.file("validation.json")

    @property
    def train_result(self) -> str:
        return self.file("train_result.json")

    @property
    def trainer_log(self) -> str:
        return self.file("trainer_log.jsonl")

    @property
    def data_dir(self) -> str:
        return self.file("data")

    @property
    def train_dir(self) -> str:
        return self.file("train")

    @property
    def merged_dir(self) -> str:
        return self.file("merged")

    def predictions(self, scorer: str, side: str) -> str:
        """The prediction file of one evaluation: the eval set of ``scorer`` (a name in SCORERS, which names the
        file: similarity's held-out split is predictions_{side}.jsonl), ``side`` before (the base model) or after
        (the chosen checkpoint)."""
        from ftbench.metrics.registry import SCORERS

        if side not in SIDES:
            raise ValueError(side)
        return self.file(SCORERS.create(scorer).prediction_file(side))

    def checkpoint_predictions(self, checkpoint: str) -> str:
        """The held-out (or GSM8K) predictions of one checkpoint, made to choose among them (--select-by)."""
        return self.file(os.path.join("checkpoint_predictions", f"{checkpoint}.jsonl"))

    @staticmethod
    def holds_run(path: str) -> bool:
        """Whether ``path`` is a finished run folder (it has metrics.json)."""
        return os.path.isfile(os.path.join(path, "metrics.json"))

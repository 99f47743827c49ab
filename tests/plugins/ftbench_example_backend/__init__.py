"""The example backend of docs/backends.md, installed in the tests through the `ftbench.backends` entry-point group.

It trains the way a backend wrapping another trainer does: it writes the run's YAML, runs a command-line
trainer in its own process (here `python -m ftbench train`, standing in for any trainer that leaves a Hugging
Face Trainer output folder: adapter, checkpoint-N/, trainer_state.json, trainer_log.jsonl), and describes the
result from that folder with `read_trained_run`. train-and-compare needs nothing else from a backend.
"""

from __future__ import annotations

import os
import subprocess
import sys

from ftbench.api.backends import TrainConfig, TrainerBackend, TrainResult
from ftbench.api.errors import InputError
from ftbench.training.checkpoints import read_trained_run
from ftbench.training.config import dump_yaml, resolve_path


class ExampleBackend(TrainerBackend):
    """Trains in a child process (`python -m ftbench train`) and reads the output folder it leaves."""

    name = "example"
    description = "trains in a child process (python -m ftbench train) and reads its output folder"
    config_file = "example_train_args.yaml"  # what --trained-run reads the model and data from

    def check_config(self, config: TrainConfig) -> None:
        if config.stage != "sft":
            raise config.error("stage", f"{config.stage} is not supported by the example backend (supported: sft)")

    def train(self, config: TrainConfig, *, resume: bool = False, quiet: bool = False) -> TrainResult:
        os.makedirs(config.output_dir, exist_ok=True)
        args = config.to_yaml_dict()
        args.update(
            backend="peft",  # the trainer this example wraps
            dataset=",".join(os.path.abspath(resolve_path(config, d)) for d in config.dataset),
        )
        if config.eval_dataset:
            args["eval_dataset"] = ",".join(os.path.abspath(resolve_path(config, d)) for d in config.eval_dataset)
        path = os.path.join(config.output_dir, "example_train_args.yaml")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(dump_yaml(args))
        cmd = (
            [sys.executable, "-m", "ftbench", "train", path]
            + (["--resume"] if resume else [])
            + (["--quiet"] if quiet else [])
        )
        proc = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise InputError(f"the example trainer failed (exit {proc.returncode}): {last}")
        return read_trained_run(config.output_dir, config_path=path)

"""The training-backend interface: what `ftbench train` hands a backend, and what it gets back.

A backend turns a `TrainConfig` (LLaMA-Factory's key names, typed and validated by `ftbench.training.config`) into a
LoRA adapter on disk and describes the run in a `TrainResult`. The built-in backend is `peft`
(transformers Trainer + peft); others are found through the `ftbench.backends` entry-point group
(see docs/backends.md). Nothing here imports torch: backends import their heavy dependencies inside methods.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from ftbench.api.errors import InputError

DEFAULT_BACKEND = "peft"


@dataclass
class TrainConfig:
    """A resolved training config: LLaMA-Factory's key names and defaults, with typed values.

    Field names are exactly LLaMA-Factory's, so a tutorial's YAML maps onto this class key by key. Keys that
    LLaMA-Factory knows but that have no field here are kept, as given, in ``extra`` (a backend may use them,
    e.g. one driving LLaMA-Factory itself); ``training_args`` holds transformers ``TrainingArguments`` keys
    that are passed through unchanged (adam_beta2, ddp_timeout, ...). ``source`` and ``lines`` say where each
    key came from, so a backend can point its errors at the YAML line (`config.error(key, message)`).
    """

    model_name_or_path: str = ""
    output_dir: str = ""
    backend: str = DEFAULT_BACKEND
    # method
    stage: str = "sft"
    do_train: bool = True
    finetuning_type: str = "lora"
    adapter_name_or_path: str | None = None  # continue training this adapter
    lora_rank: int = 8
    lora_alpha: int | None = None  # None: 2 * lora_rank (LLaMA-Factory's default)
    lora_dropout: float = 0.0
    lora_target: list[str] = field(default_factory=lambda: ["all"])  # "all" = every linear layer but lm_head
    additional_target: list[str] | None = None  # modules trained fully and saved with the adapter
    use_rslora: bool = False
    use_dora: bool = False
    # data
    dataset: list[str] = field(default_factory=list)  # file paths, or names in dataset_dir/dataset_info.json
    dataset_dir: str = "data"
    template: str | None = None  # a LLaMA-Factory template name; None: the tokenizer's own chat template
    default_system: str | None = None  # with a template: replaces its default system prompt ("" removes it)
    enable_thinking: bool = True  # reasoning templates (qwen3, deepseekr1): empty <think> block in the answer
    cutoff_len: int = 2048
    max_samples: int | None = None  # per dataset, like LLaMA-Factory; None = all
    val_size: float = 0.0  # a fraction in [0, 1), or a count of samples if >= 1
    eval_dataset: list[str] | None = None  # a separate eval set (files or names), instead of val_size
    # optimisation
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-5
    num_train_epochs: float = 3.0
    max_steps: int = -1
    lr_scheduler_type: str = "linear"
    warmup_ratio: float = 0.0
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    optim: str = "adamw_torch"
    seed: int = 42
    gradient_checkpointing: bool = False
    group_by_length: bool = False  # batches of similar lengths: less padding, faster (transformers' sampler)
    padding_free: bool = True  # each batch packed in one row, no padding (ftbench's key; false: padded batches)
    bf16: bool = False
    fp16: bool = False
    flash_attn: str = "auto"  # auto | disabled | sdpa | fa2
    trust_remote_code: bool = False
    # evaluation, saving, logging
    eval_strategy: str = "no"
    eval_steps: float | None = None
    save_strategy: str = "steps"
    save_steps: float = 500
    save_total_limit: int | None = None
    logging_steps: float = 500
    logging_dir: str | None = None
    report_to: list[str] = field(default_factory=lambda: ["none"])
    plot_loss: bool = False
    overwrite_output_dir: bool = False
    resume_from_checkpoint: str | None = None  # a checkpoint path, or "last" (set by --resume)
    # pass-through and bookkeeping
    training_args: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    source: str | None = None  # the YAML file
    config_dir: str | None = None  # its folder: relative paths that do not exist from the cwd are tried here
    lines: dict[str, int | None] = field(default_factory=dict)  # key -> line in `source` (None: command line)

    def where(self, key: str) -> str:
        """`config.yaml:7` for a key from the file, `command line` for a key=value override."""
        if key in self.lines and self.lines[key] is None:
            return "command line"
        line = self.lines.get(key)
        return f"{self.source or '<config>'}{':' + str(line) if line else ''}"

    def error(self, key: str, message: str) -> InputError:
        """An InputError located at ``key``'s line: `config.yaml:7: lora_rank: must be > 0`."""
        return InputError(f"{self.where(key)}: {key}: {message}")

    def to_yaml_dict(self) -> dict[str, Any]:
        """The resolved config as LLaMA-Factory-style keys (what `ftbench_config.yaml` records)."""
        d = asdict(self)
        for k in ("source", "config_dir", "lines", "extra", "training_args"):
            d.pop(k)
        d["dataset"] = ",".join(self.dataset)
        d["lora_target"] = ",".join(self.lora_target)
        d["additional_target"] = ",".join(self.additional_target) if self.additional_target else None
        d.update(self.training_args)
        d.update(self.extra)
        return d


@dataclass
class CheckpointInfo:
    """One saved checkpoint (or the final adapter) and its eval loss at that step (None if not evaluated)."""

    path: str
    step: int
    eval_loss: float | None = None
    loss: float | None = None  # the last training loss logged at or before this step


@dataclass
class TrainResult:
    """What a backend reports after training: where everything is and how it went. This object is the whole
    contract between a backend and what follows training (train-and-compare evaluates from it alone).

    ``checkpoints`` lists the `checkpoint-N` folders still on disk, oldest first, plus the final adapter
    (``adapter_dir``) as the last entry, each a peft adapter folder; ``log`` holds the run's LLaMA-Factory
    `trainer_log.jsonl` rows (loss and eval_loss by step), which the report plots. A backend leaves
    ``best_checkpoint`` and ``choice_reason`` empty: whoever runs the backend (`ftbench train`, train-and-compare)
    applies the one choosing rule once (`ftbench.training.checkpoints.settle_choice`), which records there the
    path it chose (None if nothing was evaluated: the final adapter is used) and why.
    """

    output_dir: str
    adapter_dir: str
    trainer_log: str
    config_path: str
    checkpoints: list[CheckpointInfo] = field(default_factory=list)
    best_checkpoint: str | None = None
    choice_reason: str | None = None
    global_step: int = 0
    train_samples: int = 0
    eval_samples: int = 0
    train_runtime: float = 0.0  # seconds spent in the training loop (this process)
    train_samples_per_second: float = 0.0
    final_loss: float | None = None  # the last logged training loss
    final_eval_loss: float | None = None
    resumed_from: str | None = None
    trainable_params: int | None = None  # LoRA parameters trained, and all of the model's (None: not reported)
    all_params: int | None = None
    train_tokens: int | None = None  # tokens (prompt and response, no padding) in one pass over the training set
    device: str = "cpu"
    dtype: str = "float32"
    log: list[dict] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrainResult":
        """The inverse of `to_json` (how a run folder keeps a finished training's result)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["checkpoints"] = [CheckpointInfo(**c) for c in data.get("checkpoints", [])]
        return cls(**known)


class TrainerBackend(ABC):
    """A way to train a LoRA adapter from a `TrainConfig`.

    Subclasses set ``name`` and ``description`` and implement `train`. `check_config` rejects settings the
    backend cannot honour *before* anything heavy is loaded. The class also declares its run records: the
    files it writes in the output folder (``writes``), the one among them that records the config the run was
    trained with (``config_file``: `--trained-run` reads the model and data from it, and a folder holding it is
    known as this backend's run), and ``eval_loss_note``, what a report must say when its eval losses follow
    another convention than ftbench's own. ``reads_unmarked_runs``: a Trainer output folder holding no backend's
    ``config_file`` (made by a trainer alone) is read as this backend's. A backend writes standard peft adapter
    folders and describes them in its `TrainResult`; generating with them, merging and exporting are ftbench's job
    (`ftbench.inference`), the same for every backend. Register a backend in a package's ``pyproject.toml``::

        [project.entry-points."ftbench.backends"]
        mybackend = "my_package.backend:MyBackend"
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    config_file: ClassVar[str | None] = None
    writes: ClassVar[dict[str, str]] = {}  # file name in output_dir -> what it holds
    eval_loss_note: ClassVar[str | None] = None
    reads_unmarked_runs: ClassVar[bool] = False

    def check_config(self, config: TrainConfig) -> None:
        """Raise `InputError` (via ``config.error(key, ...)``) for settings this backend does not support."""

    @abstractmethod
    def train(self, config: TrainConfig, *, resume: bool = False, quiet: bool = False) -> TrainResult:
        """Train, writing the adapter, checkpoints, trainer_log.jsonl and the resolved config to
        ``config.output_dir``, and describe the run. ``resume``: continue from the last complete checkpoint
        there."""

"""SFT data for Trainer-based backends: LLaMA-Factory's dataset/dataset_dir/max_samples/val_size semantics,
token ids with the prompt masked out of the labels, and a collator that pads each batch to its own longest
sample (never to cutoff_len).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from ftbench.api.backends import TrainConfig
from ftbench.api.errors import InputError, UsageError
from ftbench.console import warn
from ftbench.inference.chat import IGNORE_INDEX, encode_for_training
from ftbench.training.config import resolve_path


def resolve_datasets(cfg: TrainConfig, names: list[str], key: str = "dataset") -> list:
    """The `DatasetSpec` of every entry in ``names`` (a config's ``dataset`` or ``eval_dataset``), as
    LLaMA-Factory resolves them: a name declared in dataset_dir/dataset_info.json (with its formatting, columns,
    tags, split and num_samples; a hub entry too), else a data file or folder path. The one place dataset names
    are resolved."""
    from ftbench.api.findings import Finding
    from ftbench.data.dataset_info import DATASET_INFO, declared_names, resolve_dataset_names

    info_path = os.path.join(resolve_path(cfg, cfg.dataset_dir), DATASET_INFO)
    findings: list[Finding] = []
    specs, unknown = resolve_dataset_names(names, info_path, findings, locate=lambda n: resolve_path(cfg, n))
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise InputError(errors[0].one_line())
    if unknown:
        declared = declared_names(info_path)
        where = f"{info_path}" + ("" if os.path.isfile(info_path) else " (which does not exist)")
        raise cfg.error(
            key,
            f"'{unknown[0]}' is neither a data file nor a dataset in {where}"
            + (f"; it has: {', '.join(sorted(declared))}" if declared else ""),
        )
    return [_trainable(s) if s.declared else s for s in specs]


def _trainable(spec):
    """The spec, if SFT trains on it; otherwise InputError at its dataset_info entry saying what it is."""
    from ftbench.data.spec import sft_refusal

    refusal = sft_refusal(
        spec.kind, bool(spec.media_columns), f"{spec.info_file}:{spec.info_line} {spec.name}: dataset '{spec.name}'"
    )
    if refusal:
        raise InputError(refusal)
    return spec


def load_training_samples(cfg: TrainConfig, names: list[str] | None = None, key: str = "dataset", *, rng=None) -> list:
    """The samples of every dataset in ``names`` (default ``cfg.dataset``), in order, as LLaMA-Factory selects
    them: the entry's split, then num_samples rows drawn with ``rng`` (a numpy RandomState seeded with the
    training seed, shared in LLaMA-Factory's order: every `dataset`, then every `eval_dataset`), then the first
    max_samples; default_system where a sample has no system prompt."""
    import numpy as np

    from ftbench.data.loader import load_samples

    rng = rng if rng is not None else np.random.RandomState(cfg.seed)
    samples = []
    for spec in resolve_datasets(cfg, cfg.dataset if names is None else names, key):
        loaded = load_samples(spec)
        if spec.num_samples is not None:
            loaded = [loaded[i] for i in sample_indexes(len(loaded), spec.num_samples, rng)]
        if cfg.max_samples is not None:
            loaded = loaded[: cfg.max_samples]
        if cfg.default_system and not cfg.template:  # a named template applies its own (`template_of`)
            for s in loaded:
                s.system = s.system or cfg.default_system
        samples.extend(loaded)
    return samples


def sample_indexes(rows: int, num_samples: int, rng) -> list[int]:
    """LLaMA-Factory's num_samples: a random permutation cut to num_samples, topped up with rows drawn with
    replacement when num_samples is larger than the dataset (`np.random` after `set_seed(seed)`)."""
    import numpy as np

    indexes = rng.permutation(rows)[:num_samples]
    missing = num_samples - len(indexes)
    if missing > 0:
        indexes = np.concatenate((indexes, rng.choice(rows, missing)), axis=0)
    return [int(i) for i in indexes]


def train_and_eval_samples(cfg: TrainConfig) -> tuple[list, list]:
    """The training and eval samples: eval_dataset when given (LLaMA-Factory's key), else val_size held out."""
    import numpy as np

    rng = np.random.RandomState(cfg.seed)  # transformers.set_seed(seed) seeds the global one LLaMA-Factory uses
    if cfg.eval_dataset:
        return (
            load_training_samples(cfg, rng=rng),
            load_training_samples(cfg, cfg.eval_dataset, "eval_dataset", rng=rng),
        )
    return split(load_training_samples(cfg, rng=rng), cfg.val_size, cfg.seed)


def split(samples: list, val_size: float, seed: int) -> tuple[list, list]:
    """Hold out val_size (a fraction, rounded up, or a count) of the samples for evaluation, exactly as
    LLaMA-Factory does (`datasets`' `train_test_split(test_size, seed)`: a numpy `default_rng(seed)` permutation,
    the first rows held out), so a run trained by either backend is evaluated on the rows it did not train on."""
    import numpy as np

    if not val_size:
        return samples, []
    n_eval = int(val_size) if val_size >= 1 else math.ceil(val_size * len(samples))
    if n_eval >= len(samples):
        raise InputError(f"val_size {val_size} leaves no training samples out of {len(samples)}")
    order = np.random.default_rng(seed).permutation(len(samples))
    return [samples[i] for i in order[n_eval:]], [samples[i] for i in order[:n_eval]]


_OPENAI_ROLE = {"user": "user", "assistant": "assistant", "observation": "tool", "function_call": "function_call"}


def write_samples(path: str, samples: list) -> None:
    """Samples as an OpenAI-messages JSONL (atomic), read back into the same samples by every ftbench reader: a
    split fixed once (a sweep's runs, a --seeds run's seeds) is trained and evaluated from such files."""
    from ftbench.io import write_jsonl

    def record(sample) -> dict:
        rec = {"messages": [{"role": _OPENAI_ROLE[role], "content": text} for role, text in sample.turns]}
        if sample.system:
            rec["system"] = sample.system
        if sample.tools:
            rec["tools"] = sample.tools
        return rec

    write_jsonl(path, [record(s) for s in samples])


def template_of(cfg: TrainConfig):
    """The config's named template (`template`, with its `default_system` and `enable_thinking`), or None for the
    tokenizer's own chat template."""
    from ftbench.inference.templates import get_template

    try:
        return get_template(cfg.template, cfg.default_system, cfg.enable_thinking)
    except UsageError as e:
        raise cfg.error("template", str(e)) from None


def encode(tokenizer, samples: list, cfg: TrainConfig, which: str) -> list[dict]:
    """Token ids and labels (prompt tokens = -100) per sample, truncated to cutoff_len; samples left with no
    label token (a prompt longer than cutoff_len) are dropped, and counted in a warning."""
    encoded, dropped = [], 0
    template = template_of(cfg)
    for sample in samples:
        input_ids, labels = encode_for_training(tokenizer, sample, cfg.cutoff_len, template)
        if all(label == IGNORE_INDEX for label in labels):
            dropped += 1
            continue
        encoded.append({"input_ids": list(input_ids), "labels": list(labels)})
    if dropped:
        warn(
            f"{dropped} {which} samples have no response token within cutoff_len {cfg.cutoff_len} and are "
            "skipped (raise cutoff_len)"
        )
    if not encoded:
        raise cfg.error("cutoff_len", f"no {which} sample keeps a response token within {cfg.cutoff_len} tokens")
    return encoded


@dataclass
class DynamicPaddingCollator:
    """Pads each batch to its own longest sample (not to cutoff_len): input_ids with the pad token, labels with
    -100, attention_mask 0 on padding; right-padded. ``pad_to_multiple_of`` rounds the length up."""

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict]) -> dict:
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = len(features)
        input_ids = torch.full((batch, longest), self.pad_token_id, dtype=torch.long)
        labels = torch.full((batch, longest), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((batch, longest), dtype=torch.long)
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            input_ids[i, :n] = torch.tensor(f["input_ids"], dtype=torch.long)
            labels[i, :n] = torch.tensor(f["labels"], dtype=torch.long)
            attention_mask[i, :n] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}

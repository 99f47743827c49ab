"""Padding-free training (`ftbench.training.packing`): a packed row is the same samples as the padded batch, each
attending only to itself, and the run's losses are the padded run's (LLaMA-Factory's own losses are compared in
tests/test_llamafactory.py)."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from ftbench.cli import cli
from ftbench.training.packing import PackedCollator

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = """\
model_name_or_path: tiny
dataset_dir: {datasets}
dataset: identity,alpaca_demo
max_samples: 24
cutoff_len: 512
val_size: 8
output_dir: {out}
per_device_train_batch_size: 4
per_device_eval_batch_size: 4
learning_rate: 1.0e-2
max_steps: 8
logging_steps: 1
eval_strategy: steps
eval_steps: 4
save_steps: 100
seed: 3
padding_free: {padding_free}
"""


def _train(tmp_path, padding_free: bool) -> tuple[str, dict, dict]:
    out = tmp_path / f"out-{padding_free}"
    config = tmp_path / f"train-{padding_free}.yaml"
    text = CONFIG.format(datasets=os.path.join(REPO, "datasets"), out=out, padding_free=str(padding_free).lower())
    config.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["train", str(config)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    with open(out / "trainer_log.jsonl", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    losses = {r["current_steps"]: r["loss"] for r in rows if "loss" in r}
    evals = {r["current_steps"]: r["eval_loss"] for r in rows if "eval_loss" in r}
    return result.output, losses, evals


def test_padding_free_run_has_the_padded_runs_losses(tiny_model, tmp_path):
    packed_out, packed, packed_evals = _train(tmp_path, True)
    padded_out, padded, padded_evals = _train(tmp_path, False)
    assert "batches: padding-free" in packed_out and "batches: padded (no packing: padding_free: false)" in padded_out
    assert packed.keys() == padded.keys() and len(packed) == 8
    assert max(abs(packed[s] - padded[s]) for s in packed) < 1e-5
    assert packed_evals.keys() == padded_evals.keys() == {4, 8}
    assert max(abs(packed_evals[s] - padded_evals[s]) for s in packed_evals) < 1e-5


def test_a_packed_row_attends_within_each_sample(tiny_model):
    """The packed row's logits are each sample's own logits computed alone: no sample sees another."""
    import torch
    from transformers import AutoModelForCausalLM

    from ftbench.training.packing import register_attention

    model = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation=register_attention())
    samples = [[5, 9, 14, 3, 8], [7, 2, 11], [4, 4, 6, 12, 13, 10, 1]]
    batch = PackedCollator(label_positions_only=False)([{"input_ids": s, "labels": s} for s in samples])
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3, 4, 5, 6]]
    assert batch["cu_seq_lens_q"].tolist() == [0, 5, 8, 15]
    with torch.no_grad():
        packed = model(
            input_ids=batch["input_ids"],
            position_ids=batch["position_ids"],
            cu_seq_lens_q=batch["cu_seq_lens_q"],
        ).logits[0]
        alone = torch.cat([model(input_ids=torch.tensor([s])).logits[0] for s in samples])
    assert torch.allclose(packed, alone, atol=1e-5)
    unmasked = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
    assert not torch.allclose(unmasked[5:], alone[5:], atol=1e-3)  # the test can fail: without bounds they mix


def test_collator_keeps_only_label_positions():
    """Logits are asked for exactly where a label follows; a sample's first token is never a label (its
    predecessor belongs to the previous sample)."""
    features = [
        {"input_ids": [1, 2, 3, 4], "labels": [-100, -100, 3, 4]},
        {"input_ids": [5, 6, 7], "labels": [5, 6, 7]},
    ]
    batch = PackedCollator()(features)
    assert batch["labels"].tolist() == [[-100, -100, 3, 4, -100, 6, 7]]
    assert batch["logits_to_keep"].tolist() == [[False, True, True, False, True, True, False]]
    assert batch["shift_labels"].tolist() == [[3, 4, 6, 7]]


def test_what_keeps_a_model_on_padded_batches(tiny_model):
    """Eager attention (asked for), a sliding window shorter than a sample may be; a window longer is no bar."""
    from transformers import AutoModelForCausalLM

    from ftbench.training.packing import packing_blocker

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert packing_blocker(model, "sdpa", 512) is None
    assert packing_blocker(model, "eager", 512) == "attention eager"
    model.config.use_sliding_window, model.config.sliding_window = True, 64
    assert "sliding attention window of 64 tokens" in packing_blocker(model, "sdpa", 512)
    assert packing_blocker(model, "sdpa", 64) is None

"""Padding-free training batches: a batch's samples laid end to end in one row, each attending only to itself.

A right-padded batch of 8 samples computes every layer over 8 × its longest sample; here training data carried
22–25% padding, computed and thrown away. `PackedCollator` lays the same samples, in the same order, end to end
in one row with positions restarting at 0 for each (LLaMA-Factory's `neat_packing` within one batch: no sample
is cut, mixed with another batch or attended across), and the attention runs sample by sample (`packed_sdpa`,
SDPA over each sample's stretch; FlashAttention-2's own variable-length kernel where the user chose `fa2`).

The output layer and the loss are computed only where a label is predicted (`logits_to_keep`, `shift_labels`):
the prompt's positions, masked out of the loss, no longer go through the 49,152-wide vocabulary projection.
The loss is the same mean over the same label tokens, so the per-step losses equal a padded batch's (within
float rounding; tests/test_packing.py checks against the padded Trainer step).

This module imports torch only inside functions: the backend calls it after loading the model.
"""

from __future__ import annotations

from dataclasses import dataclass

from ftbench.training.data import IGNORE_INDEX

ATTENTION = "ftbench_packed_sdpa"  # the name under which `packed_sdpa` is registered with transformers


@dataclass
class PackedCollator:
    """One row per batch: the samples' tokens end to end, positions restarting per sample, the sequence bounds
    as FlashAttention's ``cu_seq_lens_*``; ``label_positions_only`` adds ``logits_to_keep`` (where a label is
    predicted) and the matching ``shift_labels``."""

    label_positions_only: bool = True

    def __call__(self, features: list[dict]) -> dict:
        import torch

        ids, labels, positions, bounds = [], [], [], [0]
        for f in features:
            n = len(f["input_ids"])
            ids += f["input_ids"]
            # a sample's first token is never a target: the previous sample's last token must not predict it
            labels += [IGNORE_INDEX] + list(f["labels"][1:])
            positions += range(n)
            bounds.append(bounds[-1] + n)
        input_ids = torch.tensor([ids], dtype=torch.long)
        label_ids = torch.tensor([labels], dtype=torch.long)
        cu_seq_lens = torch.tensor(bounds, dtype=torch.int32)
        longest = max(b - a for a, b in zip(bounds, bounds[1:]))
        batch = {
            "input_ids": input_ids,
            "position_ids": torch.tensor([positions], dtype=torch.long),
            "labels": label_ids,
            "cu_seq_lens_q": cu_seq_lens,
            "cu_seq_lens_k": cu_seq_lens,
            "max_length_q": longest,
            "max_length_k": longest,
        }
        if self.label_positions_only:
            shifted = torch.cat([label_ids[:, 1:], label_ids.new_full((1, 1), IGNORE_INDEX)], dim=1)
            keep = shifted.ne(IGNORE_INDEX)
            batch["logits_to_keep"] = keep
            batch["shift_labels"] = shifted[keep][None, :]
        return batch


def packed_sdpa(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """transformers' SDPA attention, run over each packed sample's stretch of the row on its own (causal within
    it); without ``cu_seq_lens_q`` (a padded batch, evaluation, generation) it is plain SDPA."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    bounds = kwargs.pop("cu_seq_lens_q", None)
    if bounds is None or attention_mask is not None or query.shape[0] != 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling)
    edges = bounds.tolist()
    parts = [
        sdpa_attention_forward(
            module, query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], None, dropout=dropout, scaling=scaling
        )[0]
        for a, b in zip(edges, edges[1:])
    ]
    return torch.cat(parts, dim=1), None


def register_attention() -> str:
    """Register `packed_sdpa` with transformers (no attention mask is built for it) and return its name."""
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION, packed_sdpa)
    return ATTENTION


def packing_blocker(model, attention: str | None, cutoff_len: int) -> str | None:
    """Why ``model`` cannot train on packed rows (None if it can): packing needs a decoder that takes position
    ids and attends through transformers' attention interface, without a sliding window shorter than a sample
    may be (`packed_sdpa` attends to the whole sample), and SDPA or FlashAttention-2 (eager is kept as asked)."""
    from ftbench.inference.models import forward_takes

    if attention not in (None, "sdpa", "flash_attention_2"):
        return f"attention {attention}"
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    if getattr(config, "is_encoder_decoder", False):
        return "an encoder-decoder model"
    kinds = set(getattr(config, "layer_types", None) or ["full_attention"])
    if kinds != {"full_attention"}:
        return f"layer types {sorted(kinds)}"
    window = getattr(config, "sliding_window", None)
    if window and getattr(config, "use_sliding_window", True) and window < cutoff_len:
        return f"a sliding attention window of {window} tokens, below cutoff_len"
    if not forward_takes(model, "position_ids", "logits_to_keep"):
        return "a forward without position_ids and logits_to_keep"
    if getattr(model, "_supports_attention_backend", False) is not True:
        return "a model without transformers' attention interface"
    return None

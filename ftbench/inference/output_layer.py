"""The output layer computed in blocks of vocabulary columns on CPU: the same logits, bit for bit, in less time.

A decoding step multiplies a few rows (16-64 hidden states) by the output layer's [vocab, hidden] weights,
SmolLM2's 49,152 x 576. MKL splits that one long, thin product poorly between threads; as blocks of 2,048-4,096
vocabulary entries the same dot products run 1.4x faster (2-core EPYC, MKL's AVX2 kernels, 2026-12-07:
16 rows 28.8 -> 19.4-20.6 ms, 32 rows 40.1 -> 25.6-26.5 ms, 64 rows 52.0 -> 41.9-47.5 ms), about 5% of a
16-row decoding step. Each logit is the same dot product summed in the same order, so the logits are
bit-identical to `torch.nn.functional.linear`'s (tests/test_output_layer.py checks it with the BLAS of the
machine running the tests).

Only generation on CPU uses it (`models.load_model_for_generation`); the weights stay the same tensor, so a tied
embedding stays tied and the state dict is unchanged.
"""

from __future__ import annotations

import torch

BLOCK = 4096  # vocabulary entries per product: 2,048-4,096 measured best at 4-64 rows
BLOCKED_FROM = 2 * BLOCK  # a layer with fewer outputs is one product anyway


class BlockedOutputLayer(torch.nn.Linear):
    """`torch.nn.Linear` computing its output in blocks of `BLOCK` output features."""

    def forward(self, input):
        weights = self.weight.split(BLOCK)
        biases = self.bias.split(BLOCK) if self.bias is not None else (None,) * len(weights)
        return torch.cat([torch.nn.functional.linear(input, w, b) for w, b in zip(weights, biases)], dim=-1)


def block_output_layer(model) -> bool:
    """Make ``model``'s output layer a `BlockedOutputLayer` when it is a plain `torch.nn.Linear` on CPU with at
    least `BLOCKED_FROM` outputs; return whether it did."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if type(head) is not torch.nn.Linear or head.weight.device.type != "cpu" or head.out_features < BLOCKED_FROM:
        return False
    head.__class__ = BlockedOutputLayer  # same parameters, same state dict: only `forward` changes
    return True

"""The output layer in blocks of vocabulary columns (`inference.output_layer`): bit-identical logits on this
machine's BLAS at decoding's row counts, and only plain CPU output layers large enough to gain are changed."""

from __future__ import annotations

import pytest
import torch

from ftbench.inference.output_layer import BLOCK, BlockedOutputLayer, block_output_layer


@pytest.mark.parametrize("bias", [False, True])
def test_blocked_logits_are_bit_identical(bias):
    torch.manual_seed(0)
    plain = torch.nn.Linear(576, 3 * BLOCK + 123, bias=bias)  # a last block shorter than the others
    blocked = torch.nn.Linear(576, 3 * BLOCK + 123, bias=bias)
    blocked.load_state_dict(plain.state_dict())
    blocked.__class__ = BlockedOutputLayer
    with torch.inference_mode():
        for shape in [(1, 576), (16, 576), (16, 2, 576), (33, 576), (64, 576)]:
            hidden = torch.randn(shape) * 3
            assert torch.equal(blocked(hidden), plain(hidden)), shape


class _Model(torch.nn.Module):
    def __init__(self, vocab: int):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, 8)
        self.head = torch.nn.Linear(8, vocab, bias=False)
        self.head.weight = self.embed.weight  # tied, as SmolLM2's are

    def get_output_embeddings(self):
        return self.head


def test_only_large_plain_output_layers_on_cpu_are_blocked():
    model = _Model(3 * BLOCK)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert block_output_layer(model) and type(model.head) is BlockedOutputLayer
    assert model.head.weight is model.embed.weight  # still tied
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    assert not block_output_layer(model)  # once
    assert not block_output_layer(_Model(BLOCK))  # one block: nothing to gain
    assert not block_output_layer(torch.nn.Linear(8, 8))  # no output layer to find

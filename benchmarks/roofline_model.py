"""The machine's limits for a Llama-shaped model, for benchmarks/bench_roofline.py: matmul throughput at the model's
layer shapes, memory bandwidth, and the time a decode step, a prefill or a LoRA training step cannot beat.

What is counted (and what is assumed):

- matmuls: every linear layer (q, k, v, o, gate, up, down in each layer) and the output layer (tied to the
  embeddings in SmolLM2: read once per step all the same), each at the throughput `F.linear` reaches at that shape
  and that number of rows on this machine, so the limit is what this machine's matmul library can do, not the
  CPU's datasheet peak;
- attention: 4 x heads x head_dim FLOPs per (query, key) pair (QK^T and PV), causal pairs only, at the best
  throughput measured for the dtype;
- a decode step reads every weight once and every row's keys and values once: (weights + KV cache) / bandwidth,
  with the bandwidth of the best of copy, triad and a read-only sum (decoding only reads);
- a decode step, a prefill, a training step: the larger of the compute time and the memory time;
- LoRA training: the forward, then the backward through the activations of every frozen layer (dX = dY W, the
  same FLOPs as the forward, at the throughput of the transposed shape), but no gradient for the frozen weights
  (full fine-tuning would add another forward's worth, `full=True`); the LoRA matrices themselves (r x (in + out)
  per layer, forward, backward and weight gradient) at the best throughput; attention's backward as twice its
  forward; padding not counted (a padded token is work a perfect implementation would not do).
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelShape:
    """The sizes that set a Llama-family decoder's cost, from its config.json."""

    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    layers: int

    @classmethod
    def from_config(cls, config: dict) -> "ModelShape":
        head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
        return cls(
            config["hidden_size"],
            config["intermediate_size"],
            config["num_attention_heads"],
            config.get("num_key_value_heads") or config["num_attention_heads"],
            head_dim,
            config["vocab_size"],
            config["num_hidden_layers"],
        )

    def layer_linears(self) -> list[tuple[int, int]]:
        """(in, out) of each linear layer of one decoder layer: q, k, v, o, gate, up, down."""
        h, q, kv, i = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim, self.intermediate
        return [(h, q), (h, kv), (h, kv), (q, h), (h, i), (h, i), (i, h)]

    @property
    def head(self) -> tuple[int, int]:
        return (self.hidden, self.vocab)

    def weights(self) -> int:
        """Parameters every decode step reads: the linear layers and the output layer (the embedding lookup reads
        one row per token, negligible)."""
        return self.layers * sum(i * o for i, o in self.layer_linears()) + self.hidden * self.vocab

    def kv_bytes_per_token(self, bytes_per: int) -> int:
        return self.layers * 2 * self.kv_heads * self.head_dim * bytes_per


def best_seconds(fn, block: float = 0.1, blocks: int = 3) -> float:
    """The fastest per-call time of ``fn`` over ``blocks`` timed blocks of about ``block`` seconds each (the
    fastest, not the mean: on a shared machine, slower blocks are other processes' doing)."""
    started = time.perf_counter()
    fn()  # warm-up: allocation, kernel selection
    n = max(1, int(block / max(time.perf_counter() - started, 1e-6)))
    best = float("inf")
    for _ in range(blocks):
        started = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - started) / n)
    return best


def matmul_table(
    shape: ModelShape, rows: int, dtype, *, head: bool = True, backward: bool = False
) -> dict[tuple[int, int], float]:
    """GFLOP/s of `F.linear` on (rows x in) inputs for each distinct (in, out) of the model (the output layer with
    ``head``; with ``backward`` the transposed shapes too, which the backward pass through activations runs)."""
    import torch
    import torch.nn.functional as F

    shapes = list(dict.fromkeys(shape.layer_linears() + ([shape.head] if head else [])))
    if backward:
        shapes = list(dict.fromkeys(shapes + [(o, i) for i, o in shapes]))
    table = {}
    for k, n in shapes:
        x, w = torch.randn(rows, k, dtype=dtype), torch.randn(n, k, dtype=dtype)
        table[(k, n)] = 2 * rows * k * n / best_seconds(lambda x=x, w=w: F.linear(x, w)) / 1e9
    return table


def streamed_matmuls(shape: ModelShape, rows: int, dtype) -> float:
    """Seconds of one decode step's matmuls and nothing else: every linear layer of every decoder layer and the
    output layer, each with its own weights, so that they stream from memory as the model's do (`matmul_table`
    reuses one weight matrix, which then sits in the cache), on ``rows`` rows."""
    import torch
    import torch.nn.functional as F

    weights = [
        torch.empty(o, i, dtype=dtype).fill_(0.01) for _ in range(shape.layers) for i, o in shape.layer_linears()
    ] + [torch.empty(shape.head[::-1], dtype=dtype).fill_(0.01)]
    inputs = {w.shape[1]: torch.randn(rows, w.shape[1], dtype=dtype) for w in weights}

    def step():
        for w in weights:
            F.linear(inputs[w.shape[1]], w)

    return best_seconds(step, block=0.3)


def bandwidth(mib: int = 256) -> dict[str, float]:
    """GB/s of a copy (read + write), a STREAM triad a = b + s*c (two reads, one write) and a read-only sum, on
    fp32 arrays of ``mib`` MiB, far beyond the caches."""
    import torch

    n = mib * 1024 * 1024 // 4
    a, b, c = torch.empty(n), torch.rand(n), torch.rand(n)
    return {
        "copy": 2 * 4 * n / best_seconds(lambda: a.copy_(b), 0.3) / 1e9,
        "triad": 3 * 4 * n / best_seconds(lambda: torch.add(b, c, alpha=3.0, out=a), 0.3) / 1e9,
        "read": 4 * n / best_seconds(lambda: b.sum(), 0.3) / 1e9,
    }


@dataclass(frozen=True)
class Throughput:
    """What the machine does: GFLOP/s tables by use ("decode", "prefill", "train"), bandwidth in GB/s, the weights'
    bytes per value, and the LoRA rank (its matrices' FLOPs in training)."""

    tables: dict
    bandwidth: float
    bytes_per: int
    lora_rank: int = 0

    @property
    def peak(self) -> float:
        return max(v for table in self.tables.values() for v in table.values())


class Limits:
    """The least time this machine needs for a decode step, a prefill and a LoRA training step (module docstring:
    what is counted)."""

    def __init__(self, shape: ModelShape, throughput: Throughput):
        self.shape, self.tp = shape, throughput

    def _linears(self, tokens: int, use: str, transposed: bool = False) -> float:
        table = self.tp.tables[use]
        return self.shape.layers * sum(
            2 * tokens * i * o / (table[(o, i) if transposed else (i, o)] * 1e9) for i, o in self.shape.layer_linears()
        )

    def _head(self, tokens: int, use: str, transposed: bool = False) -> float:
        i, o = self.shape.head
        return 2 * tokens * i * o / (self.tp.tables[use][(o, i) if transposed else (i, o)] * 1e9)

    def _attention(self, pairs: int) -> float:
        s = self.shape
        return s.layers * 4 * s.heads * s.head_dim * pairs / (self.tp.peak * 1e9)

    def decode_compute(self, rows: int, context: int) -> float:
        """Matmul seconds of one step of ``rows`` rows attending over ``context`` tokens in all."""
        return self._linears(rows, "decode") + self._head(rows, "decode") + self._attention(context)

    def decode_bytes(self, rows: int, context: int) -> float:
        return self.shape.weights() * self.tp.bytes_per + self.shape.kv_bytes_per_token(self.tp.bytes_per) * context

    def decode_step(self, rows: int, context: int) -> tuple[float, str]:
        """(seconds, "bandwidth" or "compute"): the larger bound on one decode step."""
        memory, compute = (
            self.decode_bytes(rows, context) / (self.tp.bandwidth * 1e9),
            self.decode_compute(rows, context),
        )
        return (memory, "bandwidth") if memory >= compute else (compute, "compute")

    def prefill(self, lengths: list[int]) -> tuple[float, str]:
        """(seconds, bound) for prompts of ``lengths`` tokens run once; the output layer on their last positions
        only (as ftbench and `generate` do)."""
        compute = (
            self._linears(sum(lengths), "prefill")
            + self._head(len(lengths), "decode")
            + self._attention(sum(n * (n + 1) // 2 for n in lengths))
        )
        memory = (
            self.shape.weights() * self.tp.bytes_per + self.shape.kv_bytes_per_token(self.tp.bytes_per) * sum(lengths)
        ) / (self.tp.bandwidth * 1e9)
        return (memory, "bandwidth") if memory >= compute else (compute, "compute")

    def training_step(self, lengths: list[int], full: bool = False) -> float:
        """Forward and backward over sequences of ``lengths`` tokens (padding excluded), LoRA on every linear
        layer; ``full``: every weight's gradient too (full fine-tuning)."""
        tokens = sum(lengths)
        forward = self._linears(tokens, "train") + self._head(tokens, "train")
        backward = self._linears(tokens, "train", transposed=True) + self._head(tokens, "train", transposed=True)
        attention = 3 * self._attention(sum(n * (n + 1) // 2 for n in lengths))
        r = self.tp.lora_rank
        lora = (
            3
            * self.shape.layers
            * sum(2 * tokens * r * (i + o) for i, o in self.shape.layer_linears())
            / (self.tp.peak * 1e9)
        )
        return forward + backward + attention + lora + (forward if full else 0.0)

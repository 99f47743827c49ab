"""`ftbench.inference.kv_cache`: the in-place growing KV cache holds exactly what transformers' `torch.cat` cache
would, grows without copying at every step, drops and trims like it, and joins left-padded caches."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from transformers import DynamicCache  # noqa: E402 (after the importorskip)

from ftbench.inference.kv_cache import SPARE, GrowingCache  # noqa: E402

LAYERS, HEADS, DIM = 2, 3, 4


def _states(batch: int, length: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(batch, HEADS, length, DIM, generator=g), torch.randn(batch, HEADS, length, DIM, generator=g))
        for _ in range(LAYERS)
    ]


def _feed(cache, steps):
    out = None
    for states in steps:
        for layer, (k, v) in enumerate(states):
            out = cache.update(k, v, layer)
    return out


def test_growing_equals_torch_cat_step_by_step():
    steps = [_states(2, 5, 0)] + [_states(2, 1, s) for s in range(1, 2 * SPARE)]  # prefill, then one token a step
    ours, theirs = GrowingCache(), DynamicCache()
    for states in steps:
        for layer, (k, v) in enumerate(states):
            mine, ref = ours.update(k, v, layer), theirs.update(k, v, layer)
            assert torch.equal(mine[0], ref[0]) and torch.equal(mine[1], ref[1])
    assert ours.get_seq_length() == theirs.get_seq_length() == 5 + 2 * SPARE - 1


def test_a_step_writes_in_place_without_reallocating():
    cache = GrowingCache()
    _feed(cache, [_states(1, 3, 0)])
    layer = cache.layers[0]
    buffer = layer.key_buffer
    for s in range(SPARE):  # room was left for SPARE more tokens
        _feed(cache, [_states(1, 1, s + 1)])
        assert layer.key_buffer is buffer
        assert layer.keys.data_ptr() == buffer.data_ptr()  # the model reads a view of the buffer
    _feed(cache, [_states(1, 1, 999)])  # past the spare room: one new buffer, contents kept
    assert layer.key_buffer is not buffer and torch.equal(layer.keys[:, :, : 3 + SPARE], buffer[:, :, : 3 + SPARE])


def test_dropping_rows_and_trimming_columns_keep_the_rest():
    cache = GrowingCache()
    _feed(cache, [_states(3, 4, 0), _states(3, 1, 1)])
    keys = cache.layers[1].keys.clone()
    for layer in cache.layers:
        layer.batch_select_indices(torch.tensor([0, 2]))
    assert torch.equal(cache.layers[1].keys, keys[[0, 2]])
    cache.trim_left(2)
    assert torch.equal(cache.layers[1].keys, keys[[0, 2]][:, :, 2:]) and cache.layers[0].keys.shape[-2] == 3
    _feed(cache, [[(k[:2], v[:2]) for k, v in _states(3, 1, 2)]])  # still grows after both
    assert cache.get_seq_length() == 4


def test_join_right_aligns_left_padded_caches_with_zeros():
    short, long = GrowingCache(), GrowingCache()
    _feed(short, [_states(1, 2, 0)])
    _feed(long, [_states(2, 5, 1)])
    a, b = short.layers[0].keys.clone(), long.layers[0].keys.clone()
    short.join(long)
    joined = short.layers[0].keys
    assert joined.shape == (3, HEADS, 5, DIM)
    assert torch.equal(joined[0, :, 3:], a[0]) and torch.all(joined[0, :, :3] == 0)  # the gap on the left is zero
    assert torch.equal(joined[1:], b)
    ref = DynamicCache()
    _feed(
        ref,
        [
            [
                (
                    torch.cat([torch.nn.functional.pad(k0, (0, 0, 3, 0)), k1]),
                    torch.cat([torch.nn.functional.pad(v0, (0, 0, 3, 0)), v1]),
                )
                for (k0, v0), (k1, v1) in zip(_states(1, 2, 0), _states(2, 5, 1))
            ]
        ],
    )
    assert torch.equal(short.layers[1].values, ref.layers[1].values)
    step = _states(3, 1, 7)
    _feed(short, [step])
    _feed(ref, [step])
    assert torch.equal(short.layers[0].keys, ref.layers[0].keys)  # the joined cache keeps growing like torch.cat


def test_rows_that_end_and_rows_that_join_are_written_in_place():
    """Continuous batching's steady state: rows end, the last rows move into their places (`greedy._places`)
    and only they are copied; prompts joining a cache that has had as many rows, and is no shorter, are written
    into its buffer (no new one); the contents equal dropping and stacking, and the cache grows on like
    `torch.cat`'s."""
    from ftbench.inference.greedy import _places

    cache = GrowingCache()
    _feed(cache, [_states(6, 5, 0)])
    layer = cache.layers[0]
    buffer, keys = layer.key_buffer, layer.keys.clone()
    order = _places([0, 2, 3, 5])
    assert order == [0, 5, 2, 3]
    for each in cache.layers:
        each.batch_select_indices(torch.tensor(order))
    assert layer.key_buffer is buffer and torch.equal(layer.keys, keys[order])
    joining = GrowingCache()
    _feed(joining, [_states(2, 3, 1)])
    new = joining.layers[0].keys.clone()
    cache.join(joining)
    assert layer.key_buffer is buffer and layer.keys.shape == (6, HEADS, 5, DIM)
    assert torch.equal(layer.keys[:4], keys[order]) and torch.equal(layer.keys[4:, :, 2:], new)
    assert torch.all(layer.keys[4:, :, :2] == 0)  # the stale rows' old columns are zeroed, not left behind
    ref = DynamicCache()
    _feed(ref, [[(each.keys.clone(), each.values.clone()) for each in cache.layers]])
    step = _states(6, 1, 2)
    _feed(cache, [step])
    _feed(ref, [step])
    assert torch.equal(layer.keys, ref.layers[0].keys) and layer.key_buffer is buffer
    wider = GrowingCache()
    _feed(wider, [_states(1, 9, 3)])
    cache.batch_select_indices(torch.tensor([0, 1, 2, 3, 4]))
    cache.join(wider)  # longer than the cache: new buffers, the others left-padded
    assert layer.key_buffer is not buffer and layer.keys.shape == (6, HEADS, 9, DIM)
    assert torch.equal(layer.keys[:5, :, 3:], ref.layers[0].keys[:5]) and torch.all(layer.keys[:5, :, :3] == 0)


def test_a_shared_beginning_is_the_common_prefix_leaving_each_prompt_a_token():
    from ftbench.inference.kv_cache import MIN_SHARED, shared_prefix_length

    system = list(range(100, 100 + MIN_SHARED + 4))
    assert shared_prefix_length([system + [1, 2], system + [3], system + [1, 5, 6]]) == len(system)
    assert shared_prefix_length([system, system + [7]]) == len(system) - 1  # the shorter keeps one token of its own
    assert shared_prefix_length([system[: MIN_SHARED - 1] + [1], system[: MIN_SHARED - 1] + [2]]) == 0  # too short
    assert shared_prefix_length([system + [1]]) == 0  # nothing to share with


def test_joining_prompts_are_prefilled_in_groups_of_similar_length():
    """One left-padded prefill of a long prompt with many short ones would compute the short ones at the long
    one's width: groups keep the padding within `PADDING_SHARE` of the tokens, longest first."""
    from ftbench.inference.greedy import PADDING_SHARE, _similar_lengths

    lengths = {0: 400, 1: 40, 2: 41, 3: 39, 4: 390, 5: 8}
    groups = _similar_lengths(list(lengths), list(lengths.values()))
    assert groups == [[0, 4], [2, 1, 3], [5]]
    for group in groups:
        width = max(lengths[i] for i in group)
        assert len(group) * width <= (1 + PADDING_SHARE) * sum(lengths[i] for i in group)
